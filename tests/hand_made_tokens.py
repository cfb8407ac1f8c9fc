"""Tokens made by hand, as an attacker or a stale client would send them: the refusals of
Auth's handlers and of its fast lane are tested with the same ones."""

from __future__ import annotations

import time

import jwt

__all__ = ["signed_token", "tampered"]


def tampered(token: str) -> str:
    """`token` with the end of its signature changed: header and claims intact."""
    header, payload, signature = token.split(".")
    return f"{header}.{payload}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"


def signed_token(
    user_id: str, role: str, *, key: str, issued_ago: float = 0, valid_for: float
) -> str:
    """A token with the claims the services issue, signed with `key`, issued `issued_ago`
    seconds ago and expiring `valid_for` seconds after that.

    With a key other than the services' it is a forgery; with theirs and a past expiry, a
    stale token.
    """
    issued = int(time.time() - issued_ago)
    claims = {
        "sub": user_id,
        "role": role,
        "aud": "eduscale",
        "iss": "eduscale-auth",
        "iat": issued,
        "exp": int(issued + valid_for),
    }
    return jwt.encode(claims, key, algorithm="HS256")
