"""Service settings from environment variables: defaults, and one clear line per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.runtime.settings import ServiceSettings, SettingsError

GOOD = {
    "DATABASE_URL": "postgresql://app:s3cret@db.internal:5432/eduscale",
    "REDIS_URL": "rediss://:t0ken@cache.internal:6379/0",
    "JWT_SECRET": "k" * 32,
}


def test_the_three_required_variables_are_enough() -> None:
    settings = ServiceSettings.from_env(GOOD)
    assert settings.database_replica_urls == ()
    assert settings.jwt_ttl_seconds == 3600
    assert settings.log_level == "INFO"
    assert settings.cors_origins == ()


def test_every_documented_variable_is_read() -> None:
    settings = ServiceSettings.from_env(
        GOOD
        | {
            "DATABASE_REPLICA_URLS": "postgresql://r1.internal/eduscale, postgresql://r2.internal/eduscale",
            "JWT_TTL_SECONDS": "900",
            "CORS_ORIGINS": "https://app.example.com,http://localhost:5173",
            "LOG_LEVEL": "debug",
            "REDIS_CLUSTER": "true",
            "CONTENT_CACHE_TTL_SECONDS": "120",
            "READ_YOUR_WRITES_SECONDS": "2.5",
        }
    )
    assert settings.database_replica_urls == (
        "postgresql://r1.internal/eduscale",
        "postgresql://r2.internal/eduscale",
    )
    assert settings.jwt_ttl_seconds == 900
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:5173")
    assert settings.log_level == "DEBUG"
    assert settings.redis_cluster is True
    assert settings.content_cache_ttl_seconds == 120
    assert settings.read_your_writes_seconds == 2.5


@pytest.mark.parametrize(
    ("change", "names", "allowed"),
    [
        ({"DATABASE_URL": ""}, "DATABASE_URL", "postgresql://"),
        ({"DATABASE_URL": "mysql://db/x"}, "DATABASE_URL", "postgresql"),
        (
            {"DATABASE_REPLICA_URLS": "postgresql://ok/db,nonsense"},
            "DATABASE_REPLICA_URLS",
            "postgresql",
        ),
        ({"REDIS_URL": "http://cache"}, "REDIS_URL", "rediss"),
        ({"JWT_SECRET": "short"}, "JWT_SECRET", "at least 32"),
        ({"JWT_TTL_SECONDS": "soon"}, "JWT_TTL_SECONDS", "whole number"),
        ({"JWT_TTL_SECONDS": "5"}, "JWT_TTL_SECONDS", "from 60 to 86400"),
        ({"READ_YOUR_WRITES_SECONDS": "nan"}, "READ_YOUR_WRITES_SECONDS", "from 0"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL", "DEBUG, INFO"),
        ({"CORS_ORIGINS": "https://app.example.com/path"}, "CORS_ORIGINS", "without a path"),
        ({"REDIS_CLUSTER": "maybe"}, "REDIS_CLUSTER", "true or false"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_is_allowed(change, names, allowed) -> None:
    with pytest.raises(SettingsError) as caught:
        ServiceSettings.from_env(GOOD | change)
    message = str(caught.value)
    assert message.startswith(names)
    assert allowed in message
    assert "\n" not in message


def test_errors_never_echo_credentials() -> None:
    with pytest.raises(SettingsError) as caught:
        ServiceSettings.from_env(GOOD | {"DATABASE_URL": "mysql://app:hunter2@db/x"})
    assert "hunter2" not in str(caught.value)


def test_settings_are_frozen() -> None:
    settings = ServiceSettings.from_env(GOOD)
    with pytest.raises(ValidationError, match="frozen"):
        settings.jwt_secret = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "allowed"),
    [
        (
            {"DATABASE_POOL_MAX_SIZE": "2.9"},
            "DATABASE_POOL_MAX_SIZE='2.9' is not allowed: use a whole number from 1 to 200",
        ),
        (
            {"DATABASE_POOL_MAX_SIZE": "0"},
            "DATABASE_POOL_MAX_SIZE='0' is not allowed: use a whole number from 1 to 200",
        ),
        (
            {"DATABASE_POOL_TIMEOUT_SECONDS": "inf"},
            "DATABASE_POOL_TIMEOUT_SECONDS='inf' is not allowed: use a number from 0.1 to 60",
        ),
    ],
)
def test_numbers_are_strict_and_bounded(change, allowed) -> None:
    with pytest.raises(SettingsError) as caught:
        ServiceSettings.from_env(GOOD | change)
    assert str(caught.value) == allowed


def test_a_secret_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text("f" * 40 + "\n")
    environ = {k: v for k, v in GOOD.items() if k != "JWT_SECRET"}
    settings = ServiceSettings.from_env(environ | {"JWT_SECRET_FILE": str(tmp_path / "jwt")})
    assert settings.jwt_secret == "f" * 40  # the file's trailing newline is not the key's


def test_a_secret_given_twice_or_unreadable_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text("f" * 40)
    with pytest.raises(SettingsError, match=r"^JWT_SECRET and JWT_SECRET_FILE are both set"):
        ServiceSettings.from_env(GOOD | {"JWT_SECRET_FILE": str(tmp_path / "jwt")})
    missing = str(tmp_path / "absent")
    with pytest.raises(SettingsError, match=r"^REDIS_URL_FILE=.*absent.* cannot be read"):
        ServiceSettings.from_env(GOOD | {"REDIS_URL": "", "REDIS_URL_FILE": missing})


def test_a_secret_read_from_a_file_is_never_echoed(tmp_path: Path) -> None:
    (tmp_path / "jwt").write_text("hunter2")
    environ = {k: v for k, v in GOOD.items() if k != "JWT_SECRET"}
    with pytest.raises(SettingsError) as caught:
        ServiceSettings.from_env(environ | {"JWT_SECRET_FILE": str(tmp_path / "jwt")})
    assert str(caught.value).startswith("JWT_SECRET=<hidden, 7 characters> is not allowed")
    assert "hunter2" not in str(caught.value)
