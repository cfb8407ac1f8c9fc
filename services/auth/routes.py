"""HTTP handlers of the Auth service."""

from email_validator import EmailNotValidError, validate_email
from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from services.auth.passwords import Passwords
from services.auth.profiles import ProfileStore
from services.auth.schemas import (
    LoginRequest,
    ProfileUpdate,
    RegisterRequest,
    TokenResponse,
    UserProfile,
)
from services.auth.throttle import LoginThrottle
from services.auth.users import create_user, find_account
from services.runtime.errors import FieldError, InvalidInput, NotFound, Unauthorized
from services.runtime.resources import Resources
from services.runtime.tokens import Principal

__all__ = ["AuthController"]

_BAD_CREDENTIALS = "Email or password is incorrect"


def _normalised_email(email: str) -> str:
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidInput([FieldError(field="email", message=str(error))]) from None


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
        """One message for unknown email and wrong password; repeated failures get 429."""
        settings = resources.settings
        throttle = LoginThrottle(
            resources.redis,
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_lockout_seconds,
        )
        await throttle.check(data.email)
        async with resources.databases.writer() as conn:
            account = await find_account(conn, data.email.strip())
        if not await passwords.verify(account.password_hash if account else None, data.password):
            await throttle.failed(data.email)
            raise Unauthorized(_BAD_CREDENTIALS)
        assert account is not None  # noqa: S101 - verify() fails for a missing account
        await throttle.succeeded(data.email)
        principal = Principal(user_id=account.user_id, role=account.principal_role)  # type: ignore[arg-type]
        return TokenResponse(
            access_token=resources.tokens.issue(principal), expires_in=resources.tokens.ttl_seconds
        )

    @get("/me", operation_id="get_me", summary="The caller's profile")
    async def me(
        self, principal: NamedDependency[Principal], profiles: NamedDependency[ProfileStore]
    ) -> UserProfile:
        """Served from the write-through cache when it holds the profile."""
        profile = await profiles.get(principal.user_id)
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
