"""Traces across gateway → orchestrator → Kafka → worker → provider, and their cost when off.

The end-to-end case runs the orchestrator and the generation worker as the processes a
pod runs (`eduscale serve`, `eduscale worker`), exporting to a real OTLP/HTTP receiver.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import uuid

import anyio
import httpx
import pytest
from ai_platform import running_platform, worker_environ
from child_process import running, wait_ready
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from fake_openai import FakeOpenAI
from kafka_broker import PARTITIONS, QUIET, Broker, free_port
from litestar.testing import AsyncTestClient
from otlp_receiver import OTLPReceiver, ReceivedSpan
from service_harness import JWT_SECRET, settings_for

from contracts.topics import GENERATION_REQUESTED
from services.auth.app import from_environment as auth_from_environment
from services.course.app import create_app as create_course_app
from services.runtime.settings import ServiceSettings
from services.runtime.tokens import Principal, TokenIssuer
from services.runtime.tracing import (
    install_tracing,
    propagate_incoming,
    server_middleware,
    tracing_enabled,
)
from services.runtime.tracing_settings import TracingSettings

SERVER_SPAN, PRODUCER_SPAN, CONSUMER_SPAN, CLIENT_SPAN = 2, 4, 5, 3  # OTLP Span.SpanKind


def incoming_traceparent() -> tuple[str, str, str]:
    """A caller's (the gateway's) traceparent: its trace id and span id too."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def message_headers(broker: Broker, topic: str) -> list[dict[str, bytes]]:
    """The headers of every message on `topic`, read from the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": broker.bootstrap,
            "group.id": f"probe-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": QUIET,
        }
    )
    consumer.assign([TopicPartition(topic, n, OFFSET_BEGINNING) for n in range(PARTITIONS)])
    found: list[dict[str, bytes]] = []
    deadline = time.monotonic() + 20
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None and found:
                break
            if message is not None and message.error() is None:
                raw = message.headers() or []
                pairs = raw.items() if isinstance(raw, dict) else raw
                found.append({k: v for k, v in pairs if isinstance(v, bytes)})
    finally:
        consumer.close()
    return found


# --- off: nothing installed, the incoming traceparent still reaches Kafka -----------------


def test_without_an_endpoint_no_exporter_is_installed_and_requests_only_propagate() -> None:
    environ = {
        "DATABASE_URL": "postgresql://app@db.example:5432/app",  # not opened: no lifespan
        "REDIS_URL": "redis://cache.example:6379/0",
        "JWT_SECRET": JWT_SECRET,
    }
    assert install_tracing(TracingSettings.from_env(environ), "auth") is None
    assert not tracing_enabled()
    assert server_middleware() is propagate_incoming
    app = auth_from_environment(environ)
    assert propagate_incoming in app.middleware


@pytest.mark.server
@pytest.mark.anyio
@pytest.mark.usefixtures("redis_client")
async def test_an_incoming_traceparent_reaches_the_kafka_message_with_tracing_off(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    traceparent, _trace_id, _span_id = incoming_traceparent()
    async with running_platform(core_db, kafka_broker, fake_openai.base_url) as platform:
        course_id, lesson_id = await platform.lesson()
        response = await platform.request(course_id, lesson_id, traceparent=traceparent)
        assert response.status_code == 202, response.text
        await platform.wait_for(response.json()["job_id"], "succeeded")
    headers = message_headers(kafka_broker, GENERATION_REQUESTED.name)
    assert headers == [{"traceparent": traceparent.encode()}]


# --- on: one trace across the processes ----------------------------------------------------


def job_succeeds(base: str, job_id: str, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + 60
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = httpx.get(f"{base}/ai/jobs/{job_id}", headers=headers, timeout=5).json()
        if body.get("status") == "succeeded":
            return
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not succeed: {body}")


def one_trace(spans: list[ReceivedSpan], trace_id: str) -> dict[str, ReceivedSpan]:
    return {span.span_id: span for span in spans if span.trace_id == trace_id}


async def a_lesson(settings: ServiceSettings, bearer: dict[str, str]) -> tuple[str, str]:
    """A course with one lesson, made through the Course app (not traced: in-process)."""
    async with AsyncTestClient(create_course_app(settings)) as course:
        created = await course.post("/courses", json={"title": "Maths"}, headers=bearer)
        course_id = str(created.json()["id"])
        lesson = await course.post(
            f"/courses/{course_id}/lessons",
            json={"title": "Fractions", "body": "A fraction is a part of a whole."},
            headers=bearer,
        )
        return course_id, str(lesson.json()["id"])


@pytest.mark.server
@pytest.mark.usefixtures("redis_client")
def test_one_trace_runs_from_the_request_through_kafka_and_the_worker_to_the_provider(
    core_db: str, kafka_broker: Broker, fake_openai: FakeOpenAI
) -> None:
    receiver = OTLPReceiver().start()
    try:
        env = {
            **worker_environ(core_db, kafka_broker, fake_openai.base_url),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "JWT_SECRET": JWT_SECRET,
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        orchestrator = [sys.executable, "-m", "infra.cli", "serve", "ai-orchestrator"]
        worker = [sys.executable, "-m", "infra.cli", "worker", "generation"]
        settings = settings_for(core_db)
        instructor = Principal(user_id=uuid.uuid4(), role="instructor")
        bearer = {"Authorization": f"Bearer {TokenIssuer(settings).issue(instructor)}"}
        course_id, lesson_id = anyio.run(a_lesson, settings, bearer)
        with (
            running([*orchestrator, "--port", str(port)], env) as api,
            running(worker, {**env, "OTEL_SERVICE_NAME": "generation"}) as _worker,
        ):
            wait_ready(f"{base}/health/ready", api)
            traceparent, trace_id, gateway_span = incoming_traceparent()
            response = httpx.post(
                f"{base}/ai/generations",
                json={"course_id": course_id, "lesson_id": lesson_id, "kind": "quiz"},
                headers={**bearer, "traceparent": traceparent},
                timeout=10,
            )
            assert response.status_code == 202, response.text
            job_succeeds(base, response.json()["job_id"], bearer)
            chat = receiver.wait_for(f"chat {fake_openai_model(env)}")
        spans = one_trace(receiver.spans, trace_id)
    finally:
        receiver.stop()

    assert chat.trace_id == trace_id
    server = next(s for s in spans.values() if s.kind == SERVER_SPAN)
    assert (server.service, server.parent_span_id) == ("ai-orchestrator", gateway_span)
    producer = next(s for s in spans.values() if s.name == "create generation.requested")
    assert producer.kind == PRODUCER_SPAN
    assert ancestors(spans, producer)[-1] is server
    consumer = next(s for s in spans.values() if s.name == "process generation.requested")
    assert (consumer.kind, consumer.service) == (CONSUMER_SPAN, "generation")
    assert consumer.parent_span_id == producer.span_id
    assert consumer in ancestors(spans, chat)
    assert chat.kind == CLIENT_SPAN
    assert chat.attributes["gen_ai.system"] == "openai"
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.request.model"] == fake_openai_model(env)
    headers = message_headers(kafka_broker, GENERATION_REQUESTED.name)
    assert headers == [{"traceparent": f"00-{trace_id}-{producer.span_id}-01".encode()}]


def fake_openai_model(env: dict[str, str]) -> str:
    return env.get("OPENAI_MODEL", "gpt-4o-mini")


def ancestors(spans: dict[str, ReceivedSpan], span: ReceivedSpan) -> list[ReceivedSpan]:
    """The span's parents, nearest first, as far as this trace's spans reach."""
    chain: list[ReceivedSpan] = []
    while span.parent_span_id in spans:
        span = spans[span.parent_span_id]
        chain.append(span)
    return chain
