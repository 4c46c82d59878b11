"""The file backend's atomic sections over the global store (projects, sessions, operator
tokens), and the change log every file section keeps: each put applied to the in-memory
state at once and remembered for the journal line the commit appends."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..models import IdempotencyRecord, Project, Session
from .base import GlobalTx
from .journal_format import Change
from .state import ADMIN_TOKEN, IDEMPOTENCY, PROJECT, SESSION, AdminTokenRecord, GlobalState

if TYPE_CHECKING:
    from .file import FileStorage


class ChangeLog:
    """Applies puts and deletes to the in-memory state at once and remembers them."""

    def __init__(self, state: Any, write: bool) -> None:
        self.state = state
        self.write = write
        self.changes: list[Change] = []
        self.after_commit: list[Callable[[], None]] = []

    def _put(self, kind: str, key: str, record: Any) -> None:
        if not self.write:
            raise RuntimeError("a read-only section cannot change records")
        self.state.apply(kind, key, record)
        self.changes.append((kind, key, record))

    # Idempotency records, kept alike by the global and the project states.

    def get_idempotency(self, key: str) -> IdempotencyRecord | None:
        return self.state.idempotency.get(key)

    def put_idempotency(self, record: IdempotencyRecord) -> None:
        self._put(IDEMPOTENCY, record.id, record)

    def purge_idempotency(self, before: float) -> int:
        old = [key for key, record in self.state.idempotency.items()
               if record.created_at < before]
        for key in old:
            self._put(IDEMPOTENCY, key, None)
        return len(old)


class FileGlobalTx(ChangeLog, GlobalTx):
    state: GlobalState

    def __init__(self, state: GlobalState, storage: FileStorage, write: bool) -> None:
        super().__init__(state, write)
        self._storage = storage

    def get_project(self, project_id: str) -> Project | None:
        return self.state.projects.get(project_id)

    def project_by_name(self, name: str) -> Project | None:
        project_id = self.state.project_names.get(name)
        return None if project_id is None else self.state.projects[project_id]

    def list_projects(self) -> list[Project]:
        return list(self.state.projects.values())

    def put_project(self, project: Project) -> None:
        if project.id not in self.state.projects:
            # The task space exists before the project is visible, so nobody can see a
            # project whose tasks cannot be stored. A crash in between leaves an unlisted
            # directory that nothing refers to.
            self._storage.project_store(project.id).initialise([])
        self._put(PROJECT, project.id, project)

    def delete_project(self, project_id: str) -> None:
        self._put(PROJECT, project_id, None)
        self.after_commit.append(lambda: self._storage.drop_project_store(project_id))

    def session_by_token_hash(self, token_hash: str) -> Session | None:
        session_id = self.state.session_by_hash.get(token_hash)
        return None if session_id is None else self.state.sessions[session_id]

    def session_with_project(self, token_hash: str) -> tuple[Session, Project | None] | None:
        session = self.session_by_token_hash(token_hash)
        return None if session is None else (session, self.state.projects.get(session.project_id))

    def put_session(self, session: Session) -> None:
        self._put(SESSION, session.id, session)

    def delete_session(self, session_id: str) -> None:
        if session_id in self.state.sessions:
            self._put(SESSION, session_id, None)

    def sessions(self) -> list[Session]:
        return list(self.state.sessions.values())

    def has_admin_token(self, token_hash: str) -> bool:
        return token_hash in self.state.admin_tokens

    def add_admin_token(self, token_hash: str, created_at: float) -> None:
        self._put(ADMIN_TOKEN, token_hash, AdminTokenRecord(token_hash, created_at))

    def admin_token_count(self) -> int:
        return len(self.state.admin_tokens)
