"""The ceiling for any Python handler here: a bare ASGI app served like the services.

It answers every request with the same bytes the course endpoint returns, and nothing
else: no routing, no middleware, no I/O. It is served by the very `serve()` that runs the
pods (`eduscale serve`: same uvicorn, flags and single worker), registered for this
process only under the name `bare-asgi`, so the only difference from a service is the
handler itself. Usage: `python -m benchmarks.bare_asgi --port 8000 --body-file FILE`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any

from infra import service_commands

__all__ = ["SERVICE_NAME", "from_environment", "main"]

SERVICE_NAME = "bare-asgi"
BODY_FILE_VARIABLE = "BARE_ASGI_BODY_FILE"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def from_environment(
    environ: Mapping[str, str],
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app answering 200 with the bytes of `$BARE_ASGI_BODY_FILE`."""
    body = Path(environ[BODY_FILE_VARIABLE]).read_bytes()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def main() -> None:
    """Serve the bare app through the services' own `serve()`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body-file", type=Path, required=True)
    args = parser.parse_args()
    os.environ[BODY_FILE_VARIABLE] = str(args.body_file)
    service_commands.HTTP_SERVICES[SERVICE_NAME] = "benchmarks.bare_asgi"
    service_commands.serve(argparse.Namespace(service=SERVICE_NAME, host=args.host, port=args.port))


if __name__ == "__main__":
    main()
