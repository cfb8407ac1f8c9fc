"""Password hashing with Argon2id (argon2-cffi, RFC 9106 low-memory profile).

Hashing is deliberately slow, so it runs in a worker thread and never blocks the event
loop. Logins for unknown emails verify against a fixed dummy hash, so response time does
not reveal which emails have accounts.
"""

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

__all__ = ["Passwords"]


class Passwords:
    """Hash and verify passwords off the event loop."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)
        self._dummy = self._hasher.hash("not a real password, only for timing")

    async def hash(self, password: str) -> str:
        """An Argon2id hash with a fresh salt."""
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """Whether `password` matches; `None` (no such account) costs the same and fails."""
        target = stored_hash if stored_hash is not None else self._dummy
        try:
            matched = await anyio.to_thread.run_sync(self._hasher.verify, target, password)
        except (VerificationError, InvalidHashError):
            return False
        return bool(matched) and stored_hash is not None
