"""Service settings from environment variables: defaults, and one clear line per mistake."""

from __future__ import annotations

import pytest

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
    with pytest.raises(AttributeError):
        settings.jwt_secret = "other"  # type: ignore[misc]
