"""Access tokens: issued by Auth, verified locally by every other service.

HS256 JWTs through PyJWT (well kept, and it checks `exp`, `iat`, `aud` and `iss` for us)
with a secret all services share from a Kubernetes Secret. Verification needs no call to
Auth, so the Course service keeps working while Auth is down.

A client sends the same token with every request until it expires, so each issuer
remembers the tokens it has verified (up to `VERIFIED_MEMO_SIZE`, with their expiry):
a token seen before costs a dict lookup and a clock read instead of an HMAC, a JSON
decode and six claim checks. Only successes are remembered, under the whole token
string (a changed byte is another token), and a remembered token past its expiry (with
the same leeway) is verified afresh, which refuses it.
"""

import time
import uuid
from typing import Any, Literal

import jwt
import msgspec
from litestar import Request

from services.runtime.errors import Forbidden, Unauthorized
from services.runtime.settings import ServiceSettings

__all__ = ["Principal", "Role", "TokenIssuer", "require_instructor"]

Role = Literal["student", "instructor"]
_ALGORITHM = "HS256"
_AUDIENCE = "eduscale"
_ISSUER = "eduscale-auth"
_LEEWAY_SECONDS = 5
VERIFIED_MEMO_SIZE = 10_000
"""Tokens remembered per process (about 5 MB); the memo is emptied when it fills."""


class Principal(msgspec.Struct, frozen=True):
    """Who is calling, as the token says."""

    user_id: uuid.UUID
    role: Role


class TokenIssuer:
    """Issues and verifies access tokens with one key."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._configured_secret = settings.jwt_secret
        self.ttl_seconds = settings.jwt_ttl_seconds
        self._verified: dict[str, tuple[Principal, float]] = {}

    @property
    def _secret(self) -> str:
        # Workers read their settings without JWT_SECRET; signing with "" must never happen.
        if not self._configured_secret:
            raise RuntimeError("no JWT_SECRET: these settings were read for a worker")
        return self._configured_secret

    def issue(self, principal: Principal, *, now: float | None = None) -> str:
        """A signed token for `principal`, valid for the configured TTL."""
        issued = int(time.time() if now is None else now)
        claims = {
            "sub": str(principal.user_id),
            "role": principal.role,
            "iat": issued,
            "exp": issued + self.ttl_seconds,
            "aud": _AUDIENCE,
            "iss": _ISSUER,
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; `Unauthorized` for anything else."""
        known = self._verified.get(token)
        if known is not None:
            principal, valid_until = known
            if time.time() < valid_until:
                return principal
            del self._verified[token]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                issuer=_ISSUER,
                leeway=_LEEWAY_SECONDS,
                options={"require": ["sub", "exp", "iat", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired; log in again") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("The access token is not valid") from None
        try:
            principal = msgspec.convert(
                {"user_id": claims["sub"], "role": claims.get("role")}, Principal, strict=False
            )
        except msgspec.ValidationError:
            raise Unauthorized("The access token is not valid") from None
        if len(self._verified) >= VERIFIED_MEMO_SIZE:
            self._verified.clear()
        self._verified[token] = (principal, claims["exp"] + _LEEWAY_SECONDS)
        return principal

    def principal_of(self, request: Request[Any, Any, Any]) -> Principal:
        """The caller of `request`, from its `Authorization: Bearer` header."""
        return self.principal_of_header(request.headers.get("authorization", ""))

    def principal_of_header(self, header: str) -> Principal:
        """The caller named by an `Authorization` header's value (`Bearer <token>`)."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send an access token as `Authorization: Bearer <token>`")
        return self.verify(token.strip())


def require_instructor(principal: Principal) -> None:
    """Only instructors may author courses."""
    if principal.role != "instructor":
        raise Forbidden("Only instructors may do this")
