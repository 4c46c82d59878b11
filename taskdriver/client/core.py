"""`Client`: every endpoint of the TaskDriver API, over HTTP only.

Composed of the transport (`transport.py`: the requests session, retries, the agent's own
login) and one class of endpoints per noun, each in its own module: projects, task types,
tasks, the queue, stats, sessions. A change to one noun's calls opens one small room.
"""

from __future__ import annotations

from .queue import QueueEndpoints
from .sessions import SessionEndpoints
from .stats import StatsEndpoints
from .task_types import TaskTypeEndpoints
from .tasks import TaskEndpoints


class Client(SessionEndpoints, TaskTypeEndpoints, TaskEndpoints, QueueEndpoints,
             StatsEndpoints):
    """A TaskDriver server, as an operator (`token`) or as one agent (`agent_name` and
    `project`: it logs in on first use). Thread-safe for use by one agent at a time."""
