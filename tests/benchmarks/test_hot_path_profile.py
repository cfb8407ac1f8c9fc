"""How the hot-path profile charges a sampled stack to a part of the request."""

from __future__ import annotations

from benchmarks.hot_path_profile import EVENT_LOOP, charge

ROOT = [
    "serve (infra/service_commands.py:107)",
    "Server.run (uvicorn/server.py:86)",
    "asyncio_run (uvicorn/_compat.py:30)",
    "Runner.run (asyncio/runners.py:118)",
]
CYCLE = [*ROOT, "RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:422)"]


def test_a_library_leaf_is_charged_to_the_part_that_called_it() -> None:
    access = [
        *CYCLE,
        "AccessLog.flush (services/runtime/access_log.py:77)",
        "JSONRenderer.__call__ (structlog/processors.py:352)",
        "dumps (json/__init__.py:234)",
    ]
    assert charge(access) == "access log"


def test_asyncio_frames_belong_to_their_caller() -> None:
    write = [
        *CYCLE,
        "Redis.execute_command (redis/asyncio/client.py:813)",
        "StreamWriter.writelines (asyncio/streams.py:346)",
    ]
    assert charge(write) == "Redis client"


def test_only_unclaimed_samples_are_the_event_loop_s() -> None:
    assert charge(ROOT) == EVENT_LOOP
    assert charge(CYCLE) == "uvicorn (HTTP protocol, ASGI cycle)"
    assert charge(["<module> (somewhere.py:1)"]) == "other"


def test_the_http_metrics_are_their_own_part_not_the_server_s() -> None:
    # Wrapped around the app, the metrics sit under uvicorn's frames: charged to uvicorn,
    # their lock and histogram would pass for the server's own work.
    observe = [
        *CYCLE,
        "ProxyHeadersMiddleware.__call__ (uvicorn/middleware/proxy_headers.py:63)",
        "HTTPMetrics.__call__ (services/runtime/http_metrics.py:95)",
        "Histogram.observe (prometheus_client/metrics.py:685)",
        "MutexValue.inc (prometheus_client/values.py:28)",
    ]
    assert charge(observe) == "HTTP metrics"
