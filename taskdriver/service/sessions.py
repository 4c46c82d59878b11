"""Sessions and bearer tokens: operator tokens, agent sessions, sliding expiry.

A token is 32 random bytes (URL-safe base64); storage only ever sees its SHA-256. Sessions
live in storage, so every gunicorn worker and every restart sees the same ones, and a
logout takes effect everywhere at once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import replace
from pathlib import Path

from ..access import require_project
from ..config import ConfigError
from ..errors import Forbidden, TaskDriverError, Unauthenticated
from ..models import OPERATOR, SESSION_REPLACED_MESSAGE, Principal, Role, Session, new_id
from .base import Core, load_project

TOKEN_BYTES = 32
ADMIN_TOKEN_FILE = "admin.token"
MAX_TOUCH_INTERVAL_SECONDS = 60.0

log = logging.getLogger(__name__)


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read_token_file(path: Path) -> str | None:
    """The token in an existing token file, or None when there is no usable one."""
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        return None
    if len(token) < TOKEN_BYTES:
        raise ConfigError(f"{path} exists but holds no usable token; remove it to mint one")
    return token


class Authenticator:
    """Logs agents in and out and tells who a bearer token belongs to."""

    def __init__(self, core: Core) -> None:
        self.storage = core.storage
        self.settings = core.settings
        self.now = core.now
        # Sliding expiry without a storage write per request: a session's activity is
        # persisted at most this often, which moves its expiry by at most this much.
        self.touch_interval = min(MAX_TOUCH_INTERVAL_SECONDS, core.settings.session_ttl / 10)

    def mint_admin_token(self) -> str:
        """Create an operator token; only its hash is kept."""
        token = new_token()
        with self.storage.global_tx() as tx:
            tx.add_admin_token(hash_token(token), self.now())
        return token

    def bootstrap_admin_token(self) -> Path | None:
        """At start, with no operator token anywhere, give this storage one from the data dir.

        An existing `admin.token` is never overwritten (another server, say a file-backed
        one beside a PostgreSQL one, may rely on it): its token is adopted instead, so one
        file opens every server started on that data directory. Otherwise a new token is
        written there with O_EXCL and mode 0600. Runs under the global section so that of
        several workers starting at once only one does it. Returns the file used, or None
        when a token already exists (or comes from the environment).
        """
        if self.settings.admin_token:
            return None
        path = (self.settings.data_dir / ADMIN_TOKEN_FILE).resolve()
        with self.storage.global_tx() as tx:
            if tx.admin_token_count() > 0:
                return None
            path.parent.mkdir(parents=True, exist_ok=True)
            token = _read_token_file(path)
            if token is None:
                token = new_token()
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(token + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                action = "minted the first operator token into"
            else:
                action = "adopted the operator token already in"
            tx.add_admin_token(hash_token(token), self.now())
        log.warning("%s %s (mode 0600; only its hash is stored)", action, path)
        return path

    def login(self, agent_name: str, project_ref: str, agent_key: str | None,
              resume_existing: bool = False, allow_multiple_sessions: bool = False
              ) -> tuple[Session, str, bool]:
        """Open (or resume) an agent's session in one project: (session, token, resumed).

        By default a login ends the agent's other sessions in the project, so two processes
        under one name never both hold its lease. `allow_multiple_sessions` keeps them;
        `resume_existing` continues the agent's live session (same id, expiry extended)
        under a fresh token, since only token hashes are stored.
        """
        expected = self.settings.agent_key
        if expected is not None and not hmac.compare_digest(
                (agent_key or "").encode(), expected.encode()):
            raise Unauthenticated("Invalid agent key")
        now = self.now()
        token = new_token()
        with self.storage.global_tx() as tx:
            project = load_project(tx, project_ref, by_name=True)
            mine = sorted((s for s in tx.sessions()
                           if s.project_id == project.id and s.agent_name == agent_name
                           and s.live and s.expires_at > now),
                          key=lambda s: s.last_activity, reverse=True)
            if resume_existing and mine:
                session = replace(mine[0], token_hash=hash_token(token), last_activity=now,
                                  expires_at=max(mine[0].expires_at,
                                                 now + self.settings.session_ttl))
                tx.put_session(session)
                return session, token, True
            if not allow_multiple_sessions:
                for earlier in mine:
                    tx.put_session(replace(earlier, replaced_at=now))
            session = Session(id=new_id(), token_hash=hash_token(token),
                              agent_name=agent_name, project_id=project.id, created_at=now,
                              expires_at=now + self.settings.session_ttl, last_activity=now)
            tx.put_session(session)
        return session, token, False

    def operator_token_hash(self, token: str) -> str | None:
        """The hash of `token` if it is an operator's (for the dashboard's cookie session,
        which keeps only that hash), else None."""
        try:
            return hash_token(token) if self.authenticate(token).is_admin else None
        except Unauthenticated:
            return None

    def is_operator_token_hash(self, token_hash: str) -> bool:
        """Whether this hash still belongs to an operator token (a dashboard session ends
        when its token is no longer valid)."""
        env_token = self.settings.admin_token
        if env_token and hmac.compare_digest(hash_token(env_token), token_hash):
            return True
        with self.storage.global_tx(write=False) as tx:
            return tx.has_admin_token(token_hash)

    def authenticate(self, token: str | None) -> Principal:
        """The principal behind a bearer token; slides an agent session's expiry."""
        if not token:
            raise Unauthenticated()
        env_token = self.settings.admin_token
        if env_token and hmac.compare_digest(token.encode(), env_token.encode()):
            return OPERATOR
        token_hash = hash_token(token)
        now = self.now()
        with self.storage.global_tx(write=False) as tx:
            # Sessions first: agents make most requests, and a hash is in one table only.
            found = tx.session_with_project(token_hash)
            if found is None and tx.has_admin_token(token_hash):
                return OPERATOR
        if found is None:
            raise Unauthenticated("Invalid or expired token")
        session, project = found
        if not session.live:
            raise Unauthenticated(SESSION_REPLACED_MESSAGE.format(agent=session.agent_name))
        if session.expires_at > now and now - session.last_activity < self.touch_interval:
            return Principal(Role.AGENT, session, project)  # the common case: no write at all
        with self.storage.global_tx() as tx:
            current = tx.session_by_token_hash(token_hash)
            if current is None:
                raise Unauthenticated("Invalid or expired token")
            if not current.live:  # replaced since the read above
                raise Unauthenticated(SESSION_REPLACED_MESSAGE.format(agent=current.agent_name))
            if current.expires_at <= now:
                tx.delete_session(current.id)
                raise Unauthenticated("Invalid or expired token")
            touched = replace(current, last_activity=now,
                              expires_at=max(current.expires_at, now + self.settings.session_ttl))
            tx.put_session(touched)
        return Principal(Role.AGENT, touched, project)

    def ended_sessions(self, token_hashes: list[str]) -> dict[str, TaskDriverError]:
        """Of these agent sessions, the ones that ended (replaced by a newer login, logged
        out, expired), each with the error its next request gets. One read of every session
        (one query on PostgreSQL) serves all the long polls of a process, where a lookup per
        poll would cost a thousand queries a second for a thousand waiting agents."""
        now = self.now()
        wanted = set(token_hashes)
        with self.storage.global_tx(write=False) as tx:
            found = {s.token_hash: s for s in tx.sessions() if s.token_hash in wanted}
        ended: dict[str, TaskDriverError] = {}
        for token_hash in wanted:
            session = found.get(token_hash)
            if session is None or session.expires_at <= now:
                ended[token_hash] = Unauthenticated("Invalid or expired token")
            elif not session.live:
                ended[token_hash] = Unauthenticated(
                    SESSION_REPLACED_MESSAGE.format(agent=session.agent_name))
        return ended

    def logout(self, principal: Principal) -> None:
        """End an agent session; its token fails from now on."""
        if principal.session is None:
            raise Forbidden("Operator tokens have no session to log out of")
        with self.storage.global_tx() as tx:
            tx.delete_session(principal.session.id)

    def extend(self, principal: Principal, seconds: int) -> Session:
        """Push an agent session's expiry out by `seconds`."""
        if principal.session is None:
            raise Forbidden("Operator tokens do not expire")
        with self.storage.global_tx() as tx:
            session = tx.session_by_token_hash(principal.session.token_hash)
            if session is None:
                raise Unauthenticated("Invalid or expired token")
            require_project(principal, session.project_id)
            session = replace(session, expires_at=session.expires_at + seconds,
                              last_activity=self.now())
            tx.put_session(session)
        return session

    def purge_expired(self) -> int:
        """Delete sessions that expired unused (a used one is deleted when it is refused)."""
        now = self.now()
        with self.storage.global_tx() as tx:
            expired = [s.id for s in tx.sessions() if s.expires_at <= now]
            for session_id in expired:
                tx.delete_session(session_id)
        return len(expired)

    def active_sessions(self) -> int:
        """Sessions that have not expired."""
        now = self.now()
        with self.storage.global_tx(write=False) as tx:
            return sum(1 for s in tx.sessions() if s.live and s.expires_at > now)
