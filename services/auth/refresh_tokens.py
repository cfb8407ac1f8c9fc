"""Refresh tokens: opaque, single-use, grouped in families, stored only as SHA-256.

A password login starts a family with one token. `rotate` spends a token and issues its
successor in the same family, in one transaction whose first statement marks the token
used only if it is still unused, unexpired and its family not revoked: of two requests
presenting the same token at once, PostgreSQL's row lock lets exactly one change the row,
and the other then finds it used.

A used token presented again means two parties hold the chain, the user and whoever
copied a token; the server cannot tell which one is asking, so the whole family is
revoked, successor included (RFC 9700 §4.14.2, OAuth 2.0 Security BCP). A client that
sends the same token twice at once (two tabs) is logged out by the same rule: it must
serialise its refreshes.

Tokens are 256 random bits, so a plain SHA-256 is enough to store them: there is no
dictionary to try, and a slow hash (as passwords need) would only cost every refresh.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Literal

import structlog

from services.runtime.database import Connection

__all__ = [
    "IssuedToken",
    "RefreshRefused",
    "Rotation",
    "revoke_family",
    "revoke_user_families",
    "rotate",
    "start_family",
    "token_hash",
]

_TOKEN_BYTES = 32
_log = structlog.get_logger("eduscale.auth.refresh")

Refusal = Literal["unknown", "expired", "revoked", "reused"]
RevokeReason = Literal["logout", "reuse", "password_change"]


def token_hash(token: str) -> bytes:
    """What the database keeps of a token."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class IssuedToken:
    """A new refresh token, shown to the client once, and how long it lasts."""

    token: str
    expires_in: int


@dataclass(frozen=True)
class Rotation:
    """A spent token's owner, and its successor."""

    user_id: uuid.UUID
    role: str
    successor: IssuedToken


class RefreshRefused(Exception):
    """The token cannot be spent; `reason` says why (the client is told less)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason


_ISSUE = """
INSERT INTO refresh_tokens (token_hash, family_id, expires_at)
VALUES (%(hash)s, %(family)s, now() + make_interval(secs => %(ttl)s))
"""

_START = """
WITH family AS (INSERT INTO refresh_families (id, user_id) VALUES (%(family)s, %(user)s))
INSERT INTO refresh_tokens (token_hash, family_id, expires_at)
VALUES (%(hash)s, %(family)s, now() + make_interval(secs => %(ttl)s))
"""

_SPEND = """
UPDATE refresh_tokens AS t SET used_at = now()
FROM refresh_families AS f, users AS u
WHERE t.token_hash = %(hash)s
  AND t.used_at IS NULL
  AND t.expires_at > now()
  AND f.id = t.family_id
  AND f.revoked_at IS NULL
  AND u.id = f.user_id
RETURNING t.family_id, f.user_id, u.role
"""

_STATE = """
SELECT t.family_id, f.user_id, t.used_at IS NOT NULL AS used,
       t.expires_at <= now() AS expired, f.revoked_at IS NOT NULL AS revoked
FROM refresh_tokens AS t JOIN refresh_families AS f ON f.id = t.family_id
WHERE t.token_hash = %(hash)s
"""

_REVOKE = """
UPDATE refresh_families SET revoked_at = now(), revoked_reason = %(reason)s
WHERE id = %(family)s AND revoked_at IS NULL
"""


async def _issue(conn: Connection, statement: str, family: uuid.UUID, **values: object) -> str:
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    await conn.execute(statement, {"hash": token_hash(token), "family": family, **values})
    return token


async def start_family(conn: Connection, user_id: uuid.UUID, ttl_seconds: int) -> IssuedToken:
    """The first token of a new family, for a login that just proved the password."""
    token = await _issue(conn, _START, uuid.uuid4(), user=user_id, ttl=ttl_seconds)
    return IssuedToken(token, ttl_seconds)


async def rotate(conn: Connection, token: str, ttl_seconds: int) -> Rotation:
    """Spend `token` and issue its successor; `RefreshRefused` if it cannot be spent.

    A reused token revokes its family before the refusal is raised (and committed).
    """
    digest = token_hash(token)
    async with conn.transaction():
        cursor = await conn.execute(_SPEND, {"hash": digest})
        spent = await cursor.fetchone()
        if spent is not None:
            successor = await _issue(conn, _ISSUE, spent["family_id"], ttl=ttl_seconds)
            return Rotation(spent["user_id"], spent["role"], IssuedToken(successor, ttl_seconds))
        refusal = await _refusal(conn, digest)
    raise RefreshRefused(refusal)


async def _refusal(conn: Connection, digest: bytes) -> Refusal:
    """Why a token could not be spent; a reuse revokes its family here."""
    cursor = await conn.execute(_STATE, {"hash": digest})
    state = await cursor.fetchone()
    if state is None:
        return "unknown"
    if state["revoked"]:
        return "revoked"
    if state["used"]:
        await conn.execute(_REVOKE, {"family": state["family_id"], "reason": "reuse"})
        _log.warning(
            "refresh_token_reused",
            family_id=str(state["family_id"]),
            user_id=str(state["user_id"]),
        )
        return "reused"
    return "expired"


async def revoke_family(conn: Connection, token: str, reason: RevokeReason) -> bool:
    """Revoke the family of `token`, if it is one of ours; whether one was revoked now."""
    cursor = await conn.execute(
        "UPDATE refresh_families SET revoked_at = now(), revoked_reason = %(reason)s"
        " WHERE id = (SELECT family_id FROM refresh_tokens WHERE token_hash = %(hash)s)"
        " AND revoked_at IS NULL",
        {"hash": token_hash(token), "reason": reason},
    )
    return cursor.rowcount > 0


async def revoke_user_families(conn: Connection, user_id: uuid.UUID, reason: RevokeReason) -> int:
    """Revoke every live family of `user_id`; how many."""
    cursor = await conn.execute(
        "UPDATE refresh_families SET revoked_at = now(), revoked_reason = %(reason)s"
        " WHERE user_id = %(user)s AND revoked_at IS NULL",
        {"user": user_id, "reason": reason},
    )
    return cursor.rowcount
