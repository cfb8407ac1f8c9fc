"""The Course service's settings: everything `eduscale serve course` reads."""

from services.analytics.settings import AnalyticsSettings
from services.runtime.environment import WorkloadSettings
from services.runtime.kafka.settings import KafkaSettings
from services.runtime.settings import TokenServiceSettings
from services.runtime.tracing_settings import TracingSettings

__all__ = ["CourseSettings"]


class CourseSettings(WorkloadSettings):
    """Course verifies tokens, reports on analytics and emits learning events.

    Without KAFKA_BOOTSTRAP_SERVERS (a developer's shell) its events are counted as
    dropped instead of sent.
    """

    service: TokenServiceSettings
    analytics: AnalyticsSettings
    kafka: KafkaSettings | None = None
    tracing: TracingSettings
