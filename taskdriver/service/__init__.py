"""The domain's services, one module per noun: load -> rule -> commit.

- `base.py`: what they share: storage, settings, the clock, events, the one project
  loader, shared sections retried on `Contention`, Idempotency-Key records
- `projects.py`, `task_types.py`: those nouns
- `tasks.py`: creating (set-wise), updating, deleting and retrying tasks
- `queue.py`: next-task, complete, fail, release, extend, reap; its long polls wait in
  `waiting.py`
- `batches.py`: batch progress, a project's stats and throughput
- `controls.py`: the fleet controls' claims (paused and limited types) and cancels
- `archive.py`: moving finished tasks to the archive, reading and counting them there
- `sessions.py`: logins, bearer tokens, operator tokens

Every method opens exactly the atomic sections it needs, one after the other; a project's
section is never held while the global one is opened, so sections cannot deadlock.

`TaskDriver` composes them into the one object the views, the dashboard, the operator CLI
and the metrics call; each of its methods is the noun service's own, so a change to
leasing is made in `queue.py` alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import Settings
from ..events import QueueEvents
from ..storage import Storage
from .archive import Archive
from .base import Core
from .batches import Batches
from .controls import Cancels
from .projects import Projects
from .queue import Queue
from .sessions import Authenticator
from .task_types import TaskTypes
from .tasks import Tasks

__all__ = ["Authenticator", "TaskDriver"]


class TaskDriver:
    """Projects, task types, tasks, batches, the lease queue and sessions over one storage
    backend, reached through one object."""

    def __init__(self, storage: Storage, settings: Settings,
                 clock: Callable[[], float] = time.time,
                 events: QueueEvents | None = None) -> None:
        self.core = Core(storage, settings, clock, events or QueueEvents())
        self.storage = storage
        self.settings = settings
        self.now = clock
        self.sessions = Authenticator(self.core)
        self.projects = Projects(self.core)
        self.task_types = TaskTypes(self.core)
        self.tasks = Tasks(self.core)
        self.batches = Batches(self.core)
        self.queue = Queue(self.core, self.sessions.ended_sessions)
        self.cancels = Cancels(self.core)
        self.waits = self.queue.waits
        self.archiver = Archive(self.core)

        self.resolve_project = self.projects.resolve_project
        self.list_projects = self.projects.list_projects
        self.create_project = self.projects.create_project
        self.get_project = self.projects.get_project
        self.update_project = self.projects.update_project
        self.delete_project = self.projects.delete_project

        self.list_task_types = self.task_types.list_task_types
        self.create_task_type = self.task_types.create_task_type
        self.get_task_type = self.task_types.get_task_type
        self.update_task_type = self.task_types.update_task_type
        self.delete_task_type = self.task_types.delete_task_type

        self.create_task = self.tasks.create_task
        self.create_tasks = self.tasks.create_tasks
        self.get_task = self.tasks.get_task
        self.task_detail = self.tasks.task_detail
        self.list_tasks = self.tasks.list_tasks
        self.update_task = self.tasks.update_task
        self.delete_task = self.tasks.delete_task
        self.retry_task = self.tasks.retry_task
        self.retry_failed = self.tasks.retry_failed

        self.list_batches = self.batches.list_batches
        self.batch_progress = self.batches.batch_progress
        self.project_stats = self.batches.project_stats
        self.throughput = self.batches.throughput

        self.next_task = self.queue.next_task
        self.peek = self.queue.peek
        self.agents = self.queue.agents
        self.complete_task = self.queue.complete_task
        self.fail_task = self.queue.fail_task
        self.release_task = self.queue.release_task
        self.extend_lease = self.queue.extend_lease
        self.report_progress = self.queue.report_progress
        self.cancel_task = self.cancels.cancel_task
        self.cancel_tasks = self.cancels.cancel_tasks
        self.reap_project = self.queue.reap_project
        self.reap = self.queue.reap
        self.archive = self.archiver.archive

    @property
    def events(self) -> QueueEvents:
        """Where committed changes and long-poll wakeups are reported (metrics)."""
        return self.core.events

    @events.setter
    def events(self, events: QueueEvents) -> None:
        self.core.events = events
        self.waits.events = events

    @property
    def storage_provider(self) -> str:
        """Which backend holds the data: `file` or `postgresql`."""
        return self.storage.provider

    def check_storage(self) -> None:
        """Raise StorageError unless storage would take a write now (the health check)."""
        self.storage.check_writable()
