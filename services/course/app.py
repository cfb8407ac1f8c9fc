"""The Course service's ASGI app.

`uvicorn services.course.app:app` builds it from the environment (see
`services.common.settings`); tests call `create_app(settings)` with their own settings.
"""

from collections.abc import Mapping
from typing import Any

from litestar import Litestar

from services.common.app import app_from_environment, build_app
from services.common.settings import ServiceSettings
from services.course.routes import CourseController, QuizController

__all__ = ["create_app", "from_environment"]


def create_app(settings: ServiceSettings) -> Litestar:
    """The Course app for `settings`."""
    return build_app(
        "course",
        settings,
        [CourseController, QuizController],
        description="Course catalogue, lessons, quizzes and attempt reports.",
    )


def from_environment(environ: Mapping[str, str]) -> Litestar:
    """The app for `environ`; `SettingsError` names a missing or malformed variable."""
    return create_app(ServiceSettings.from_env(environ))


def __getattr__(name: str) -> Any:
    if name == "app":
        return app_from_environment(from_environment)
    raise AttributeError(name)
