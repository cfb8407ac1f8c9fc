"""`python -m services.gateway --port N`: the local gateway, as `eduscale dev up` starts it."""

import argparse
import os
import sys

import uvicorn

from services.gateway.app import from_environment
from services.runtime.settings import SettingsError


def main() -> int:
    """Serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m services.gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    try:
        app = from_environment(os.environ)
    except SettingsError as error:
        print(f"gateway: configuration error: {error}", file=sys.stderr)  # noqa: T201
        return 2
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        server_header=False,
        access_log=False,  # the gateway logs one line per request itself
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
