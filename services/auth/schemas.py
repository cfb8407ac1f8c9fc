"""Request and response bodies of the Auth service.

msgspec Structs that refuse unknown fields, with limits on every string, so a client's
mistake is a 422 naming the field and no body can make the service hash a megabyte.
"""

import uuid
from typing import Annotated, Literal

import msgspec

from services.runtime.tokens import Role

__all__ = ["LoginRequest", "ProfileUpdate", "RegisterRequest", "TokenResponse", "UserProfile"]

Email = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]
Password = Annotated[str, msgspec.Meta(min_length=12, max_length=1024)]
DisplayName = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Bio = Annotated[str, msgspec.Meta(max_length=2000)]
AvatarUrl = Annotated[str, msgspec.Meta(max_length=2048, pattern=r"^(https://\S+)?$")]


class RegisterRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A new account; students by default."""

    email: Email
    password: Password
    display_name: DisplayName
    role: Role = "student"


class LoginRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Credentials for a token."""

    email: Email
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]


class ProfileUpdate(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Fields to change; omitted ones stay, an empty avatar_url removes the avatar."""

    display_name: DisplayName | None = None
    bio: Bio | None = None
    avatar_url: AvatarUrl | None = None


class UserProfile(msgspec.Struct, kw_only=True):
    """What anyone holding the account's token may see; never the password hash."""

    id: uuid.UUID
    email: str
    display_name: str
    role: Role
    bio: str = ""
    avatar_url: str | None = None


class TokenResponse(msgspec.Struct, kw_only=True):
    """An OAuth 2-style bearer token response."""

    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name
    expires_in: int
