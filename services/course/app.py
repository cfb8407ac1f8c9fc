"""The Course service's ASGI app.

`uvicorn services.course.app:app` builds it from the environment (see
`services.runtime.settings` and `services.analytics.settings`); tests call
`create_app(settings, ...)` with their own settings.
"""

from collections.abc import Mapping
from typing import Any

from litestar import Litestar

from services.analytics.service import (
    analytics_dependencies,
    analytics_health,
    emitter_lifespan,
    report_store_lifespan,
)
from services.analytics.settings import AnalyticsSettings
from services.course.analytics import AnalyticsController
from services.course.fast_reads import course_fast_routes
from services.course.routes import CourseController, QuizController
from services.course.settings import CourseSettings
from services.runtime.app import app_from_environment, build_app
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import ServiceSettings

__all__ = ["create_app", "from_environment"]


def create_app(
    settings: ServiceSettings,
    analytics: AnalyticsSettings | None = None,
    kafka: KafkaSettings | None = None,
) -> Litestar:
    """The Course app for `settings`.

    Without `analytics` there is no report store (the analytics report answers 503);
    without `kafka`, analytics events are counted as dropped instead of sent.
    """
    lifespans = [emitter_lifespan(analytics or AnalyticsSettings(), kafka, client_id="course")]
    if analytics is not None:
        lifespans.append(report_store_lifespan(analytics, kafka))
    return build_app(
        "course",
        settings,
        [CourseController, QuizController, AnalyticsController, analytics_health],
        description="Course catalogue, lessons, quizzes, attempt reports and activity time series.",
        dependencies=analytics_dependencies(reports=True),
        lifespans=lifespans,
        fast_routes=course_fast_routes,
    )


def from_environment(environ: Mapping[str, str]) -> Litestar:
    """The app for `environ`; `SettingsError` names a missing or malformed variable."""
    settings = CourseSettings.from_env(environ)
    return create_app(settings.service, settings.analytics, settings.kafka)


def __getattr__(name: str) -> Any:
    if name == "app":
        return app_from_environment(from_environment)
    raise AttributeError(name)
