"""A local OpenAI-compatible server for tests, reached by the real `openai` client.

The SDK is pointed at it with `AsyncOpenAI(base_url=server.base_url, api_key="test")`, so
every request goes through the SDK's own serialisation, retries, timeouts and response
parsing; nothing is monkeypatched, and an SDK upgrade that changes the wire breaks a
test instead of production. (openai 3 moved to `httpx2`, so transport mocks of the old
`httpx` no longer intercept it; a real socket works with every version.)

It serves `POST /v1/chat/completions` and `POST /v1/embeddings`, deterministically:

* a chat request with `response_format={"type": "json_schema", ...}` gets a quiz
  (`{"questions": [{"prompt", "choices", "answer_index"}]}`) derived from the user
  message, so two lessons get two different quizzes; any other chat request gets a short
  summary of the user message; `next_chat_content` forces an exact answer (e.g. invalid);
* embeddings are hashed bags of normalised words (`embed_text`): synonyms share a token
  and filler words are dropped, so paraphrases land close together, while a negation is
  a token of its own, so "not about X" stays measurably away from "about X".

Tests steer it with `latency_seconds`, `fail_next(...)`, `hang_next(...)` and read
`chat_calls`, `embedding_calls` and `requests`. Every received request is counted,
including the ones answered with an error or never answered.

The fixtures `fake_openai` (the server) and `openai_client` (the SDK on it, through
`sdk_client`) are loaded for every test by tests/conftest.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypeVar

import pytest

if TYPE_CHECKING:
    from openai import AsyncOpenAI

__all__ = [
    "DEFAULT_DIMENSIONS",
    "Endpoint",
    "FakeOpenAI",
    "embed_text",
    "fake_openai",
    "openai_client",
    "sdk_client",
]

Endpoint = Literal["chat", "embeddings"]
_T = TypeVar("_T")

DEFAULT_DIMENSIONS = 256
HANG_SECONDS = 3600.0
"""Longer than any test timeout; `stop()` and `reset()` release a hung request at once."""

_PATHS: dict[str, Endpoint] = {"/v1/chat/completions": "chat", "/v1/embeddings": "embeddings"}
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_FILLER = (
    "a an the about on of for to in into with and or please me my our your some any that"
    " this these those it its is are be was were i you we us can could would should will do"
    " does did using regarding covering at by from as up just also"
)
_STOPWORDS = frozenset(_FILLER.split())
_NEGATIONS = {"n't": "not", "cannot": "not", "without": "not", "nor": "not"}
_SYNONYMS = {
    **dict.fromkeys(["make", "create", "generate", "write", "produce", "build"], "make"),
    **dict.fromkeys(["quiz", "quizze", "test", "exam"], "quiz"),
    **dict.fromkeys(["short", "brief", "quick", "concise"], "short"),
    **dict.fromkeys(["simple", "simply", "easy", "basic"], "simple"),
    **dict.fromkeys(["summary", "summarise", "summarize", "overview"], "summary"),
    **dict.fromkeys(["question", "item"], "question"),
}
_TITLE = re.compile(r"title=(['\"])(.*?)\1")
_TAG = re.compile(r"<[^>]*>")


def _tokens(text: str) -> set[str]:
    """Normalised word tokens: what a paraphrase keeps and a negation changes."""
    tokens: set[str] = set()
    for word in _WORD.findall(text.lower()):
        token = "not" if word.endswith("n't") else _NEGATIONS.get(word, word)
        token = token.replace("'", "")
        if token in _STOPWORDS:
            continue
        if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
            token = token[:-1]
        tokens.add(_SYNONYMS.get(token, token))
    return tokens


def embed_text(text: str, dimensions: int = DEFAULT_DIMENSIONS) -> list[float]:
    """The fake model's embedding: signed feature hashing of the tokens, L2-normalised.

    A stable hash (blake2b, not the salted built-in `hash`) keeps vectors equal across
    processes, so a worker subprocess and the test see the same geometry.
    """
    vector = [0.0] * dimensions
    for token in sorted(_tokens(text)) or ["<empty>"]:
        digest = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "big")
        vector[digest % dimensions] += 1.0 if digest >> 63 else -1.0
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


@dataclass(frozen=True)
class _Failure:
    status: int
    body: bytes
    headers: dict[str, str]
    only: Endpoint | None


@dataclass(frozen=True)
class _Plan:
    """What the handler does with one admitted request."""

    failure: _Failure | None
    hang: threading.Event | None
    latency: float


class FakeOpenAI:
    """The server and its controls; use as a context manager or `start()`/`stop()`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._failures: list[_Failure] = []
        self._hangs: list[tuple[Endpoint | None]] = []  # a tuple, since None means "any"
        self._completions = 0
        self.latency_seconds = 0.0
        """Delay before every answer (cut short only by `stop()`)."""
        self.next_chat_content: str | None = None
        """When set, the exact content of every chat answer until set back to None."""
        self.chat_calls = 0
        self.embedding_calls = 0
        self.requests: list[dict[str, Any]] = []
        """JSON bodies of all received requests, in order (see `chat_requests` too)."""
        self._endpoints: list[Endpoint] = []

    # --- lifecycle ------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on a free loopback port and serve in a daemon thread."""
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop at once: hung and delayed requests are dropped, not waited for."""
        self._stopping.set()
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()  # daemon handler threads are not joined
        if self._thread is not None:
            self._thread.join(5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """What to pass to `AsyncOpenAI(base_url=...)` (or OPENAI_BASE_URL)."""
        if self._server is None:
            raise RuntimeError("the fake OpenAI server is not running")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    # --- controls -------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        times: int = 1,
        *,
        body: dict[str, Any] | str | bytes | None = None,
        retry_after: float | None = None,
        only: Endpoint | None = None,
    ) -> None:
        """Answer the next `times` requests (of `only` endpoint, or any) with `status`.

        `body` defaults to OpenAI's error document; a str or bytes is sent verbatim (for
        malformed bodies). A 429 carries `Retry-After` (1 s unless `retry_after` says
        otherwise); other statuses carry it only when `retry_after` is given.
        """
        if retry_after is None and status == 429:  # the real API always says when
            retry_after = 1
        headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
        if body is None:
            body = {"error": _error(status, "injected failure")}
        raw = body.encode() if isinstance(body, str) else body
        raw = json.dumps(raw).encode() if isinstance(raw, dict) else raw
        with self._lock:
            self._failures.extend([_Failure(status, raw, headers, only)] * times)

    def hang_next(self, times: int = 1, *, only: Endpoint | None = None) -> None:
        """Never answer the next `times` requests: the client must time out."""
        with self._lock:
            self._hangs.extend([(only,)] * times)

    def reset(self) -> None:
        """Back to a healthy server with zeroed counters; hung requests are dropped."""
        with self._lock:
            self._failures.clear()
            self._hangs.clear()
            self.latency_seconds = 0.0
            self.next_chat_content = None
            self.chat_calls = 0
            self.embedding_calls = 0
            self.requests.clear()
            self._endpoints.clear()
            self._released.set()
            self._released = threading.Event()

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """Bodies of the received chat requests."""
        with self._lock:
            return [b for b, e in zip(self.requests, self._endpoints, strict=True) if e == "chat"]

    @property
    def embedding_requests(self) -> list[dict[str, Any]]:
        """Bodies of the received embeddings requests."""
        with self._lock:
            pairs = zip(self.requests, self._endpoints, strict=True)
            return [body for body, endpoint in pairs if endpoint == "embeddings"]

    # --- used by the handler --------------------------------------------------------

    def _admit(self, endpoint: Endpoint, body: dict[str, Any]) -> _Plan:
        with self._lock:
            self.requests.append(body)
            self._endpoints.append(endpoint)
            if endpoint == "chat":
                self.chat_calls += 1
            else:
                self.embedding_calls += 1
            if _take(self._hangs, lambda hang: hang[0] in (None, endpoint)) is not None:
                return _Plan(failure=None, hang=self._released, latency=0.0)
            failure = _take(self._failures, lambda f: f.only in (None, endpoint))
            return _Plan(failure=failure, hang=None, latency=self.latency_seconds)

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._completions += 1
            number = self._completions
            forced = self.next_chat_content
        messages = body.get("messages") or []
        user = next(
            (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
        )
        response_format = body.get("response_format") or {}
        if forced is not None:
            content = forced
        elif response_format.get("type") == "json_schema":
            content = json.dumps(_quiz(user))
        else:
            content = _summary(user)
        prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
        completion_tokens = len(content.split())
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "fake")),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    @staticmethod
    def _embeddings(body: dict[str, Any]) -> dict[str, Any] | None:
        raw = body.get("input")
        inputs = [raw] if isinstance(raw, str) else raw
        dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
        if (
            not isinstance(inputs, list)
            or not inputs
            or not all(isinstance(text, str) and text for text in inputs)
            or not isinstance(dimensions, int)
            or dimensions < 1
        ):
            return None
        as_base64 = body.get("encoding_format") == "base64"  # the SDK's default on the wire
        data = []
        for index, text in enumerate(inputs):
            vector = embed_text(text, dimensions)
            encoded: list[float] | str = (
                base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                if as_base64
                else vector
            )
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(len(text.split()) for text in inputs)
        return {
            "object": "list",
            "data": data,
            "model": str(body.get("model", "fake")),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung handler never holds up shutdown or interpreter exit
    fake: FakeOpenAI

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up is expected here, not worth a traceback.
        import sys  # noqa: PLC0415 - only on the error path

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
        """Quiet: the test output is for the tests."""

    def do_POST(self) -> None:
        fake = self.server.fake
        endpoint = _PATHS.get(self.path.split("?")[0].rstrip("/"))
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) if length else b"null")
        except ValueError:
            body = None
        if endpoint is None:
            self._reply(404, {"error": _error(404, f"no route for {self.path}")})
        elif not isinstance(body, dict):
            self._reply(400, {"error": _error(400, "the body is not a JSON object")})
        else:
            plan = fake._admit(endpoint, body)
            if plan.hang is not None:
                plan.hang.wait(HANG_SECONDS)  # released by reset() or stop(): hang up
            elif plan.latency > 0 and fake._stopping.wait(plan.latency):
                pass  # stopped while waiting: hang up
            elif plan.failure is not None:
                self._send(plan.failure.status, plan.failure.body, plan.failure.headers)
            else:
                self._reply(*self._answer(endpoint, body))

    def _answer(self, endpoint: Endpoint, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not self.headers.get("Authorization", "").removeprefix("Bearer ").strip():
            return 401, {"error": _error(401, "no API key")}
        if body.get("stream"):
            return 400, {"error": _error(400, "the fake server does not stream")}
        fake = self.server.fake
        answer = fake._chat(body) if endpoint == "chat" else fake._embeddings(body)
        if answer is None:
            return 400, {"error": _error(400, "input must be a non-empty string or list")}
        return 200, answer

    def _reply(self, status: int, document: dict[str, Any]) -> None:
        self._send(status, json.dumps(document).encode(), {})

    def _send(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except ConnectionError:
            pass  # the client gave up waiting; nobody is left to answer


def _take(queue: list[_T], wanted: Callable[[_T], bool]) -> _T | None:
    for index, item in enumerate(queue):
        if wanted(item):
            return queue.pop(index)
    return None


def _error(status: int, message: str) -> dict[str, Any]:
    kinds = {400: "invalid_request_error", 401: "authentication_error", 429: "rate_limit_error"}
    return {
        "message": message,
        "type": kinds.get(status, "server_error" if status >= 500 else "invalid_request_error"),
        "param": None,
        "code": None,
    }


def _text(content: Any) -> str:
    """A message's text, whether a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _title_and_words(user: str) -> tuple[str, list[str]]:
    match = _TITLE.search(user)
    words = [w for w in _WORD.findall(_TAG.sub(" ", user).lower()) if w not in _STOPWORDS]
    title = match.group(2) if match else " ".join(words[:3]) or "the lesson"
    return title, list(dict.fromkeys(w for w in words if len(w) > 3)) or ["lesson"]


def _quiz(user: str) -> dict[str, Any]:
    """Three valid questions about the lesson's own words."""
    title, words = _title_and_words(user)
    seed = hashlib.sha256(user.encode()).digest()
    questions = []
    for number in range(3):
        word = words[number % len(words)]
        questions.append(
            {
                "prompt": f"Question {number + 1} on {title}: what does the lesson say about "
                f"'{word}'?",
                "choices": [
                    f"'{word}' is explained in {title}",
                    f"'{word}' is not part of {title}",
                    f"'{word}' contradicts {title}",
                    f"'{word}' is only mentioned in passing in {title}",
                ],
                "answer_index": seed[number] % 4,
            }
        )
    return {"questions": questions}


def _summary(user: str) -> str:
    title, _ = _title_and_words(user)
    body = " ".join(_TAG.sub(" ", user).split()[:25])
    return f"Summary of {title}: {body}"


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI server, stopped (without waiting for hung requests) after."""
    with FakeOpenAI() as server:
        yield server


@asynccontextmanager
async def sdk_client(base_url: str) -> AsyncIterator[AsyncOpenAI]:
    """The real `openai` client on a local server (this one, or the benchmarks' own).

    No retries, so the server's counts are the calls the code under test made, and 5 s to
    answer, so a request the server holds fails the test instead of hanging it.
    """
    # Imported here: the SDK takes a second to load, and pytest loads this plugin in every
    # process, xdist's controller included.
    from openai import AsyncOpenAI  # noqa: PLC0415

    async with AsyncOpenAI(base_url=base_url, api_key="test", max_retries=0, timeout=5) as client:
        yield client


@pytest.fixture
async def openai_client(fake_openai: FakeOpenAI) -> AsyncIterator[AsyncOpenAI]:
    """`sdk_client` on the test's `fake_openai` server."""
    async with sdk_client(fake_openai.base_url) as client:
        yield client
