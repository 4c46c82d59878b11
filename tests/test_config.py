"""Settings from the environment: defaults, parsing, and refusal of unusable values."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskdriver.config import ConfigError, Settings


def test_defaults_match_the_contract() -> None:
    settings = Settings.from_mapping({})
    assert settings.data_dir == Path("./data")
    assert settings.resolved_storage_url == "file:data"
    assert settings.session_ttl == 3600 and settings.fsync is True
    assert settings.rate_limit == "100 per 15 minutes" and settings.rate_limit_enabled
    assert settings.rate_limit_storage == ""
    assert settings.resolved_rate_limit_storage == \
        f"sqlite://{(settings.data_dir / 'rate-limits.sqlite3').resolve()}"
    assert settings.cors_origins == ("*",) and settings.trusted_proxies == 0
    assert settings.max_body_bytes == 10_485_760
    assert settings.admin_token is None and settings.agent_key is None


def test_values_are_parsed() -> None:
    settings = Settings.from_mapping({
        "TASKDRIVER_DATA_DIR": "/srv/td", "TASKDRIVER_FSYNC": "off",
        "TASKDRIVER_RATE_LIMIT": "OFF", "TASKDRIVER_CORS_ORIGINS": "https://a, https://b",
        "TASKDRIVER_SESSION_TTL": "60", "TASKDRIVER_TRUSTED_PROXIES": "2"})
    assert settings.resolved_storage_url == "file:/srv/td" and settings.fsync is False
    assert not settings.rate_limit_enabled
    assert settings.cors_origins == ("https://a", "https://b")
    assert settings.session_ttl == 60 and settings.trusted_proxies == 2


@pytest.mark.parametrize("name, value", [
    ("TASKDRIVER_FSYNC", "maybe"), ("TASKDRIVER_SESSION_TTL", "soon"),
    ("TASKDRIVER_SESSION_TTL", "0"), ("TASKDRIVER_TRUSTED_PROXIES", "-1"),
    ("TASKDRIVER_MAX_BODY_BYTES", "lots")])
def test_unusable_values_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_mapping({name: value})


def test_a_mistyped_override_is_refused() -> None:
    with pytest.raises(ConfigError, match="TASKDRIVER_FSNYC"):
        Settings.from_env({"TASKDRIVER_FSNYC": "false"})


def test_long_poll_cap_is_a_setting() -> None:
    assert Settings.from_mapping({}).long_poll_max_seconds == 30
    assert Settings.from_mapping({"TASKDRIVER_LONG_POLL_MAX_SECONDS": "5"}
                                 ).long_poll_max_seconds == 5
    with pytest.raises(ConfigError):
        Settings.from_mapping({"TASKDRIVER_LONG_POLL_MAX_SECONDS": "-1"})
