"""Random requests against every endpoint that reads a body, a query or a path: never a 5xx.

Whatever a client sends (arbitrary bytes, broken or wrongly shaped JSON, the right keys with
values of any type and size, text with NUL or invalid UTF-8, unknown fields, odd query
strings), the answer is a 2xx or a 4xx, and every 4xx is an RFC 9457 problem document.
Requests carry a valid token of the owner, so they get past authentication and reach
validation and the handlers; a real course, lesson and quiz exist so paths point at rows.
Besides the random examples, each endpoint always gets a fixed set: its valid body with NUL
put into each string, invalid UTF-8 in each field, deep nesting and an unknown field. Every
GET also gets random ids in its path and garbage in the headers it reads (Authorization,
If-None-Match, X-Request-ID).

Hypothesis tests are synchronous, so each test drives its app with Litestar's sync
`TestClient`, built and started once per test, not once per example.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import httpx
import pytest
from analytics_harness import fast_settings
from hypothesis import HealthCheck, example, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from service_harness import database_url, settings_for

from services.analytics.settings import AnalyticsSettings
from services.auth.app import create_app as create_auth_app
from services.course.app import create_app as create_course_app
from services.course.catalogue import encode_cursor
from services.runtime.settings import ServiceSettings
from services.runtime.tokens import Principal, TokenIssuer

pytestmark = pytest.mark.usefixtures("redis_client")

PROBLEM_JSON = "application/problem+json"
PASSWORD = "a long enough password"
FUZZ = hypothesis_settings(
    max_examples=80,
    deadline=None,
    database=None,  # nothing written into the working tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

Service = Literal["auth", "course"]
Ids = Mapping[str, str]


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each picked in proportion to its weight."""
    return st.sampled_from([s for weight, s in choices for _ in range(weight)]).flatmap(
        lambda strategy: strategy
    )


# --- what a client may send ---------------------------------------------------------

NASTY_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\x00" * 3,
    "\u202eevil",
    "\ufeffbom",
    "\r\n\t",
    "😀" * 3,
    "%_\\",
    "' OR '1'='1' --",
    "<script>alert(1)</script>",
    "Ω" * 201,
    "x" * 201,
    "x" * 2049,
    "x" * 5001,
]
NASTY_INTS = [0, 1, -1, 9, 10, 10_000, 10_001, 2**31, 2**63, -(2**63) - 1, 10**30]
DEEP_ARRAY = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 5_000 + b"1" + b"}" * 5_000

with_nul = st.tuples(st.text(max_size=20), st.text(max_size=20)).map("\x00".join)
texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(NASTY_TEXT),
    st.integers(min_value=0, max_value=250_000).map(lambda n: "y" * n),
    with_nul,
)
ints = st.one_of(st.integers(min_value=-3, max_value=12), st.sampled_from(NASTY_INTS))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


@dataclass(frozen=True)
class Sent:
    """One request body as bytes, with the content type it claims (None: no header)."""

    content: bytes
    content_type: str | None = "application/json"

    def headers(self, token: Mapping[str, str]) -> dict[str, str]:
        return {**token, **({"Content-Type": self.content_type} if self.content_type else {})}


content_types = weighted(
    (5, st.just("application/json")),
    (
        1,
        st.sampled_from(
            [
                "application/json; charset=utf-8",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
                None,
            ]
        ),
    ),
)


def _encoded(value: Any, ascii_only: bool = True) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode()


json_bytes = st.builds(_encoded, json_values, st.booleans())
malformed_json = st.one_of(
    st.sampled_from(
        [
            b"",
            b"{",
            b"}",
            b'{"title":}',
            b"{'title': 'x'}",
            b'{"a": 1,}',
            b"[1, 2,",
            b"nul",
            b"NaN",
            b"Infinity",
            b"1e999",
            b"-",
            b'{"a": 1}{"b": 2}',
            b"\xef\xbb\xbf{}",
            b"\x00",
            b'"\\ud800"',
            b'{"title": "\\u00"}',
            b'{"title": "\xff\xfe"}',
            DEEP_ARRAY,
            DEEP_OBJECT,
        ]
    ),
    # valid JSON cut short somewhere
    st.builds(lambda raw, cut: raw[: max(0, len(raw) - cut)], json_bytes, st.integers(1, 20)),
)
wrong_top_level = st.one_of(scalars, st.lists(json_values, max_size=4)).map(_encoded)


def bodies(fields: Mapping[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Sent]:
    """Bodies for an endpoint whose request object has `fields` (near-valid values each)."""
    near_valid = st.fixed_dictionaries(fields)
    values = {name: st.one_of(strategy, json_values) for name, strategy in fields.items()}
    complete = st.fixed_dictionaries(values)
    partial = st.fixed_dictionaries({}, optional=values)
    extra = st.dictionaries(st.text(max_size=12), json_values, min_size=1, max_size=3)
    with_extra = st.builds(lambda known, unknown: {**unknown, **known}, complete, extra)
    raw_string = st.builds(
        lambda name, raw: b'{"' + name.encode() + b'": "' + raw + b'"}',
        st.sampled_from(sorted(fields)),
        st.binary(min_size=1, max_size=12),
    )
    content = weighted(
        (1, st.binary(max_size=300)),
        (1, malformed_json),
        (1, wrong_top_level),
        (1, raw_string),
        (3, st.builds(_encoded, near_valid, st.booleans())),  # reach the handlers often
        (1, st.builds(_encoded, complete, st.booleans())),
        (1, st.builds(_encoded, partial, st.booleans())),
        (1, st.builds(_encoded, with_extra, st.booleans())),
    )
    return st.builds(Sent, content, content_types)


def _with_nul_in_each_string(value: Any) -> Iterator[Any]:
    """Copies of `value`, each with a NUL put into one of its strings."""
    if isinstance(value, str):
        yield value[:1] + "\x00" + value[1:]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for changed in _with_nul_in_each_string(item):
                yield [*value[:index], changed, *value[index + 1 :]]
    elif isinstance(value, dict):
        for key, item in value.items():
            for changed in _with_nul_in_each_string(item):
                yield {**value, key: changed}


def fixed_bodies(valid: dict[str, Any]) -> list[Sent]:
    """What every run sends, whatever hypothesis draws: known-nasty variants of `valid`."""
    sent = [Sent(_encoded(valid)), Sent(_encoded({**valid, "is_admin": True}))]
    sent += [Sent(_encoded(changed)) for changed in _with_nul_in_each_string(valid)]
    sent += [Sent(b'{"' + name.encode() + b'": "\xff\xfe\x80"}') for name in valid]
    sent += [Sent(DEEP_ARRAY), Sent(DEEP_OBJECT), Sent(b'"\\ud800"'), Sent(b"")]
    return sent


def questions() -> st.SearchStrategy[Any]:
    question = st.fixed_dictionaries(
        {"prompt": texts, "choices": st.lists(texts, max_size=12), "answer_index": ints},
        optional={"hint": json_values},
    )
    return st.one_of(st.lists(question, max_size=4), st.lists(question, min_size=101, max_size=101))


# --- the endpoints ------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """An operation that reads a JSON body: a valid body and near-valid values per field."""

    operation_id: str
    service: Service
    method: str
    path: str
    valid: Callable[[Ids], dict[str, Any]]
    fields: Callable[[Ids], Mapping[str, st.SearchStrategy[Any]]]


QUESTION = {"prompt": "1/2 + 1/2 =", "choices": ["1", "2"], "answer_index": 0}
BODY_ENDPOINTS = [
    Endpoint(
        operation_id="register",
        service="auth",
        method="POST",
        path="/auth/register",
        valid=lambda _ids: {
            "email": "new@example.com",
            "password": PASSWORD,
            "display_name": "New",
            "role": "student",
        },
        fields=lambda _ids: {
            "email": st.one_of(st.emails(), texts),
            "password": st.one_of(st.text(min_size=12, max_size=40), texts),
            "display_name": texts,
            "role": st.sampled_from(["student", "instructor", "admin", "", "STUDENT"]),
        },
    ),
    Endpoint(
        operation_id="login",
        service="auth",
        method="POST",
        path="/auth/login",
        valid=lambda ids: {"email": ids["email"], "password": PASSWORD},
        fields=lambda ids: {
            "email": st.one_of(st.just(ids["email"]), st.emails(), texts),
            "password": st.one_of(st.just(PASSWORD), texts),
        },
    ),
    Endpoint(
        operation_id="update_me",
        service="auth",
        method="PATCH",
        path="/auth/me",
        valid=lambda _ids: {
            "display_name": "Owner",
            "bio": "Teaches maths.",
            "avatar_url": "https://example.com/owner.png",
        },
        fields=lambda _ids: {
            "display_name": texts,
            "bio": texts,
            "avatar_url": st.one_of(texts, texts.map(lambda text: "https://" + text)),
        },
    ),
    Endpoint(
        operation_id="create_course",
        service="course",
        method="POST",
        path="/courses",
        valid=lambda _ids: {"title": "Algebra", "description": "Letters for numbers."},
        fields=lambda _ids: {"title": texts, "description": texts},
    ),
    Endpoint(
        operation_id="update_course",
        service="course",
        method="PATCH",
        path="/courses/{course_id}",
        valid=lambda _ids: {"title": "Maths 2", "description": "More numbers."},
        fields=lambda _ids: {"title": texts, "description": texts},
    ),
    Endpoint(
        operation_id="add_lesson",
        service="course",
        method="POST",
        path="/courses/{course_id}/lessons",
        valid=lambda _ids: {"title": "Decimals", "body": "Tenths and hundredths."},
        fields=lambda _ids: {"title": texts, "body": texts, "position": ints},
    ),
    Endpoint(
        operation_id="create_quiz",
        service="course",
        method="POST",
        path="/courses/{course_id}/quizzes",
        valid=lambda ids: {"lesson_id": ids["lesson_id"], "questions": [QUESTION], "title": "Q"},
        fields=lambda ids: {
            "lesson_id": st.one_of(st.just(ids["lesson_id"]), st.uuids().map(str), texts),
            "questions": questions(),
            "title": texts,
        },
    ),
    Endpoint(
        operation_id="attempt_quiz",
        service="course",
        method="POST",
        path="/quizzes/{quiz_id}/attempts",
        valid=lambda _ids: {"answers": [0, 1, 0]},
        fields=lambda _ids: {
            "answers": st.one_of(
                st.lists(st.integers(0, 1), min_size=3, max_size=3),  # the quiz: 3 of 2 choices
                st.lists(ints, min_size=3, max_size=3),
                st.lists(ints, max_size=5),
                st.lists(st.integers(0, 1), min_size=101, max_size=101),
            )
        },
    ),
]
QUERY_ENDPOINTS = {"list_courses", "course_analytics"}


# --- running a service ----------------------------------------------------------------


def bearer(settings: ServiceSettings, user_id: uuid.UUID) -> dict[str, str]:
    token = TokenIssuer(settings).issue(Principal(user_id=user_id, role="instructor"))
    return {"Authorization": f"Bearer {token}"}


def created(response: httpx.Response) -> Any:
    assert response.status_code == 201, response.text
    return response.json()


@contextmanager
def running(
    service: Service, settings: ServiceSettings, analytics: AnalyticsSettings | None = None
) -> Iterator[tuple[TestClient[Any], dict[str, str], dict[str, str]]]:
    """The started app, the owner instructor's Authorization header, and ids that exist.

    `analytics` gives the Course app its report store (without one that report is a 503).
    """
    if service == "auth":
        with TestClient(create_auth_app(settings)) as client:
            email = "owner@example.com"
            profile = created(
                client.post(
                    "/auth/register",
                    json={"email": email, "password": PASSWORD, "display_name": "Owner"},
                )
            )
            yield client, bearer(settings, uuid.UUID(profile["id"])), {"email": email}
        return
    with TestClient(create_course_app(settings, analytics)) as client:
        token = bearer(settings, uuid.uuid4())
        course = created(client.post("/courses", json={"title": "Maths"}, headers=token))
        lesson = created(
            client.post(
                f"/courses/{course['id']}/lessons",
                json={"title": "Fractions", "body": "Parts of a whole."},
                headers=token,
            )
        )
        quiz = created(
            client.post(
                f"/courses/{course['id']}/quizzes",
                json={"lesson_id": lesson["id"], "questions": [QUESTION] * 3},
                headers=token,
            )
        )
        ids = {"course_id": course["id"], "lesson_id": lesson["id"], "quiz_id": quiz["id"]}
        yield client, token, ids


def assert_answered_cleanly(response: httpx.Response, what: str) -> None:
    """No 5xx; a 4xx is problem+json with its status, a title and a detail."""
    status = response.status_code
    assert status < 500, f"{what} -> {status}: {response.text[:500]}"
    if status < 400:
        return
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    assert media_type == PROBLEM_JSON, f"{what} -> {status} as {media_type!r}"
    problem = response.json()
    assert problem["status"] == status, problem
    assert isinstance(problem["title"], str), problem
    assert problem["title"], problem
    assert isinstance(problem["detail"], str), problem
    assert problem["detail"], problem


@pytest.fixture
def settings(core_db: str) -> ServiceSettings:
    return settings_for(core_db)


# --- bodies ---------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", BODY_ENDPOINTS, ids=lambda endpoint: endpoint.operation_id)
def test_no_body_makes_an_endpoint_fail(endpoint: Endpoint, settings: ServiceSettings) -> None:
    with running(endpoint.service, settings) as (client, token, ids):
        path = endpoint.path.format(**ids)
        valid = endpoint.valid(ids)
        accepted = client.request(endpoint.method, path, json=valid, headers=token)
        assert 200 <= accepted.status_code < 300, accepted.text  # so variants reach handlers

        def check(sent: Sent) -> None:
            response = client.request(
                endpoint.method, path, content=sent.content, headers=sent.headers(token)
            )
            assert_answered_cleanly(response, f"{endpoint.method} {path} {sent!r:.300}")

        for sent in fixed_bodies(valid):
            check = example(sent=sent)(check)
        FUZZ(given(sent=bodies(endpoint.fields(ids)))(check))()


# --- the catalogue's query ----------------------------------------------------------


def _raw_percent(raw: bytes) -> str:
    return "".join(f"%{byte:02X}" for byte in raw)


# A URL stays under what clients and proxies accept (httpx refuses 64 kB), so no 250 kB texts.
query_texts = st.one_of(
    st.text(max_size=60),
    st.sampled_from(NASTY_TEXT),
    st.integers(min_value=0, max_value=3000).map(lambda n: "y" * n),
    with_nul,
)
offsets = st.builds(
    lambda minutes: timezone(timedelta(minutes=minutes)), st.integers(-23 * 60, 23 * 60)
)
timestamps = st.one_of(
    st.datetimes(timezones=st.none() | offsets).map(lambda moment: moment.isoformat()),
    st.sampled_from(
        [
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:00:00+23:59",
            "9999-12-31T23:59:59-23:59",
            "2020-12-31T23:59:60Z",
            "2020-02-30T00:00:00Z",
            "2020-01-01",
            "",
        ]
    ),
    query_texts,
)
cursor_like = st.one_of(
    st.tuples(timestamps, st.one_of(st.uuids().map(str), query_texts)).map(list),
    st.lists(st.one_of(st.none(), st.booleans(), st.integers(), query_texts), max_size=3),
)
cursors = st.one_of(
    st.builds(encode_cursor, st.datetimes(timezones=st.none() | offsets), st.uuids()),
    st.builds(_encoded, cursor_like, st.booleans()).map(
        lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")
    ),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=", max_size=80
    ),
)
query_values = st.one_of(
    query_texts.map(quote),
    ints.map(lambda number: quote(str(number))),
    st.sampled_from(["", "1.5", "1e3", "0x10", "%", "%%", "%zz", "+", "%2B", "true"]),
    cursors.map(quote),
    st.binary(max_size=10).map(_raw_percent),
)
query_names = weighted(
    (3, st.sampled_from(["limit", "cursor", "q"])),
    (1, st.one_of(st.text(max_size=10).map(quote), st.just(""))),
)
query_strings = st.lists(st.tuples(query_names, query_values), max_size=5).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
)
FIXED_QUERIES = [
    "q=%00",
    "q=a%00b",
    "cursor=%00",
    "limit=%00",
    "q=%FF%FE",
    "limit=1&limit=2",
    "limit=99999999999999999999",
    "cursor=" + base64.urlsafe_b64encode(b'["0000-01-01T00:00:00Z", "x"]').decode(),
]


def test_no_query_makes_the_catalogue_fail(settings: ServiceSettings) -> None:
    with running("course", settings) as (client, _token, _ids):

        def check(query: str) -> None:
            response = client.get(f"/courses?{query}")
            assert_answered_cleanly(response, f"GET /courses?{query}")
            if response.status_code == 200:
                assert isinstance(response.json()["items"], list), response.text

        for query in FIXED_QUERIES:
            check = example(query=query)(check)
        FUZZ(given(query=query_strings)(check))()


# --- the analytics report's query ----------------------------------------------------

report_values = st.one_of(
    query_values,
    timestamps.map(quote),
    st.dates().map(date.isoformat),
    st.sampled_from(["day", "week", "month", "DAY", "1970-01-01", "2149-06-06", "9999-12-31"]),
)
report_queries = st.lists(
    st.tuples(
        weighted(
            (4, st.sampled_from(["from", "to", "bucket"])),
            (1, st.one_of(st.text(max_size=10).map(quote), st.just(""))),
        ),
        report_values,
    ),
    max_size=4,
).map(lambda pairs: "&".join(f"{name}={value}" for name, value in pairs))


def test_no_query_makes_the_analytics_report_fail(
    settings: ServiceSettings, tmp_path: Path
) -> None:
    app = create_course_app(settings, fast_settings(tmp_path))
    with TestClient(app) as client:
        token = bearer(settings, uuid.uuid4())
        course = created(client.post("/courses", json={"title": "Maths"}, headers=token))
        path = f"/courses/{course['id']}/analytics"

        def check(query: str) -> None:
            response = client.get(f"{path}?{query}", headers=token)
            assert_answered_cleanly(response, f"GET {path}?{query}")
            if response.status_code == 200:
                assert isinstance(response.json()["series"], list), response.text

        for query in (
            "from=0001-01-01",
            "to=0001-01-01",
            "from=9999-12-31&to=9999-12-31",
            "from=1970-01-01&to=1970-01-02",
            "to=2149-06-06",
            "from=%00",
            "bucket=%FF",
        ):
            check = example(query=query)(check)
        FUZZ(given(query=report_queries)(check))()


# --- reads: ids in the path, and the headers -------------------------------------------

GET_OPERATIONS: dict[Service, dict[str, str]] = {
    "auth": {
        "health_live": "/health/live",
        "health_ready": "/health/ready",
        "get_me": "/auth/me",
    },
    "course": {
        "health_live": "/health/live",
        "health_ready": "/health/ready",
        "health_analytics": "/health/analytics",
        "list_courses": "/courses",
        "get_course": "/courses/{course_id}",
        "get_lesson": "/courses/{course_id}/lessons/{lesson_id}",
        "get_quiz": "/quizzes/{quiz_id}",
        "course_report": "/courses/{course_id}/report",
        "course_analytics": "/courses/{course_id}/analytics",
    },
}
"""operation_id -> path, for every GET of each service."""

# What HTTP servers pass on in a header value: no CR, LF, NUL or other control bytes.
header_bytes = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=80,
).map(lambda text: text.encode("latin-1"))


def path_ids(real: str) -> st.SearchStrategy[str]:
    """A path segment where `real` (an id that exists) belongs."""
    return st.one_of(
        st.just(real),
        st.uuids().map(str),
        st.sampled_from(
            [
                real.upper(),
                real.replace("-", ""),
                "{" + real + "}",
                real + "0",
                real[:-1],
                "0" * 32,
                "00000000-0000-0000-0000-000000000000",
                "%00",
                "%FF%FE",
                "%2F",
                "-1",
                "1e9",
            ]
        ),
        query_texts.map(lambda text: quote(text, safe="")),
        st.binary(min_size=1, max_size=10).map(_raw_percent),
    )


def authorizations(token: str) -> st.SearchStrategy[bytes]:
    """Authorization values: the owner's, broken copies of it, and garbage."""
    scheme, _, value = token.partition(" ")
    return st.one_of(
        st.just(token.encode()),
        st.sampled_from(
            [
                b"",
                b"Bearer",
                b"Bearer ",
                b"bearer " + value.encode(),
                b"Basic dXNlcjpwYXNz",
                scheme.encode() + b"  " + value.encode(),
                token.encode()[:-3],
                token.encode() + b"x",
                b"Bearer " + value.encode()[::-1],
                b"Bearer a.b.c",
                b"Bearer " + b"A" * 5000,
            ]
        ),
        header_bytes.map(lambda garbage: b"Bearer " + garbage),
        header_bytes,
    )


etags = st.one_of(
    st.sampled_from([b"*", b'""', b'"', b'W/"x"', b'"x", W/"y", *', b",,,", b'"' + b"a" * 4000]),
    header_bytes,
)


def read_headers(token: str) -> st.SearchStrategy[dict[bytes, bytes]]:
    """Any mix of the headers a GET reads, each valid or not."""
    return st.fixed_dictionaries(
        {},
        optional={
            b"Authorization": authorizations(token),
            b"If-None-Match": etags,
            b"X-Request-ID": header_bytes,
        },
    )


def reads(
    operations: Mapping[str, str], ids: Ids, token: str
) -> st.SearchStrategy[tuple[str, dict[bytes, bytes]]]:
    """A GET path with each id drawn by `path_ids`, and headers."""

    def of(template: str) -> st.SearchStrategy[str]:
        names = [name for name in ids if "{" + name + "}" in template]
        segments = st.fixed_dictionaries({name: path_ids(ids[name]) for name in names})
        return segments.map(lambda drawn: template.format(**drawn))

    paths = st.sampled_from(sorted(operations.values())).flatmap(of)
    return st.tuples(paths, read_headers(token))


@pytest.mark.parametrize("service", ["auth", "course"])
def test_no_path_id_or_header_makes_a_read_fail(
    service: Service, settings: ServiceSettings, tmp_path: Path
) -> None:
    with running(service, settings, fast_settings(tmp_path)) as (client, token, ids):
        operations = GET_OPERATIONS[service]
        for template in operations.values():  # with the right ids and token, each one works
            response = client.get(template.format(**ids), headers=token)
            assert response.status_code == 200, (template, response.text)

        def check(read: tuple[str, dict[bytes, bytes]]) -> None:
            path, headers = read
            response = client.get(path, headers=headers)
            assert_answered_cleanly(response, f"GET {path} {headers!r:.300}")

        owner = token["Authorization"]
        for template in operations.values():
            path = template.format(**ids)
            for headers in (
                {b"Authorization": owner.encode(), b"If-None-Match": b"*"},
                {b"Authorization": owner.encode() + b"\xff\xfe"},
                {b"Authorization": b"Bearer \xff"},
                {b"Authorization": owner.encode(), b"X-Request-ID": b"\xff" * 200},
            ):
                check = example(read=(path, headers))(check)
        FUZZ(given(read=reads(operations, ids, owner))(check))()


# --- size and coverage --------------------------------------------------------------


def test_a_body_over_the_configured_limit_is_413(core_db: str) -> None:
    limit = 4096
    settings = settings_for(core_db, max_body_bytes=limit)
    ids = {"course_id": str(uuid.uuid4()), "quiz_id": str(uuid.uuid4())}
    headers = {**bearer(settings, uuid.uuid4()), "Content-Type": "application/json"}
    at_limit = b'{"padding": "' + b"x" * (limit - 15) + b'"}'
    assert len(at_limit) == limit
    with (
        TestClient(create_auth_app(settings)) as auth,
        TestClient(create_course_app(settings)) as course,
    ):
        clients = {"auth": auth, "course": course}
        for endpoint in BODY_ENDPOINTS:
            client, path = clients[endpoint.service], endpoint.path.format(**ids)
            fits = client.request(endpoint.method, path, content=at_limit, headers=headers)
            assert fits.status_code != 413, (endpoint.operation_id, fits.text)
            oversized: list[Any] = [
                at_limit + b" ",
                b"[" + b"1," * 10_000 + b"1]",
                iter([b"[" + b"1," * 1000] * 5),  # chunked: no Content-Length to go by
            ]
            for content in oversized:
                response = client.request(endpoint.method, path, content=content, headers=headers)
                assert response.status_code == 413, (endpoint.operation_id, response.text)
                assert_answered_cleanly(response, endpoint.operation_id)


@pytest.mark.parametrize("service", ["auth", "course"])
def test_every_read_is_fuzzed(service: Service) -> None:
    factory = create_auth_app if service == "auth" else create_course_app
    document = factory(settings_for(database_url("never_opened"))).openapi_schema.to_schema()
    reads = {
        operation["operationId"]: path
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method == "get"
    }
    assert reads == GET_OPERATIONS[service]


@pytest.mark.parametrize("service", ["auth", "course"])
def test_every_endpoint_with_a_body_or_query_is_fuzzed(service: Service) -> None:
    factory = create_auth_app if service == "auth" else create_course_app
    document = factory(settings_for(database_url("never_opened"))).openapi_schema.to_schema()
    taking_input = {
        operation["operationId"]
        for item in document["paths"].values()
        for operation in item.values()
        if "requestBody" in operation
        or any(parameter["in"] == "query" for parameter in operation.get("parameters", []))
    }
    fuzzed = {e.operation_id for e in BODY_ENDPOINTS if e.service == service}
    if service == "course":
        fuzzed |= QUERY_ENDPOINTS
    assert taking_input == fuzzed
