"""What both AI workers (generation, indexer) read from their environment."""

from services.ai.settings import AISettings
from services.analytics.settings import AnalyticsSettings
from services.runtime.environment import WorkloadSettings
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import HealthSettings, ServiceSettings

__all__ = ["AIWorkerSettings"]


class AIWorkerSettings(WorkloadSettings):
    """An AI worker's sections.

    The data tier without a token key (it serves no clients), the provider and Qdrant,
    the broker, analytics events and the probes' port.
    """

    service: ServiceSettings
    ai: AISettings
    kafka: KafkaSettings
    analytics: AnalyticsSettings
    health: HealthSettings
