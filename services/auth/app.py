"""The Auth service's ASGI app.

`uvicorn services.auth.app:app` builds it from the environment (see
`services.common.settings`); tests call `create_app(settings)` with their own settings.
"""

from typing import Any

from litestar import Litestar
from litestar.di import Provide

from services.auth.passwords import Passwords
from services.auth.routes import AuthController
from services.common.app import app_from_environment, build_app
from services.common.settings import ServiceSettings

__all__ = ["create_app"]


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


def __getattr__(name: str) -> Any:
    if name == "app":
        return app_from_environment(create_app)
    raise AttributeError(name)
