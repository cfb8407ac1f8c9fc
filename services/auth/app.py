"""The Auth service's ASGI app.

`uvicorn services.auth.app:app` builds it from the environment (see
`services.common.settings`); tests call `create_app(settings)` with their own settings.
"""

from collections.abc import Mapping
from typing import Any

from litestar import Litestar
from litestar.di import Provide

from services.auth.passwords import Passwords
from services.auth.routes import AuthController
from services.common.app import app_from_environment, build_app
from services.common.settings import ServiceSettings

__all__ = ["create_app", "from_environment"]


def create_app(settings: ServiceSettings) -> Litestar:
    """The Auth app for `settings`."""
    passwords = Passwords()
    return build_app(
        "auth",
        settings,
        [AuthController],
        description="Accounts, access tokens and user profiles.",
        dependencies={"passwords": Provide(lambda: passwords, sync_to_thread=False)},
    )


def from_environment(environ: Mapping[str, str]) -> Litestar:
    """The app for `environ`; `SettingsError` names a missing or malformed variable."""
    return create_app(ServiceSettings.from_env(environ))


def __getattr__(name: str) -> Any:
    if name == "app":
        return app_from_environment(from_environment)
    raise AttributeError(name)
