"""Where a process's spans go: the standard OpenTelemetry variables, declared once.

Apart from `services.runtime.tracing` so the stacks can read it without the runtime.
"""

from services.runtime.environment import EnvironmentSettings, setting

__all__ = ["TracingSettings"]


class TracingSettings(EnvironmentSettings):
    """Where spans go; nothing is exported (or created by the SDK) when the endpoint is unset."""

    endpoint: str | None = setting(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        None,
        description="The OpenTelemetry collector's OTLP/HTTP base URL (spans go to "
        "`<url>/v1/traces`); unset: no exporter, traces are only propagated.",
        allowed="an http:// or https:// URL",
    )
    service_name: str | None = setting(
        "OTEL_SERVICE_NAME",
        None,
        description="The `service.name` of this process's spans (default: the deployable).",
    )
