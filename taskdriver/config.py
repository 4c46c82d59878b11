"""Settings read once from the environment, with every default a named constant.

`create_app(config)` merges an explicit mapping over the environment so that each test can
build its own app with its own data directory without touching `os.environ`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_DATA_DIR = "./data"
DEFAULT_SESSION_TTL_SECONDS = 3600
DEFAULT_RATE_LIMIT = "100 per 15 minutes"
DEFAULT_RATE_LIMIT_STORAGE = ""  # "": a SQLite file in the data dir, shared by the host's workers
RATE_LIMIT_FILE = "rate-limits.sqlite3"
DEFAULT_CORS_ORIGINS = "*"
DEFAULT_TRUSTED_PROXIES = 0
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
# The longest `waitSeconds` a next-task may ask (the API refuses more) and the default of
# the operator's cap below it (TASKDRIVER_LONG_POLL_MAX_SECONDS).
DEFAULT_LONG_POLL_MAX_SECONDS = 30
# Threads per gunicorn worker (gunicorn.conf.py reads the same default). A waiting long poll
# holds one sleeping thread (about 45 KB); an eighth of them are kept for other requests.
DEFAULT_THREADS = 1024

_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A TASKDRIVER_* variable holds a value the server cannot use."""


def _parse_bool(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    raise ConfigError(f"{name} must be true or false, not {raw!r}")


def _parse_int(name: str, raw: str, minimum: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, not {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """What the app can be told; each field maps to one TASKDRIVER_* variable.

    TASKDRIVER_BIND and TASKDRIVER_WORKERS belong to gunicorn and are read by
    `gunicorn.conf.py`; TASKDRIVER_THREADS is read by both.
    """

    data_dir: Path = field(default_factory=lambda: Path(DEFAULT_DATA_DIR))
    storage_url: str = ""
    admin_token: str | None = None
    agent_key: str | None = None
    session_ttl: int = DEFAULT_SESSION_TTL_SECONDS
    rate_limit: str = DEFAULT_RATE_LIMIT
    rate_limit_storage: str = DEFAULT_RATE_LIMIT_STORAGE
    cors_origins: tuple[str, ...] = (DEFAULT_CORS_ORIGINS,)
    trusted_proxies: int = DEFAULT_TRUSTED_PROXIES
    fsync: bool = True
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    secret_key: str | None = None
    long_poll_max_seconds: int = DEFAULT_LONG_POLL_MAX_SECONDS
    threads: int = DEFAULT_THREADS

    @property
    def long_poll_capacity(self) -> int:
        """How many long polls one worker process lets wait at once: all its threads but
        an eighth, so `/health`, completes and logins always find a free thread."""
        return self.threads - self.threads // 8

    @property
    def rate_limit_enabled(self) -> bool:
        """Whether `/api/*` is rate limited at all (`TASKDRIVER_RATE_LIMIT=off` disables it)."""
        return self.rate_limit.strip().lower() not in _FALSE_WORDS

    @property
    def resolved_rate_limit_storage(self) -> str:
        """Where rate-limit counts live: by default one file every worker of this host shares."""
        if self.rate_limit_storage:
            return self.rate_limit_storage
        return f"sqlite://{(self.data_dir / RATE_LIMIT_FILE).resolve()}"

    @property
    def resolved_storage_url(self) -> str:
        """The storage URL, defaulting to file storage in the data directory."""
        return self.storage_url or f"file:{self.data_dir}"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build settings from TASKDRIVER_* keys (environment style, string values allowed)."""
        def get(name: str) -> Any:
            return values.get(f"TASKDRIVER_{name}")

        kwargs: dict[str, Any] = {}
        if (raw := get("DATA_DIR")) not in (None, ""):
            kwargs["data_dir"] = Path(str(raw))
        for name, attr in (("STORAGE_URL", "storage_url"), ("RATE_LIMIT", "rate_limit"),
                           ("RATE_LIMIT_STORAGE", "rate_limit_storage")):
            if (raw := get(name)) not in (None, ""):
                kwargs[attr] = str(raw)
        for name, attr in (("ADMIN_TOKEN", "admin_token"), ("AGENT_KEY", "agent_key"),
                           ("SECRET_KEY", "secret_key")):
            if (raw := get(name)) not in (None, ""):
                kwargs[attr] = str(raw)
        if (raw := get("SESSION_TTL")) not in (None, ""):
            kwargs["session_ttl"] = _parse_int("TASKDRIVER_SESSION_TTL", str(raw), 1)
        if (raw := get("TRUSTED_PROXIES")) not in (None, ""):
            kwargs["trusted_proxies"] = _parse_int("TASKDRIVER_TRUSTED_PROXIES", str(raw), 0)
        if (raw := get("LONG_POLL_MAX_SECONDS")) not in (None, ""):
            kwargs["long_poll_max_seconds"] = _parse_int("TASKDRIVER_LONG_POLL_MAX_SECONDS",
                                                         str(raw), 0)
        if (raw := get("THREADS")) not in (None, ""):
            kwargs["threads"] = _parse_int("TASKDRIVER_THREADS", str(raw), 1)
        if (raw := get("MAX_BODY_BYTES")) not in (None, ""):
            kwargs["max_body_bytes"] = _parse_int("TASKDRIVER_MAX_BODY_BYTES", str(raw), 1)
        if (raw := get("FSYNC")) not in (None, ""):
            kwargs["fsync"] = raw if isinstance(raw, bool) else _parse_bool(
                "TASKDRIVER_FSYNC", str(raw))
        if (raw := get("CORS_ORIGINS")) not in (None, ""):
            kwargs["cors_origins"] = tuple(o.strip() for o in str(raw).split(",") if o.strip())
        return cls(**kwargs)

    @classmethod
    def from_env(cls, overrides: Mapping[str, Any] | None = None) -> Settings:
        """Read the environment, then apply explicit overrides (used by tests and tools)."""
        merged: dict[str, Any] = {k: v for k, v in os.environ.items()
                                  if k.startswith("TASKDRIVER_")}
        known = {f"TASKDRIVER_{f.name.upper()}" for f in fields(cls)}
        unknown = sorted(k for k in (overrides or {}) if k not in known)
        if unknown:  # a typo in a test or tool's override would otherwise pass silently
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        merged.update(overrides or {})
        return cls.from_mapping(merged)
