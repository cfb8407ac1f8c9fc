"""The Auth service's settings: everything `eduscale serve auth` reads from its environment."""

from services.runtime.environment import WorkloadSettings
from services.runtime.settings import TokenServiceSettings
from services.runtime.tracing_settings import TracingSettings

__all__ = ["AuthSettings"]


class AuthSettings(WorkloadSettings):
    """Auth issues tokens: the token key is required."""

    service: TokenServiceSettings
    tracing: TracingSettings
