"""IAM database authentication: each new connection presents a freshly signed RDS token."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from components.database import APP_USER
from services.runtime.iam_auth import iam_token_kwargs
from services.runtime.migrations import load_migrations
from services.runtime.settings import ServiceSettings, SettingsError

pytestmark = pytest.mark.anyio


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    # Static credentials stand for the pod's IRSA ones; signing happens locally.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.usefixtures("aws_credentials")
async def test_every_connection_gets_a_fresh_signed_token() -> None:
    url = "postgresql://eduscale_app@db.internal.example:5432/eduscale?sslmode=verify-full"
    make_kwargs = iam_token_kwargs(url, "eu-west-1", {"autocommit": True})
    kwargs = await make_kwargs()
    assert kwargs["autocommit"] is True
    token = kwargs["password"]
    assert token.startswith("db.internal.example:5432/?")
    query = parse_qs(urlsplit("https://" + token).query)
    assert query["Action"] == ["connect"]
    assert query["DBUser"] == ["eduscale_app"]
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-1", "rds-db"]
    assert int(query["X-Amz-Expires"][0]) == 900


def test_iam_auth_needs_a_region() -> None:
    environ = {
        "DATABASE_URL": "postgresql://eduscale_app@db/eduscale",
        "REDIS_URL": "redis://cache",
        "JWT_SECRET": "k" * 32,
        "DATABASE_IAM_AUTH": "true",
    }
    with pytest.raises(SettingsError, match=r"^AWS_REGION is not set"):
        ServiceSettings.from_env(environ)
    assert ServiceSettings.from_env(environ | {"AWS_REGION": "eu-west-1"}).database_iam_auth


def test_the_app_role_migration_names_the_user_the_iam_policy_grants() -> None:
    (role,) = [m for m in load_migrations() if m.name == "app_role"]
    assert f"CREATE ROLE {APP_USER} LOGIN" in role.sql
    assert f"GRANT rds_iam TO {APP_USER}" in role.sql
