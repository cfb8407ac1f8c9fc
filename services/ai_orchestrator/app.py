"""The AI orchestrator's ASGI app.

`uvicorn services.ai_orchestrator.app:app` builds it from the environment (the shared settings, plus
Kafka and the AI provider); tests call `create_app(...)` with their own settings.
"""

from collections.abc import Mapping
from typing import Any

from litestar import Litestar, Request
from litestar.di import Provide

from services.ai.settings import AISettings
from services.ai_orchestrator.document_routes import document_controller
from services.ai_orchestrator.routes import AIController
from services.ai_orchestrator.runtime import AIRuntime, ai_lifespan
from services.ai_orchestrator.settings import AIOrchestratorSettings
from services.analytics.service import analytics_dependencies, analytics_health, emitter_lifespan
from services.analytics.settings import AnalyticsSettings
from services.runtime.app import app_from_environment, build_app
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import ServiceSettings

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
    settings = AIOrchestratorSettings.from_env(environ)
    return create_app(settings.service, settings.ai, settings.kafka, settings.analytics)


def __getattr__(name: str) -> Any:
    if name == "app":
        return app_from_environment(from_environment)
    raise AttributeError(name)
