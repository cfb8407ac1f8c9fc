"""The AI orchestrator's settings: everything `eduscale serve ai-orchestrator` reads."""

from services.ai.settings import AISettings
from services.analytics.settings import AnalyticsSettings
from services.runtime.environment import WorkloadSettings
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import TokenServiceSettings
from services.runtime.tracing_settings import TracingSettings

__all__ = ["AIOrchestratorSettings"]


class AIOrchestratorSettings(WorkloadSettings):
    """The orchestrator verifies tokens, queues jobs on Kafka and emits learning events."""

    service: TokenServiceSettings
    ai: AISettings
    kafka: KafkaSettings
    analytics: AnalyticsSettings
    tracing: TracingSettings
