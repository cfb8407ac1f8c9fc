"""SQL for accounts; always on the writer (Auth's reads must see its own writes)."""

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg.errors

from services.auth.schemas import UserProfile
from services.runtime.database import Connection
from services.runtime.errors import Conflict

__all__ = [
    "Account",
    "VersionedProfile",
    "create_user",
    "find_account",
    "load_profile",
    "update_profile",
]

_PROFILE_COLUMNS = "id, email, display_name, role, bio, avatar_url"
_RETURNED = f"{_PROFILE_COLUMNS}, profile_version"


@dataclass(frozen=True)
class VersionedProfile:
    """A profile as committed, with the row's `profile_version` at that commit.

    The cache compares versions so that of two racing writes the later commit wins in
    Redis too, whichever request reaches Redis last.
    """

    profile: UserProfile
    version: int

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> "VersionedProfile":
        """From a row of `_RETURNED` columns."""
        version = row.pop("profile_version")
        return cls(UserProfile(**row), int(version))


class Account:
    """A login's view of a user: who it is and the hash to check."""

    __slots__ = ("password_hash", "principal_role", "user_id")

    def __init__(self, row: dict[str, Any]) -> None:
        self.user_id: uuid.UUID = row["id"]
        self.principal_role: str = row["role"]
        self.password_hash: str = row["password_hash"]


async def create_user(
    conn: Connection, *, email: str, password_hash: str, display_name: str, role: str
) -> VersionedProfile:
    """Insert an account; `Conflict` when the email is taken in any letter case."""
    try:
        cursor = await conn.execute(
            f"INSERT INTO users (id, email, password_hash, display_name, role)"  # noqa: S608
            f" VALUES (%s, %s, %s, %s, %s) RETURNING {_RETURNED}",
            (uuid.uuid4(), email, password_hash, display_name, role),
        )
    except psycopg.errors.UniqueViolation:
        raise Conflict("An account with this email already exists") from None
    row = await cursor.fetchone()
    assert row is not None  # noqa: S101 - RETURNING always yields the row
    return VersionedProfile.of_row(row)


async def find_account(conn: Connection, email: str) -> Account | None:
    """The account for `email`, compared case-insensitively."""
    cursor = await conn.execute(
        "SELECT id, role, password_hash FROM users WHERE lower(email) = lower(%s)", (email,)
    )
    row = await cursor.fetchone()
    return Account(row) if row is not None else None


async def load_profile(conn: Connection, user_id: uuid.UUID) -> VersionedProfile | None:
    """The profile of `user_id`, or None if the account is gone."""
    cursor = await conn.execute(
        f"SELECT {_RETURNED} FROM users WHERE id = %s",  # noqa: S608
        (user_id,),
    )
    row = await cursor.fetchone()
    return VersionedProfile.of_row(row) if row is not None else None


async def update_profile(
    conn: Connection, user_id: uuid.UUID, changes: dict[str, str | None]
) -> VersionedProfile | None:
    """Apply `changes` (column -> value; columns from a fixed set) and return the result.

    The version is bumped in the same statement: an UPDATE that waited for another's row
    lock re-reads the committed row, so versions follow commit order.
    """
    allowed = {"display_name", "bio", "avatar_url"}
    if not changes or not set(changes) <= allowed:
        raise ValueError(f"profile changes must be a non-empty subset of {sorted(allowed)}")
    assignments = ", ".join(f"{column} = %({column})s" for column in sorted(changes))
    cursor = await conn.execute(
        f"UPDATE users SET {assignments}, updated_at = now(),"  # noqa: S608 - fixed column names
        " profile_version = profile_version + 1"
        f" WHERE id = %(user_id)s RETURNING {_RETURNED}",
        {**changes, "user_id": user_id},
    )
    row = await cursor.fetchone()
    return VersionedProfile.of_row(row) if row is not None else None
