"""The access log: one JSON line per request, written in batches, at the configured level."""

import asyncio
import io
import json
from datetime import UTC, datetime

from services.runtime.access_log import FLUSH_SECONDS, AccessLog


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_carries_the_request_its_service_level_time_and_message() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.configure("course")
    before = datetime.now(UTC)
    log.record("GET", '/courses/"quoted"\u00e9', 304, 0.42, "req-1")  # outside a loop: now
    [line] = _lines(stream)
    assert list(line) == [
        "method",
        "path",
        "status",
        "duration_ms",
        "request_id",
        "service",
        "level",
        "timestamp",
        "message",
    ]
    assert line["path"] == '/courses/"quoted"\u00e9'
    assert (line["status"], line["duration_ms"], line["request_id"]) == (304, 0.42, "req-1")
    assert (line["service"], line["level"], line["message"]) == ("course", "info", "request")
    stamp = str(line["timestamp"])
    assert stamp.endswith("Z")
    assert before <= datetime.fromisoformat(stamp) <= datetime.now(UTC)


def test_requests_inside_a_loop_are_written_together_after_the_flush_delay() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.configure("auth")

    async def serve() -> tuple[str, int]:
        for number in range(3):
            log.record("GET", "/auth/me", 200, 1.0, f"req-{number}")
        written_at_once = stream.getvalue()
        await asyncio.sleep(FLUSH_SECONDS * 3)
        return written_at_once, stream.getvalue().count("\n")

    written_at_once, lines = asyncio.run(serve())
    assert written_at_once == ""
    assert lines == 3
    assert [line["request_id"] for line in _lines(stream)] == ["req-0", "req-1", "req-2"]


def test_above_info_no_access_line_is_kept() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.configure("auth", "WARNING")
    log.record("GET", "/auth/me", 200, 1.0, "req-1")
    log.flush()
    assert stream.getvalue() == ""
    log.configure("auth", "debug")
    log.record("GET", "/auth/me", 200, 1.0, "req-2")
    assert [line["request_id"] for line in _lines(stream)] == ["req-2"]


def test_what_is_buffered_is_written_when_the_log_is_reconfigured() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.configure("auth")

    async def serve() -> None:
        log.record("GET", "/auth/me", 200, 1.0, "req-1")
        log.configure("auth")  # as an app built again does

    asyncio.run(serve())
    assert [line["request_id"] for line in _lines(stream)] == ["req-1"]
