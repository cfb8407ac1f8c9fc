"""The analytics sink's settings: everything `eduscale worker analytics` reads."""

from services.analytics.settings import AnalyticsSettings
from services.runtime.environment import WorkloadSettings
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import HealthSettings, LoggingSettings

__all__ = ["AnalyticsSinkSettings"]


class AnalyticsSinkSettings(WorkloadSettings):
    """The sink touches only the broker and the analytics store: no database, no Redis."""

    analytics: AnalyticsSettings
    kafka: KafkaSettings
    logging: LoggingSettings
    health: HealthSettings
