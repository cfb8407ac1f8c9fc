"""Learning analytics: events emitted by the services, a Kafka sink into ClickHouse, reports.

`events` (the typed, versioned schema), `emitter` (bounded, never in a request's way),
`sink` and `sink_runner` (run by `eduscale worker analytics` or inside the Course
service), `store` (ClickHouse server or embedded
chDB), `schema` (the DDL), `reports` (the course time series), `service` (the wiring an
HTTP service adds).
"""

__all__: list[str] = []
