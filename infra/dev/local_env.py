"""What the local platform's processes are configured with, and where it keeps its data.

Everything lives under one data directory (`.eduscale/` in the working directory unless
`--data-dir` says otherwise): Qdrant's files, uploaded PDFs and the JWT secret. The secret
is generated on first use and kept (0600), so tokens survive a restart and no key is
hard-coded anywhere; JWT_SECRET in the environment wins over it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_DATABASE_URL",
    "DEFAULT_REDIS_URL",
    "LocalSettings",
    "jwt_secret",
    "prepare_data_dir",
]

DEFAULT_DATABASE_URL = "postgresql://postgres@localhost:5432/eduscale"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
_SECRET_FILE = "jwt-secret"  # noqa: S105 - a file name
# The embedded broker needs about half the session timeout for a consumer to join; the
# production default (45 s) would keep a worker idle that long after every start.
_EMBEDDED_SESSION_TIMEOUT_MS = "6000"


@dataclass(frozen=True)
class LocalSettings:
    """The user's choices for one `eduscale dev up`, from flags and the environment."""

    data_dir: Path
    database_url: str
    redis_url: str
    kafka_bootstrap: str | None
    """None: start the embedded broker."""
    openai_configured: bool
    host: str
    port: int

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], *, data_dir: Path, host: str, port: int
    ) -> LocalSettings:
        """Flags first, then variables, then the local defaults."""
        return cls(
            data_dir=data_dir.resolve(),
            database_url=environ.get("DATABASE_URL", "").strip() or DEFAULT_DATABASE_URL,
            redis_url=environ.get("REDIS_URL", "").strip() or DEFAULT_REDIS_URL,
            kafka_bootstrap=environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip() or None,
            openai_configured=bool(environ.get("OPENAI_API_KEY", "").strip()),
            host=host,
            port=port,
        )

    def environment(
        self, environ: Mapping[str, str], *, secret: str, kafka_bootstrap: str
    ) -> dict[str, str]:
        """The variables every child gets: the user's, with the local platform's filled in."""
        env = dict(environ)
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "JWT_SECRET": environ.get("JWT_SECRET", "").strip() or secret,
                "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
                "QDRANT_PATH": environ.get("QDRANT_PATH", "").strip()
                or str(self.data_dir / "qdrant"),
                "DOCUMENTS_DIR": environ.get("DOCUMENTS_DIR", "").strip()
                or str(self.data_dir / "documents"),
                # Embedded ClickHouse, opened by the Course service alone: it runs the
                # analytics sink in-process too (ANALYTICS_LOCAL_SINK), as chDB allows
                # one process per directory.
                "ANALYTICS_DATA_DIR": environ.get("ANALYTICS_DATA_DIR", "").strip()
                or str(self.data_dir / "analytics"),
                "PYTHONUNBUFFERED": "1",
                # The gateway answers CORS, as Kong does; the services must not add theirs.
                "CORS_ORIGINS": "",
            }
        )
        if self.kafka_bootstrap is None:
            env.setdefault("KAFKA_SESSION_TIMEOUT_MS", _EMBEDDED_SESSION_TIMEOUT_MS)
        return env


def prepare_data_dir(path: Path) -> Path:
    """Create the data directory (private to the user) and its parts."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    for part in ("qdrant", "documents", "analytics"):
        (path / part).mkdir(mode=0o700, exist_ok=True)
    return path


def jwt_secret(data_dir: Path) -> str:
    """The local signing key: read from the data directory, created there on first use."""
    path = data_dir / _SECRET_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) >= 32:  # noqa: PLR2004 - ServiceSettings' minimum
            return secret
        path.unlink()  # truncated or hand-edited: replace it
        return jwt_secret(data_dir)
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as file:
        file.write(secret + "\n")
    return secret
