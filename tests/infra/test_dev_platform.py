"""`eduscale dev up` as a newcomer runs it: one command, one port, the whole journey.

Each test starts the real command in a subprocess (real PostgreSQL and Redis, the
embedded Tansu broker and Qdrant, the local OpenAI-compatible server) and talks to it
only through the gateway's port. Stopping it must exit 0 and leave no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import PROJECT_DIR
from kafka_broker import free_port
from pdf_factory import known_sentences, text_pdf
from service_harness import REDIS_URL, fresh_database

from contracts.routes import ROUTES
from infra.dev.local_env import jwt_secret, prepare_data_dir
from infra.dev.platform import PROCESSES, _worker
from infra.dev.supervisor import _service_of, render_line
from infra.service_commands import WORKERS

pytestmark = pytest.mark.usefixtures("redis_client")

START_TIMEOUT = 150.0
_PLATFORM_VARIABLES = ("KAFKA_", "OPENAI_", "DATABASE_", "REDIS_", "JWT_", "QDRANT_", "CORS_")


@dataclass
class DevUp:
    """A running `eduscale dev up` and everything it printed so far."""

    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return "\n".join(self.lines)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=30.0)


def platform_environment(database_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment without any platform variable, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_PLATFORM_VARIABLES)}
    return {**env, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL, **extra}


def command(port: int, data_dir: Path) -> list[str]:
    up = [sys.executable, "-m", "infra.cli", "dev", "up"]
    return [*up, "--port", str(port), "--data-dir", str(data_dir)]


def _proc_stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a live process, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process below `root`, with its start time (pids can be reused)."""
    parents: dict[int, list[tuple[int, str]]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _proc_stat(int(entry.name))) is not None:
            parents.setdefault(stat[0], []).append((int(entry.name), stat[2]))
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for pid, started in parents.get(todo.pop(), []):
            found[pid] = started
            todo.append(pid)
    return found


def survivors(processes: dict[int, str], within: float = 10.0) -> dict[int, str]:
    """Those of `processes` still alive (not zombies) after up to `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        alive = {}
        for pid, started in processes.items():
            stat = _proc_stat(pid)
            if stat is not None and stat[2] == started and stat[1] != "Z":
                alive[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


@contextmanager
def dev_up(env: dict[str, str], data_dir: Path) -> Iterator[DevUp]:
    """`eduscale dev up` on a free port, ready; killed (with its tree) if the test fails."""
    port = free_port()
    process = subprocess.Popen(
        command(port, data_dir),
        cwd=PROJECT_DIR,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a terminal's Ctrl-C is simulated with an explicit SIGINT
    )
    running = DevUp(process, port)
    assert process.stdout is not None
    reader = threading.Thread(
        target=lambda: running.lines.extend(line.rstrip("\n") for line in process.stdout),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not any("eduscale is running on" in line for line in running.lines):
            if process.poll() is not None:
                reader.join(5)
                pytest.fail(f"dev up exited with {process.returncode}:\n{running.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"dev up was not ready in {START_TIMEOUT:g} s:\n{running.output()}")
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            tree = descendants(process.pid)
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
            for pid in survivors(tree, within=5):
                os.kill(pid, signal.SIGKILL)
        reader.join(5)
        process.stdout.close()


def stop_cleanly(running: DevUp, signum: int) -> None:
    """Send `signum` as a user (Ctrl-C) or an init system would; exit 0, nothing left."""
    tree = descendants(running.process.pid)
    commands = [survivors({pid: started}, within=0) for pid, started in tree.items()]
    assert len(tree) >= 5, commands  # broker, auth, course, ai, gateway
    running.process.send_signal(signum)
    assert running.process.wait(60) == 0, running.output()
    time.sleep(0.2)
    assert survivors(tree, within=1) == {}, running.output()
    assert "stopped" in running.lines[-1], running.output()


def wait_until(check: Any, what: str, within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    last = None
    while time.monotonic() < deadline:
        done, last = check()
        if done:
            return last
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen in {within:g} s; last seen {last}")


def account(client: httpx.Client, email: str, role: str) -> dict[str, str]:
    password = "correct horse battery staple"
    registered = client.post(
        "/auth/register",
        json={"email": email, "password": password, "display_name": email, "role": role},
    )
    assert registered.status_code == 201, registered.text
    login = client.post("/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


def test_the_whole_journey_runs_through_the_one_gateway_port(tmp_path, fake_openai):  # noqa: PLR0915 - one journey, told in order
    with fresh_database("devup", migrate=False) as database_url:
        env = platform_environment(
            database_url, OPENAI_API_KEY="test-key", OPENAI_BASE_URL=fake_openai.base_url
        )
        with dev_up(env, tmp_path / "data") as running, running.client() as api:
            assert "migration(s) applied" in running.output()  # a new database is migrated
            assert "AI       available" in running.output()
            assert api.get("/ai/status").json()["generation"] == "available"

            instructor = account(api, "teacher@example.com", "instructor")
            student = account(api, "learner@example.com", "student")
            course = api.post("/courses", json={"title": "Science"}, headers=instructor)
            assert course.status_code == 201, course.text
            course_id = course.json()["id"]
            lesson = api.post(
                f"/courses/{course_id}/lessons",
                json={"title": "Plants", "body": "Photosynthesis makes glucose from light."},
                headers=instructor,
            )
            assert lesson.status_code == 201, lesson.text
            lesson_id = lesson.json()["id"]

            pdf = text_pdf([" ".join(known_sentences(3)), " ".join(known_sentences(3, start=3))])
            upload = api.post(
                "/ai/documents",
                data={"course_id": course_id},
                files={"file": ("notes.pdf", pdf, "application/pdf")},
                headers=instructor,
            )
            assert upload.status_code == 202, upload.text
            document_id = upload.json()["document_id"]

            def indexed() -> tuple[bool, Any]:
                body = api.get(f"/ai/documents/{document_id}", headers=instructor).json()
                assert body["status"] != "failed", body
                return body["status"] == "indexed", body

            wait_until(indexed, "indexing the PDF")
            found = api.get(
                "/ai/search",
                params={"course_id": course_id, "q": "storming of the Bastille French Revolution"},
                headers=student,
            )
            assert found.status_code == 200, found.text
            assert "Bastille" in found.json()["results"][0]["text"]

            accepted = api.post(
                "/ai/generations",
                json={"course_id": course_id, "lesson_id": lesson_id, "kind": "quiz"},
                headers=instructor,
            )
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]

            def generated() -> tuple[bool, Any]:
                body = api.get(f"/ai/jobs/{job_id}", headers=instructor).json()
                assert body["status"] not in {"failed", "dead_lettered"}, body
                return body["status"] == "succeeded", body

            job = wait_until(generated, "generating the quiz")
            assert fake_openai.chat_calls >= 1  # through the provider, not a stub
            questions = job["result"]["questions"]
            published = api.post(
                f"/courses/{course_id}/quizzes",
                json={"lesson_id": lesson_id, "title": "Plants quiz", "questions": questions},
                headers=instructor,
            )
            assert published.status_code == 201, published.text
            quiz_id = published.json()["id"]
            shown = api.get(f"/quizzes/{quiz_id}", headers=student).json()
            assert all("answer_index" not in q for q in shown["questions"])
            attempt = api.post(
                f"/quizzes/{quiz_id}/attempts",
                json={"answers": [q["answer_index"] for q in questions]},
                headers=student,
            )
            assert attempt.status_code == 201, attempt.text
            assert attempt.json()["score"] == len(questions)
            read = api.get(f"/courses/{course_id}/lessons/{lesson_id}", headers=student)
            assert read.status_code == 200, read.text

            def reported() -> tuple[bool, Any]:  # events -> Kafka -> sink -> ClickHouse
                response = api.get(f"/courses/{course_id}/analytics", headers=instructor)
                assert response.status_code == 200, response.text
                today = response.json()["series"][-1]
                return (today["quiz_attempts"], today["lessons_read"]) == (1, 1), today

            today = wait_until(reported, "the activity report")
            assert today["active_learners"] == 1
            assert today["mean_score"] == 1.0

            logs = running.output()
            for service in ("auth", "course", "ai-orchestrator", "indexer-worker", "gateway"):
                assert f"\n{service:<17}|" in logs, service  # prefixed by service
            assert "generation-worker| INFO    job_succeeded" in logs
            stop_cleanly(running, signal.SIGINT)


def test_without_an_openai_key_it_starts_degraded_and_seed_is_idempotent(tmp_path):
    with fresh_database("devup", migrate=False) as database_url:
        env = platform_environment(database_url)
        with dev_up(env, tmp_path / "data") as running, running.client() as api:
            assert "AI       DEGRADED: OPENAI_API_KEY is not set" in running.output()
            status = api.get("/ai/status").json()
            assert status["generation"] == "degraded"
            assert "OPENAI_API_KEY" in status["reason"]
            assert (tmp_path / "data" / "jwt-secret").stat().st_mode & 0o077 == 0

            seed = [sys.executable, "-m", "infra.cli", "dev", "seed", "--url", running.base_url]
            first = subprocess.run(
                seed, cwd=PROJECT_DIR, capture_output=True, text=True, check=False
            )
            assert first.returncode == 0, first.stderr
            assert "created the course" in first.stdout
            second = subprocess.run(
                seed, cwd=PROJECT_DIR, capture_output=True, text=True, check=False
            )
            assert second.returncode == 0, second.stderr
            assert "created" not in second.stdout
            assert "added" not in second.stdout
            assert "student@example.com / demo-student-pass" in second.stdout

            login = api.post(
                "/auth/login",
                json={"email": "instructor@example.com", "password": "demo-instructor-pass"},
            )
            assert login.status_code == 200
            token = {"Authorization": f"Bearer {login.json()['access_token']}"}
            courses = api.get("/courses", params={"q": "Demo: Fractions"}).json()["items"]
            assert len(courses) == 1
            course = api.get(f"/courses/{courses[0]['id']}").json()
            assert len(course["lessons"]) == 3
            report = api.get(f"/courses/{course['id']}/report", headers=token).json()
            assert [q["title"] for q in report["quizzes"]] == ["Fractions check"]
            stop_cleanly(running, signal.SIGTERM)


def test_a_killed_supervisor_takes_its_children_with_it(tmp_path):
    with (
        fresh_database("devup", migrate=False) as database_url,
        dev_up(platform_environment(database_url), tmp_path / "data") as running,
    ):
        tree = descendants(running.process.pid)
        running.process.kill()  # no chance to clean up: the kernel must
        running.process.wait(10)
        left = survivors(tree, within=40)
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert left == {}


def test_an_unreachable_postgresql_is_named_with_how_to_start_it(tmp_path):
    port = free_port()
    result = subprocess.run(
        command(free_port(), tmp_path / "data"),
        cwd=PROJECT_DIR,
        env=platform_environment(f"postgresql://postgres@127.0.0.1:{port}/eduscale"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"PostgreSQL is not reachable at 127.0.0.1:{port}" in result.stderr
    assert "pg_ctlcluster" in result.stderr
    assert "apt-get install postgresql" in result.stderr
    assert "DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_an_unreachable_redis_is_named_with_how_to_start_it(tmp_path):
    port = free_port()
    env = {
        **platform_environment("postgresql://postgres@127.0.0.1:5432/unused"),
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
    }
    result = subprocess.run(
        command(free_port(), tmp_path / "data"),
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"Redis is not reachable at 127.0.0.1:{port}" in result.stderr
    assert "redis-server" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_seed_says_how_to_start_the_platform_when_nothing_answers():
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli", "dev", "seed", "--url", url],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"nothing answers on {url}" in result.stderr
    assert "eduscale dev up" in result.stderr


def test_a_process_that_dies_stops_the_platform_with_an_error(tmp_path):
    with (
        fresh_database("devup", migrate=False) as database_url,
        dev_up(platform_environment(database_url), tmp_path / "data") as running,
    ):
        tree = descendants(running.process.pid)
        course = next(
            pid for pid in tree if b"serve\0course" in Path(f"/proc/{pid}/cmdline").read_bytes()
        )
        os.kill(course, signal.SIGKILL)
        assert running.process.wait(60) == 1
        time.sleep(0.2)
        assert "course exited with code -9; stopping" in running.output()
        assert survivors(tree, within=1) == {}, running.output()


def test_a_taken_port_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            command(port, tmp_path / "data"),
            cwd=PROJECT_DIR,
            env=platform_environment("postgresql://postgres@127.0.0.1:5432/unused"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "--port" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was prepared


def test_every_routed_service_is_served_by_exactly_one_local_process():
    served = [process.serves for process in PROCESSES if process.serves]
    assert sorted(served) == sorted({route.service for route in ROUTES})
    assert len({process.name for process in PROCESSES}) == len(PROCESSES)


def test_a_worker_is_one_line_running_eduscale_worker_with_health_on_its_port():
    for name in WORKERS:  # what `eduscale worker` accepts
        line = _worker(name)
        assert line.argv == ("infra.cli", "worker", name)
        assert line.ports == ("port",)  # passed as HEALTH_PORT and probed for readiness
        assert line.serves is None


def test_json_log_lines_are_shown_readably_and_by_the_service_that_wrote_them():
    line = (
        '{"service": "indexer-worker", "level": "info", "timestamp": "2026-01-01T00:00:00Z",'
        ' "message": "worker_started", "topic": "documents.uploaded"}'
    )
    assert render_line(line) == "INFO    worker_started topic=documents.uploaded"
    assert _service_of(line) == "indexer-worker"
    assert render_line("plain text\n") == "plain text"
    assert _service_of("plain text") is None


def test_the_local_jwt_secret_is_made_once_private_and_kept(tmp_path):
    data = prepare_data_dir(tmp_path / "data")
    first = jwt_secret(data)
    assert len(first) >= 32
    assert jwt_secret(data) == first  # tokens survive a restart
    assert (data / "jwt-secret").stat().st_mode & 0o777 == 0o600
    assert data.stat().st_mode & 0o077 == 0
    (data / "jwt-secret").write_text("short\n")  # truncated or hand-edited
    replaced = jwt_secret(data)
    assert replaced != first
    assert len(replaced) >= 32


def prometheus_api(base: str, path: str, **params: str) -> Any:
    response = httpx.get(f"{base}/api/v1/{path}", params=params, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


@pytest.mark.server
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="the prometheus package is absent")
def test_its_prometheus_scrapes_every_process_and_loads_the_alert_rules(tmp_path):
    jobs = {"auth", "course", "ai-orchestrator", "generation-worker", "indexer-worker", "gateway"}
    with fresh_database("devup", migrate=False) as database_url:
        env = platform_environment(database_url)
        with dev_up(env, tmp_path / "data") as running, running.client() as api:
            banner = [line for line in running.lines if "  metrics  http://" in line]
            assert len(banner) == 1, running.output()
            prometheus = banner[0].split("metrics", 1)[1].split()[0]
            for _ in range(3):
                assert api.get("/courses").status_code == 200
            assert api.get("/ai/status").status_code == 200
            assert api.post("/auth/login", json={"email": "x@example.com"}).status_code == 422

            def all_up() -> tuple[bool, Any]:
                targets = prometheus_api(prometheus, "targets")["activeTargets"]
                health = {t["labels"]["job"]: t["health"] for t in targets}
                return set(health) == jobs and set(health.values()) == {"up"}, health

            wait_until(all_up, "every process's target up", within=30)

            def routes_counted() -> tuple[bool, Any]:
                query = "sum by (job, http_route, http_response_status_code) (http_server_request_duration_seconds_count)"
                result = prometheus_api(prometheus, "query", query=query)["result"]
                seen = {
                    (
                        r["metric"]["job"],
                        r["metric"].get("http_route", ""),
                        r["metric"]["http_response_status_code"],
                    ): float(r["value"][1])
                    for r in result
                }
                wanted = {
                    ("course", "/courses", "200"): 3.0,
                    ("ai-orchestrator", "/ai/status", "200"): 1.0,
                    ("auth", "/auth/login", "422"): 1.0,
                }
                return all(seen.get(key) == count for key, count in wanted.items()), seen

            wait_until(routes_counted, "the requests counted per route", within=30)
            active = prometheus_api(prometheus, "query", query="http_server_active_requests")
            assert {r["metric"]["job"] for r in active["result"]} >= {
                "auth",
                "course",
                "ai-orchestrator",
            }
            # Sign-ups hash passwords with Argon2id (CPU-bound): 24 at once queue up in Auth.
            # They go to Auth's own port, as the gateway limits one client's request rate.
            (auth,) = [line.split("  auth     ", 1)[1].split()[0]
                       for line in running.lines if "  auth     http://" in line]  # fmt: skip

            def sign_up(index: int) -> int:
                body = {"email": f"load{index}@example.com", "password": "correct horse battery",
                        "display_name": f"Load {index}", "role": "student"}  # fmt: skip
                return direct.post("/auth/register", json=body).status_code

            with ThreadPoolExecutor(24) as pool, httpx.Client(base_url=auth, timeout=60) as direct:
                answers = list(pool.map(sign_up, range(48)))
            assert answers == [201] * 48

            def queue_seen() -> tuple[bool, Any]:
                query = 'max_over_time(http_server_active_requests{job="auth"}[2m])'
                result = prometheus_api(prometheus, "query", query=query)["result"]
                peak = max((float(r["value"][1]) for r in result), default=0.0)
                return peak >= 4, peak

            wait_until(queue_seen, "Auth's active requests rising under the load", within=30)
            groups = prometheus_api(prometheus, "rules")["groups"]
            alerts = {
                rule["name"]
                for group in groups
                for rule in group["rules"]
                if rule["type"] == "alerting"
            }
            assert {"EduscaleDeadLetterWrites", "EduscaleBreakerOpen"} <= alerts
            stop_cleanly(running, signal.SIGTERM)


@pytest.mark.server
def test_without_prometheus_it_says_how_to_get_it_and_runs_the_rest(tmp_path):
    with fresh_database("devup", migrate=False) as database_url:
        # A PATH with the project's Python and nothing else: no prometheus binary on it.
        env = platform_environment(database_url, PATH=str(Path(sys.executable).parent))
        with dev_up(env, tmp_path / "data") as running, running.client() as api:
            assert "Prometheus is not installed" in running.output()
            assert "apt-get install prometheus" in running.output()
            assert "  metrics  http://" not in running.output()
            assert api.get("/courses").status_code == 200
            stop_cleanly(running, signal.SIGTERM)


@pytest.mark.server
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="the prometheus package is absent")
def test_a_poison_message_fires_the_dead_letter_alert_in_its_prometheus(tmp_path):
    from confluent_kafka import Producer  # noqa: PLC0415

    from contracts.topics import GENERATION_REQUESTED  # noqa: PLC0415

    with fresh_database("devup", migrate=False) as database_url:
        env = platform_environment(database_url)
        with dev_up(env, tmp_path / "data") as running:
            (prometheus,) = [
                line.split("metrics", 1)[1].split()[0]
                for line in running.lines
                if "  metrics  http://" in line
            ]
            (bootstrap,) = [
                line.split("  kafka    ", 1)[1].split()[0]
                for line in running.lines
                if "  kafka    " in line
            ]

            def worker_scraped() -> tuple[bool, Any]:
                query = 'eduscale_dlq_writes_total{job="generation-worker"}'
                result = prometheus_api(prometheus, "query", query=query)["result"]
                return bool(result), result  # the series exists (at 0) before the poison

            wait_until(worker_scraped, "the worker's DLQ counter scraped", within=60)
            producer = Producer({"bootstrap.servers": bootstrap, "log_level": 0})
            producer.produce(GENERATION_REQUESTED.name, b"this is not a generation request")
            assert producer.flush(30) == 0

            def firing() -> tuple[bool, Any]:
                alerts = prometheus_api(prometheus, "alerts")["alerts"]
                states = {a["labels"]["alertname"]: a["state"] for a in alerts}
                return states.get("EduscaleDeadLetterWrites") == "firing", states

            # Pending as soon as the write is scraped, firing once it has held for `for: 1m`.
            wait_until(firing, "the dead-letter alert firing", within=150)
            stop_cleanly(running, signal.SIGTERM)
