"""What both AI workers (generation, indexer) read from their environment."""

from services.ai.settings import AISettings
from services.analytics.settings import AnalyticsSettings
from services.runtime.environment import WorkloadSettings
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import DataSettings, HealthSettings
from services.runtime.tracing_settings import TracingSettings

__all__ = ["AIWorkerSettings"]


class AIWorkerSettings(WorkloadSettings):
    """An AI worker's sections.

    The data tier without a token key, CORS or HTTP limits (it serves no clients), the
    provider and Qdrant, the broker, analytics events and the probes' port.
    """

    service: DataSettings
    ai: AISettings
    kafka: KafkaSettings
    analytics: AnalyticsSettings
    health: HealthSettings
    tracing: TracingSettings
