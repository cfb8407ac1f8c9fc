"""The http suite runs the services with analytics on, and proves the events flowed.

In production every `GET /courses/{id}` sends a `course_viewed` event from the pod's CPU;
without a broker the emitter drops it at `emit()` and the figure would leave that cost
out. So the servers get the suite's broker, and a Course endpoint's run is refused unless
the broker received an event per request (its end offsets on `analytics.events`, counted
while the endpoint ran). These tests check the rule on counts, then drive the real Course
service briefly, with a broker and without one.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient

from benchmarks import http_endpoints as suite
from benchmarks.event_wire import PARTITIONS as PROD_PARTITIONS
from benchmarks.harness import fresh_database
from benchmarks.seed import seed_courses
from benchmarks.servers import Server, running_server, service_command
from benchmarks.wrk import WrkResult, write_requests
from contracts.topics import ANALYTICS_EVENTS

needs_wrk = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")


def _course_endpoint(requests: Path) -> suite._Endpoint:
    """The suite's `course_get_cached`, on its emitting server, driven by `requests`."""
    runs = suite._Requests(warmup=requests, rounds=(requests,))
    return suite._Endpoint("course_get_cached", "GET /courses/{id}", "course", runs)


def _counted(tmp_path: Path, *, sent: int, events: int | None) -> suite._Endpoint:
    """`course_get_cached` after a warm-up and a round that sent `sent` requests."""
    endpoint = _course_endpoint(tmp_path / "hot.tsv")
    endpoint.sent, endpoint.events, endpoint.runs = sent, events, 2
    endpoint.rounds.append(WrkResult(sent, 1.0, float(sent), 1, 1, 1, 1))
    return endpoint


def test_the_course_servers_emit_and_get_the_broker_without_the_sink():
    emitting = {name for name, spec in suite._SERVERS.items() if spec.emits}
    assert emitting == {"course", "course-uncached"}
    kafka = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9"}
    environ = suite._environ("postgresql://x/y", {"CONTENT_CACHE_TTL_SECONDS": "1"}, kafka)
    assert environ["KAFKA_BOOTSTRAP_SERVERS"] == "127.0.0.1:9"
    assert environ["ANALYTICS_LOCAL_SINK"] == "false"  # the sink is not the pod's work
    assert environ["CONTENT_CACHE_TTL_SECONDS"] == "1"


def test_an_event_per_request_is_accepted_and_recorded(tmp_path):
    in_flight = 2 * suite.CONNECTIONS  # one per connection and run, answered after wrk stopped
    for events in (1000, 1000 + in_flight):
        suite.check_events(_counted(tmp_path, sent=1000, events=events))
    figure = suite._figure(_counted(tmp_path, sent=1000, events=1010), reads=0)
    assert figure.extra["events_per_request"] == 1.01


@pytest.mark.parametrize(
    ("events", "said"),
    [
        (None, "received 0 events on analytics.events for 1000 requests"),  # never counted
        (0, "received 0 events"),  # the emitter disabled: every event dropped
        (999, "received 999 events"),  # one dropped
        (1000 + 2 * suite.CONNECTIONS + 1, "up to 64 more may have been in flight"),
    ],
)
def test_a_run_without_an_event_per_request_is_refused(tmp_path, events, said):
    endpoint = _counted(tmp_path, sent=1000, events=events)
    with pytest.raises(RuntimeError, match=said) as refused:
        suite.check_events(endpoint, lambda: 'Its emitter: {"dropped_disabled":1000}')
    assert "dropped_disabled" in str(refused.value)


def test_an_endpoint_whose_events_were_not_counted_records_none(tmp_path):
    figure = suite._figure(_counted(tmp_path, sent=1000, events=None), reads=0)
    assert "events_per_request" not in figure.extra


@contextmanager
def _course_server(database_url: str, kafka: dict[str, str]) -> Iterator[Server]:
    environ = suite._environ(database_url, {}, kafka)
    with running_server(service_command("course"), environ, pinned=False) as server:
        yield server


@needs_wrk
@pytest.mark.server  # Tansu, the Course service on PostgreSQL and Redis, and wrk
def test_the_broker_receives_an_event_per_cached_course_read(tmp_path):
    with (
        suite.analytics_broker() as broker,
        suite.event_count(broker) as events,
        fresh_database("bench_http_events") as url,
    ):
        admin = AdminClient({"bootstrap.servers": broker.bootstrap, "log_level": 0})
        topic = admin.list_topics(ANALYTICS_EVENTS.name, timeout=10).topics[ANALYTICS_EVENTS.name]
        assert len(topic.partitions) == PROD_PARTITIONS
        (course, *_) = seed_courses(url, 1)
        requests = write_requests(tmp_path / "hot.tsv", [(f"/courses/{course}", "", "")])
        endpoint = _course_endpoint(requests)
        with _course_server(url, broker.environ()) as server:
            events.settled()
            suite._drive(endpoint, server, 1, requests, events)  # refuses a missing event
            endpoint.rounds.append(suite._drive(endpoint, server, 1, requests, events))
    figure = suite._figure(endpoint, reads=None)
    assert endpoint.sent > 0
    per_request = figure.extra["events_per_request"]
    assert isinstance(per_request, float)
    assert 1 <= per_request <= 1.1


@needs_wrk
@pytest.mark.server  # Tansu, the Course service on PostgreSQL and Redis, and wrk
def test_a_course_server_without_the_broker_voids_the_run(tmp_path):
    with (
        suite.analytics_broker() as broker,
        suite.event_count(broker) as events,
        fresh_database("bench_http_events") as url,
    ):
        (course, *_) = seed_courses(url, 1)
        requests = write_requests(tmp_path / "hot.tsv", [(f"/courses/{course}", "", "")])
        endpoint = _course_endpoint(requests)
        with (
            _course_server(url, {}) as server,  # the emitter disabled, as the suite was
            pytest.raises(RuntimeError, match=r"received 0 events.*dropped_disabled"),
        ):
            suite._drive(endpoint, server, 1, requests, events)
