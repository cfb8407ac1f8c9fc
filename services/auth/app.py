"""The Auth service's ASGI app.

`uvicorn services.auth.app:app` builds it from the environment (see
`services.runtime.settings`); tests call `create_app(settings)` with their own settings.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from litestar import Litestar, Request
from litestar.di import Provide

from services.auth.fast_reads import auth_fast_routes
from services.auth.passwords import Passwords
from services.auth.profiles import ProfileStore
from services.auth.routes import AuthController
from services.auth.settings import AuthSettings
from services.runtime.app import app_from_environment, build_app
from services.runtime.cache import open_redis
from services.runtime.resources import RedisFactory, Resources
from services.runtime.settings import ServiceSettings

__all__ = ["create_app", "from_environment"]


@asynccontextmanager
async def _profiles(app: Litestar) -> AsyncIterator[None]:
    """One profile store per app, over the pools the shared lifespan has just opened."""
    resources: Resources = app.state.resources
    app.state.profiles = ProfileStore(
        resources.databases, resources.redis, resources.settings.profile_cache_ttl_seconds
    )
    yield


def _provide_profiles(request: Request[Any, Any, Any]) -> ProfileStore:
    profiles: ProfileStore = request.app.state.profiles
    return profiles


def create_app(settings: ServiceSettings, *, open_cache: RedisFactory = open_redis) -> Litestar:
    """The Auth app for `settings`; `open_cache` makes its Redis client (tests wrap it)."""
    passwords = Passwords()
    return build_app(
        "auth",
        settings,
        [AuthController],
        description="Accounts, access tokens and user profiles.",
        dependencies={
            "passwords": Provide(lambda: passwords, sync_to_thread=False),
            "profiles": Provide(_provide_profiles, sync_to_thread=False),
        },
        lifespans=[_profiles],
        open_cache=open_cache,
        fast_routes=auth_fast_routes,
    )


def from_environment(environ: Mapping[str, str]) -> Litestar:
    """The app for `environ`; `SettingsError` names a missing or malformed variable."""
    return create_app(AuthSettings.from_env(environ).service)


def __getattr__(name: str) -> Any:
    if name == "app":
        return app_from_environment(from_environment)
    raise AttributeError(name)
