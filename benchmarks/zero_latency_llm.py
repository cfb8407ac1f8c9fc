"""A zero-latency LLM: an OpenAI-compatible server that answers as fast as it can.

The generation worker's jobs/s should measure the worker (database, semantic cache,
grounding search, its own bookkeeping), not a provider. This raw ASGI app, served by
uvicorn in its own process, answers `POST /v1/chat/completions` (a valid three-question
quiz for structured requests, else a short text) and `POST /v1/embeddings` (a unit vector
drawn from a hash of each input, so distinct lessons never look alike to the semantic
cache) with no delay. The worker reaches it through the real `openai` client via
OPENAI_BASE_URL, as it reaches the real provider.

Usage: `python -m benchmarks.zero_latency_llm --port 8001`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import math
import random
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
import uvicorn

__all__ = ["app", "embedding", "main"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_QUIZ = msgspec.json.encode(
    {
        "questions": [
            {
                "prompt": f"Question {number}: which statement about the lesson is true?",
                "choices": ["The first", "The second", "The third", "The fourth"],
                "answer_index": number % 4,
            }
            for number in range(1, 4)
        ]
    }
).decode()
_SUMMARY = "A short summary of the lesson, in three plain sentences."


def embedding(text: str, dimensions: int) -> list[float]:
    """A unit vector seeded by the text: equal texts match, different ones do not."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
    draw = random.Random(seed)  # noqa: S311 - a reproducible vector, not a secret
    vector = [draw.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(value * value for value in vector)) or 1.0
    return [value / norm for value in vector]


def _chat(body: dict[str, Any]) -> dict[str, Any]:
    structured = (body.get("response_format") or {}).get("type") == "json_schema"
    content = _QUIZ if structured else _SUMMARY
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": str(body.get("model", "bench")),
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else list(raw or [])
    dimensions = int(body.get("dimensions") or 256)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = embedding(str(text), dimensions)
        encoded: Any = (
            base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            if as_base64
            else vector
        )
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": str(body.get("model", "bench")),
        "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
    }


_ROUTES = {"/v1/chat/completions": _chat, "/v1/embeddings": _embeddings}


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


_CHAT_LATENCY = 0.0
"""Seconds a chat answer waits (`--chat-latency`): a provider's think time, without CPU."""


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer the two endpoints the services call; 404 for anything else."""
    if scope["type"] != "http":
        return
    route = _ROUTES.get(scope["path"])
    if scope["path"] == "/health":
        status, payload = 200, b'{"status": "ok"}'
    elif route is None or scope["method"] != "POST":
        status, payload = 404, b'{"error": {"message": "not found"}}'
    else:
        if scope["path"] == "/v1/chat/completions" and _CHAT_LATENCY > 0:
            await asyncio.sleep(_CHAT_LATENCY)
        status, payload = (
            200,
            msgspec.json.encode(route(msgspec.json.decode(await _read_body(receive)))),
        )
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--chat-latency", type=float, default=0.0, help="seconds before each chat answer"
    )
    args = parser.parse_args()
    global _CHAT_LATENCY  # noqa: PLW0603 - set once, before serving
    _CHAT_LATENCY = args.chat_latency
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
