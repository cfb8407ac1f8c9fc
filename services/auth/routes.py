"""HTTP handlers of the Auth service.

A password login returns an access token (a JWT every service verifies alone) and a
refresh token (`refresh_tokens.py`); a returning client refreshes instead of sending the
password again. Logout revokes the login's refresh tokens; a password change revokes
every login of the account and starts a new one for the caller. Access tokens already
issued stay valid until they expire (JWT_TTL_SECONDS): they are never looked up.
"""

import uuid
from typing import Any

from email_validator import EmailNotValidError, validate_email
from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from services.auth.passwords import Passwords
from services.auth.profiles import ProfileStore, profile_key
from services.auth.refresh_tokens import (
    IssuedToken,
    RefreshRefused,
    revoke_family,
    revoke_user_families,
    rotate,
    start_family,
)
from services.auth.schemas import (
    LoginRequest,
    PasswordChange,
    ProfileUpdate,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
    UserProfile,
)
from services.auth.throttle import LoginThrottle
from services.auth.users import (
    create_user,
    find_account,
    find_account_by_id,
    set_password_hash,
)
from services.runtime.errors import FieldError, Forbidden, InvalidInput, NotFound, Unauthorized
from services.runtime.hot_path import missed
from services.runtime.resources import Resources
from services.runtime.tokens import Principal

__all__ = ["AuthController"]

_BAD_CREDENTIALS = "Email or password is incorrect"


def _normalised_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidInput([FieldError(field="email", message=str(error))]) from None


def _throttle(resources: Resources) -> LoginThrottle:
    settings = resources.settings
    return LoginThrottle(
        resources.redis,
        max_failures=settings.login_max_failures,
        window_seconds=settings.login_lockout_seconds,
    )


def _tokens(
    resources: Resources, user_id: uuid.UUID, role: str, refresh: IssuedToken
) -> TokenResponse:
    principal = Principal(user_id=user_id, role=role)  # type: ignore[arg-type]
    return TokenResponse(
        access_token=resources.tokens.issue(principal),
        expires_in=resources.tokens.ttl_seconds,
        refresh_token=refresh.token,
        refresh_expires_in=refresh.expires_in,
    )


class AuthController(Controller):
    """Accounts, tokens and the caller's own profile."""

    path = "/auth"
    tags = ["auth"]  # noqa: RUF012 - Litestar reads this class attribute

    @post(
        "/register",
        operation_id="register",
        summary="Create an account",
        status_code=201,
    )
    async def register(
        self,
        data: JSONBody[RegisterRequest],
        resources: NamedDependency[Resources],
        passwords: NamedDependency[Passwords],
        profiles: NamedDependency[ProfileStore],
    ) -> UserProfile:
        """409 when the email is taken in any letter case; the password is only hashed."""
        email = _normalised_email(data.email)
        password_hash = await passwords.hash(data.password)
        async with resources.databases.writer() as conn:
            stored = await create_user(
                conn,
                email=email,
                password_hash=password_hash,
                display_name=data.display_name.strip() or data.display_name,
                role=data.role,
            )
        await profiles.put(stored)
        return stored.profile

    @post(
        "/login", operation_id="login", summary="Exchange credentials for a token", status_code=200
    )
    async def login(
        self,
        data: JSONBody[LoginRequest],
        resources: NamedDependency[Resources],
        passwords: NamedDependency[Passwords],
    ) -> TokenResponse:
        """One message for unknown email and wrong password; repeated failures get 429.

        Each login starts a new refresh-token family (one per device that logs in).
        """
        throttle = _throttle(resources)
        await throttle.check(data.email)
        async with resources.databases.writer() as conn:
            account = await find_account(conn, data.email.strip())
        if not await passwords.verify(account.password_hash if account else None, data.password):
            await throttle.failed(data.email)
            raise Unauthorized(_BAD_CREDENTIALS)
        assert account is not None  # noqa: S101 - verify() fails for a missing account
        await throttle.succeeded(data.email)
        async with resources.databases.writer() as conn:
            refresh = await start_family(
                conn, account.user_id, resources.settings.refresh_ttl_seconds
            )
        return _tokens(resources, account.user_id, account.principal_role, refresh)

    @post(
        "/refresh",
        operation_id="refresh",
        summary="Exchange a refresh token for new tokens",
        status_code=200,
    )
    async def refresh(
        self, data: JSONBody[RefreshRequest], resources: NamedDependency[Resources]
    ) -> TokenResponse:
        """Spend the token; the answer holds its successor.

        A spent token sent again revokes its whole login (401), the successor included.
        """
        try:
            async with resources.databases.writer() as conn:
                rotation = await rotate(
                    conn, data.refresh_token, resources.settings.refresh_ttl_seconds
                )
        except RefreshRefused as refused:
            if refused.reason == "expired":
                raise Unauthorized("The refresh token has expired; log in again") from None
            raise Unauthorized("The refresh token is not valid; log in again") from None
        return _tokens(resources, rotation.user_id, rotation.role, rotation.successor)

    @post(
        "/logout",
        operation_id="logout",
        summary="End a login: revoke its refresh tokens",
        status_code=204,
    )
    async def logout(
        self, data: JSONBody[RefreshRequest], resources: NamedDependency[Resources]
    ) -> None:
        """Always 204, as RFC 7009 revocation answers: an unknown token tells nothing.

        Needs no access token: by the time a user logs out it has often expired.
        """
        async with resources.databases.writer() as conn:
            await revoke_family(conn, data.refresh_token, "logout")

    @post(
        "/password",
        operation_id="change_password",
        summary="Change the caller's password",
        status_code=200,
    )
    async def change_password(
        self,
        data: JSONBody[PasswordChange],
        principal: NamedDependency[Principal],
        resources: NamedDependency[Resources],
        passwords: NamedDependency[Passwords],
    ) -> TokenResponse:
        """Every login of the account ends; the caller gets a new one.

        Needs the current password: 403 if it is wrong, counted as a failed login.
        """
        async with resources.databases.writer() as conn:
            account = await find_account_by_id(conn, principal.user_id)
        if account is None:
            raise NotFound("This account no longer exists")
        throttle = _throttle(resources)
        await throttle.check(account.email)
        if not await passwords.verify(account.password_hash, data.current_password):
            await throttle.failed(account.email)
            raise Forbidden("The current password is not correct")
        await throttle.succeeded(account.email)
        new_hash = await passwords.hash(data.new_password)
        async with resources.databases.writer() as conn, conn.transaction():
            if not await set_password_hash(conn, account.user_id, new_hash):
                raise NotFound("This account no longer exists")
            await revoke_user_families(conn, account.user_id, "password_change")
            refresh = await start_family(
                conn, account.user_id, resources.settings.refresh_ttl_seconds
            )
        return _tokens(resources, account.user_id, account.principal_role, refresh)

    @get("/me", operation_id="get_me", summary="The caller's profile")
    async def me(
        self,
        request: Request[Any, Any, Any],
        principal: NamedDependency[Principal],
        profiles: NamedDependency[ProfileStore],
    ) -> UserProfile:
        """Served from the write-through cache when it holds the profile.

        Its hits are answered by the fast lane (`fast_reads.py`); this handler sees the rest.
        """
        key = profile_key(principal.user_id)
        profile = await profiles.get(
            principal.user_id, known_miss=missed(request.scope["state"], key)
        )
        if profile is None:
            raise NotFound("This account no longer exists")
        return profile

    @patch("/me", operation_id="update_me", summary="Change the caller's profile")
    async def update_me(
        self,
        data: JSONBody[ProfileUpdate],
        principal: NamedDependency[Principal],
        profiles: NamedDependency[ProfileStore],
    ) -> UserProfile:
        """Written to PostgreSQL, then through to Redis in the same request."""
        changes: dict[str, str | None] = {}
        if data.display_name is not None:
            if not data.display_name.strip():
                raise InvalidInput([FieldError("display_name", "must not be blank")])
            changes["display_name"] = data.display_name.strip()
        if data.bio is not None:
            changes["bio"] = data.bio
        if data.avatar_url is not None:
            changes["avatar_url"] = data.avatar_url or None
        if not changes:
            raise InvalidInput(
                [FieldError("body", "send at least one of display_name, bio, avatar_url")]
            )
        profile = await profiles.update(principal.user_id, changes)
        if profile is None:
            raise NotFound("This account no longer exists")
        return profile
