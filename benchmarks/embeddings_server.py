"""A local OpenAI-compatible `/v1/embeddings` endpoint in front of any sentence encoder.

The semantic-cache benchmark must measure the cache as production runs it: the real
`openai` client, pointed by `base_url` at an embeddings endpoint, feeding the real
`SemanticCache`. Only the model behind the endpoint differs (all-MiniLM-L6-v2 here,
`text-embedding-3-small` in production), so this server speaks the wire format the SDK
expects: `input` as a string or a list of strings, `encoding_format` `float` or `base64`
(the SDK's default on the wire), `dimensions` accepted only when it is the model's own size
(a model without Matryoshka training cannot be truncated meaningfully), usage counted in
the model's tokens, and OpenAI's error document for anything it refuses.

It binds to 127.0.0.1 only, on a free port, and serves each request on its own thread;
the encoder is called under a lock, because ONNX sessions and tokenizers are not
guaranteed to be reentrant and the benchmark wants one request's latency, not a race.
"""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["EmbeddingsServer", "Encoded", "send_json"]

_MAX_INPUTS = 2048
"""OpenAI's own limit of inputs per request."""


def send_json(handler: BaseHTTPRequestHandler, status: int, document: object) -> None:
    """Answer a stdlib HTTP request with `document` as JSON (the fake servers' one shape)."""
    payload = json.dumps(document).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)


@dataclass(frozen=True)
class Encoded:
    """What an encoder returns: one unit-length vector per text, and the tokens it read."""

    vectors: list[list[float]]
    tokens: int


Encoder = Callable[[Sequence[str]], Encoded]


class EmbeddingsServer:
    """Serves `POST /v1/embeddings` for one model; use as a context manager.

    `requests` counts the embeddings requests answered (errors included), so a caller
    can check the cache really went through the endpoint.
    """

    def __init__(self, encoder: Encoder, *, model: str, dimensions: int) -> None:
        self.model = model
        self.dimensions = dimensions
        self.requests = 0
        self._encoder = encoder
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """What `AsyncOpenAI(base_url=...)` takes: the server's `/v1`."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def answer(self, body: Any) -> tuple[int, dict[str, Any]]:
        """The status and JSON document for one request body (already parsed)."""
        with self._lock:
            self.requests += 1
        if not isinstance(body, dict):
            return 400, _error("the request body must be a JSON object", None)
        if body.get("model") != self.model:
            return 404, _error(
                f"the model {body.get('model')!r} does not exist; this server has {self.model!r}",
                "model",
            )
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if (
            not isinstance(texts, list)
            or not 0 < len(texts) <= _MAX_INPUTS
            or not all(isinstance(text, str) and text.strip() for text in texts)
        ):
            return 400, _error(
                f"input must be a non-empty string or a list of 1 to {_MAX_INPUTS}"
                " non-empty strings (token arrays are not supported here)",
                "input",
            )
        dimensions = body.get("dimensions", self.dimensions)
        if dimensions != self.dimensions:
            return 400, _error(
                f"{self.model} has {self.dimensions} dimensions and cannot be shortened;"
                f" dimensions={dimensions!r} is not supported",
                "dimensions",
            )
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return 400, _error(
                f"encoding_format must be 'float' or 'base64', not {encoding!r}",
                "encoding_format",
            )
        with self._lock:
            encoded = self._encoder(texts)
        data = [
            {"object": "embedding", "index": index, "embedding": _wire(vector, encoding)}
            for index, vector in enumerate(encoded.vectors)
        ]
        usage = {"prompt_tokens": encoded.tokens, "total_tokens": encoded.tokens}
        return 200, {"object": "list", "data": data, "model": self.model, "usage": usage}


def _wire(vector: list[float], encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _error(message: str, param: str | None) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": None,
        }
    }


def _handler_for(server: EmbeddingsServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in two writes; with Nagle on, the body then waits for
        # the client's delayed ACK (~40 ms), which would be measured as model latency.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/embeddings":
                self._send(404, _error(f"no route {self.path}: only /v1/embeddings", None))
                return
            length = int(self.headers.get("Content-Length") or 0)
            try:
                body = json.loads(self.rfile.read(length) or b"null")
            except ValueError:
                self._send(400, _error("the request body is not valid JSON", None))
                return
            self._send(*server.answer(body))

        def _send(self, status: int, document: dict[str, Any]) -> None:
            send_json(self, status, document)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            """Quiet: a benchmark prints its table, not an access log."""

    return Handler
