"""Password policy and argon2id hashing. Hashing runs in a worker thread, off the event loop."""

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 1024
# A one- or two-letter local part ("jo@...") would forbid most passwords, so it is not checked.
_MIN_CHECKED_LOCAL_PART = 3


def password_problem(email: str, password: str) -> str | None:
    """Why `password` is not acceptable for the account `email`, or None when it is."""
    if len(password) < MIN_LENGTH:
        return f"password must be at least {MIN_LENGTH} characters long"
    if len(password) > MAX_LENGTH:
        return f"password must be at most {MAX_LENGTH} characters long"
    local_part = email.rpartition("@")[0].lower()
    if len(local_part) >= _MIN_CHECKED_LOCAL_PART and local_part in password.lower():
        return "password must not contain the part of the email address before the @"
    return None


class Passwords:
    """argon2id hashing. Build it in a thread: it hashes a dummy password once, which takes time."""

    def __init__(self, hasher: PasswordHasher | None = None) -> None:
        self._hasher = hasher or PasswordHasher()
        # Verified against when the user is unknown, so the answer takes as long as for a known one.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches `password_hash`; always False without a hash (no user)."""
        try:
            await asyncio.to_thread(
                self._hasher.verify, password_hash or self._dummy_hash, password
            )
        except (VerificationError, InvalidHashError):
            return False
        return password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        """True when the hash was made with weaker parameters than the current ones."""
        return bool(self._hasher.check_needs_rehash(password_hash))
