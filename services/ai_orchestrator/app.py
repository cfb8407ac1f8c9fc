"""The AI orchestrator's ASGI app.

`uvicorn services.ai.app:app` builds it from the environment (the shared settings, plus
Kafka and the AI provider); tests call `create_app(...)` with their own settings.
"""

from collections.abc import Mapping
from typing import Any

from litestar import Litestar, Request
from litestar.di import Provide

from services.ai.document_routes import document_controller
from services.ai.routes import AIController
from services.ai.runtime import AIRuntime, ai_lifespan
from services.ai.settings import AISettings
from services.analytics.service import analytics_dependencies, analytics_health, emitter_lifespan
from services.analytics.settings import AnalyticsSettings
from services.common.app import app_from_environment, build_app
from services.common.settings import ServiceSettings
from services.messaging.settings import KafkaSettings

__all__ = ["create_app", "from_environment"]


def create_app(
    settings: ServiceSettings,
    ai: AISettings,
    kafka: KafkaSettings,
    analytics: AnalyticsSettings | None = None,
) -> Litestar:
    """The orchestrator app for these settings."""

    def provide_ai(request: Request[Any, Any, Any]) -> AIRuntime:
        runtime: AIRuntime = request.app.state.ai
        return runtime

    return build_app(
        "ai-orchestrator",
        settings,
        [AIController, document_controller(ai.document_max_bytes), analytics_health],
        description="AI generation: status, requests (through the outbox to Kafka), jobs;"
        " course documents (upload, indexing status, removal) and search over them.",
        dependencies={
            "ai": Provide(provide_ai, sync_to_thread=False),
            **analytics_dependencies(),
        },
        lifespans=[
            ai_lifespan(ai, kafka),
            emitter_lifespan(
                analytics or AnalyticsSettings(), kafka, client_id="ai-orchestrator-events"
            ),
        ],
    )


def from_environment(environ: Mapping[str, str]) -> Litestar:
    """The app for `environ`; `SettingsError` names a missing or malformed variable."""
    return create_app(
        ServiceSettings.from_env(environ),
        AISettings.from_env(environ),
        KafkaSettings.from_env(environ),
        AnalyticsSettings.from_env(environ),
    )


def __getattr__(name: str) -> Any:
    if name == "app":
        return app_from_environment(from_environment)
    raise AttributeError(name)
