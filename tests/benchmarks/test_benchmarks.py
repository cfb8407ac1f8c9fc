"""The benchmarks' pure parts: wrk's report, the request script, the results document.

Nothing here is timed: the figures themselves are measured by `python -m benchmarks`.
The wrk reports in `wrk_samples/` were captured from real wrk 4.1 runs.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from benchmarks.__main__ import SUITES, main
from benchmarks.bare_asgi import BODY_FILE_VARIABLE, from_environment
from benchmarks.figures import (
    Figure,
    merge_results,
    print_table,
    results_document,
    write_results,
)
from benchmarks.wrk import WrkError, WrkLoad, parse_wrk_output, run_wrk, write_requests
from benchmarks.zero_latency_llm import embedding

SAMPLES = Path(__file__).parent / "wrk_samples"


def test_a_wrk_report_gives_rate_and_percentiles_in_milliseconds():
    result = parse_wrk_output((SAMPLES / "ok.txt").read_text())
    assert result.requests == 81620
    assert result.seconds == pytest.approx(3.10)
    assert result.requests_per_second == pytest.approx(26332.18)
    assert result.p50_ms == pytest.approx(0.659)  # printed as 659.00us
    assert result.p75_ms == pytest.approx(0.88)
    assert result.p99_ms == pytest.approx(3.23)
    assert (result.non_2xx, result.socket_errors) == (0, 0)


def test_slow_answers_are_read_in_milliseconds_too():
    result = parse_wrk_output((SAMPLES / "slow.txt").read_text())
    assert result.p50_ms == pytest.approx(500.48)
    assert result.requests == 24
    assert result.requests_per_second == pytest.approx(7.97)


def test_error_answers_and_timeouts_are_counted():
    errors = parse_wrk_output((SAMPLES / "non_2xx.txt").read_text())
    assert errors.non_2xx == 27690
    timeouts = parse_wrk_output((SAMPLES / "timeouts.txt").read_text())
    assert (timeouts.timeouts, timeouts.socket_errors, timeouts.requests) == (8, 8, 8)


def test_a_report_without_latency_distribution_is_refused():
    text = (SAMPLES / "ok.txt").read_text().replace("Latency Distribution", "")
    text = "\n".join(line for line in text.splitlines() if "%  " not in line)
    with pytest.raises(WrkError, match="not a `wrk --latency` report"):
        parse_wrk_output(text)
    with pytest.raises(WrkError):
        parse_wrk_output("unable to connect to 127.0.0.1:8000 Connection refused")


def test_request_lines_cannot_smuggle_a_field_separator(tmp_path):
    with pytest.raises(ValueError, match="tab or newline"):
        write_requests(tmp_path / "r.tsv", [("/a\tb", "", "")])
    path = write_requests(tmp_path / "r.tsv", [("/a", "Bearer t", '{"x": 1}'), ("/b", "", "")])
    assert path.read_text() == '/a\tBearer t\t{"x": 1}\n/b\t\t\n'


class _Recorder(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, str, str, str]]
    lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length).decode()
        with self.lock:
            self.seen.append((self.command, self.path, self.headers.get("Authorization", ""), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        del format, args


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
@pytest.mark.server  # runs wrk
def test_wrk_sends_exactly_the_prepared_requests(tmp_path):
    _Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    lines = [(f"/item/{n}", f"Bearer token-{n}", json.dumps({"n": n})) for n in range(6)]
    try:
        result = run_wrk(
            f"http://127.0.0.1:{server.server_address[1]}",
            WrkLoad(seconds=1, connections=2, threads=2),
            write_requests(tmp_path / "r.tsv", lines),
            method="POST",
        )
    finally:
        server.shutdown()
        server.server_close()
    sent = {(path, auth, body) for _, path, auth, body in _Recorder.seen}
    assert sent == set(lines)  # every line is sent, and nothing else
    assert {method for method, *_ in _Recorder.seen} == {"POST"}
    assert result.requests > 0
    assert result.non_2xx == 0


def _figures() -> list[Figure]:
    return [
        Figure("bare_asgi", "bare", 10_000.0, "req/s", p50_ms=1.0, p99_ms=3.0),
        Figure("course_get_cached", "cached", 2_500.0, "req/s", reference="bare_asgi"),
        Figure("auth_login", "login", 4.5, "req/s", reference="bare_asgi"),
        Figure("orphan", "no reference here", 1.0, "s", reference="missing"),
    ]


def test_the_results_document_gives_each_figure_its_ratio(tmp_path):
    document = results_document(_figures())
    assert document["schema_version"] == 1
    assert set(document) == {"schema_version", "measured_at", "machine", "figures"}
    figures: dict[str, Any] = document["figures"]  # type: ignore[assignment]
    assert figures["course_get_cached"]["ratio"] == 0.25
    assert figures["auth_login"]["ratio"] == 0.00045  # significant, not rounded to 0
    assert figures["bare_asgi"]["ratio"] is None
    assert figures["orphan"]["ratio"] is None
    assert figures["bare_asgi"]["p99_ms"] == 3.0
    write_results(_figures(), tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["figures"].keys() == figures.keys()


def test_a_merged_run_replaces_only_its_figures_and_says_when(tmp_path):
    path = tmp_path / "baseline.json"
    write_results(
        [Figure("bare", "ceiling", 100.0, "req/s"), Figure("old", "kept", 7.0, "s")], path
    )
    merge_results(
        [Figure("bare", "ceiling", 200.0, "req/s"), Figure("read", "r", 50.0, "req/s", "bare")],
        path,
    )
    figures = json.loads(path.read_text())["figures"]
    assert figures["old"]["value"] == 7.0  # not re-measured: left as it was
    assert figures["bare"]["value"] == 200.0
    assert figures["read"]["ratio"] == 0.25  # against the reference of the same run
    assert figures["read"]["extra"]["measured_at"] == figures["bare"]["extra"]["measured_at"]
    assert "measured_at" not in figures["old"]["extra"]


def test_a_figure_is_not_merged_without_its_reference(tmp_path):
    path = tmp_path / "baseline.json"
    write_results([Figure("bare", "ceiling", 100.0, "req/s")], path)
    with pytest.raises(ValueError, match="its reference bare is not in this run"):
        merge_results([Figure("read", "r", 50.0, "req/s", "bare")], path)
    assert json.loads(path.read_text())["figures"]["bare"]["value"] == 100.0


def test_the_table_shows_small_ratios_without_an_exponent(capsys):
    print_table(_figures())
    lines = capsys.readouterr().out.splitlines()
    login = next(line for line in lines if line.startswith("login"))
    assert login.endswith("0.00045")
    cached = next(line for line in lines if line.startswith("cached"))
    assert cached.endswith("0.25")
    assert "e-0" not in "\n".join(lines)


def test_every_suite_is_a_module_with_run():
    assert {"preview", "http", "pipeline"} <= set(SUITES)
    for name, module in SUITES.items():
        if name == "semantic_cache" and importlib.util.find_spec("onnxruntime") is None:
            # Its model comes with the `bench` group; without it, importing says how to get it.
            with pytest.raises(ModuleNotFoundError, match="--group bench"):
                importlib.import_module(module)
            continue
        assert callable(importlib.import_module(module).run)


def test_an_unknown_suite_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--only", "nope"])
    assert "invalid choice" in capsys.readouterr().err


def test_the_bare_app_answers_the_given_bytes(tmp_path):
    body = tmp_path / "body.json"
    body.write_bytes(b'{"id": "c1", "lessons": []}')
    app = from_environment({BODY_FILE_VARIABLE: str(body)})
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app({"type": "http", "path": "/courses/c1"}, receive, send))  # type: ignore[arg-type]
    assert sent[0]["status"] == 200
    assert (b"content-length", b"27") in sent[0]["headers"]
    assert sent[1]["body"] == body.read_bytes()


def test_the_zero_latency_llm_tells_texts_apart():
    same = embedding("lesson 1", 256), embedding("lesson 1", 256)
    other = embedding("lesson 2", 256)
    assert same[0] == same[1]
    assert sum(a * a for a in same[0]) == pytest.approx(1.0)
    assert abs(sum(a * b for a, b in zip(same[0], other, strict=True))) < 0.5
