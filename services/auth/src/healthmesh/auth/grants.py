"""The two OAuth2 grants of POST /v1/auth/token: password, and refresh token with rotation.

A refresh token is single-use. Spending it marks it used and issues its successor in the same
family (one sign-in's chain). Presenting an already-used token means two parties hold it, so the
whole family is revoked: the thief and the user both have to sign in again.
"""

import time
from dataclasses import dataclass
from uuid import UUID, uuid4

import asyncpg

from healthmesh.auth import db
from healthmesh.auth.passwords import Passwords
from healthmesh.auth.settings import Settings
from healthmesh.auth.signing_keys import SigningKeys
from healthmesh.auth.tokens import (
    access_claims,
    hash_refresh_token,
    new_refresh_token,
    sign_access_token,
)
from healthmesh.common.http import ApiError
from healthmesh.common.logging import get_logger

log = get_logger(__name__)

BAD_CREDENTIALS = "wrong email or password"


@dataclass(frozen=True)
class IssuedTokens:
    access_token: str
    expires_in: int
    refresh_token: str


def _invalid_grant(message: str) -> ApiError:
    return ApiError(401, "invalid_grant", message)


async def _issue(
    conn: asyncpg.Connection,
    keys: SigningKeys,
    settings: Settings,
    user_id: UUID,
    email: str,
    family_id: UUID,
) -> IssuedTokens:
    refresh_token = new_refresh_token()
    await db.insert_refresh_token(
        conn, hash_refresh_token(refresh_token), user_id, family_id, settings.refresh_token_ttl_s
    )
    claims = access_claims(
        user_id, email, issued_at=int(time.time()), ttl_s=settings.access_token_ttl_s
    )
    return IssuedTokens(
        access_token=sign_access_token(keys.current, claims),
        expires_in=settings.access_token_ttl_s,
        refresh_token=refresh_token,
    )


async def password_grant(
    pool: asyncpg.Pool,
    passwords: Passwords,
    keys: SigningKeys,
    settings: Settings,
    username: str,
    password: str,
) -> IssuedTokens:
    """Tokens for a correct email and password; the same 401 for an unknown email or a wrong one."""
    user = await db.user_by_email(pool, username.strip().lower())
    stored_hash: str | None = user["password_hash"] if user is not None else None
    if not await passwords.verify(stored_hash, password) or stored_hash is None:
        raise _invalid_grant(BAD_CREDENTIALS)
    async with pool.acquire() as conn, conn.transaction():
        if passwords.needs_rehash(stored_hash):
            await db.update_password_hash(conn, user["id"], await passwords.hash(password))
        return await _issue(conn, keys, settings, user["id"], user["email"], uuid4())


async def refresh_grant(
    pool: asyncpg.Pool, keys: SigningKeys, settings: Settings, refresh_token: str
) -> IssuedTokens:
    """Spend a refresh token for a new pair; a reused one revokes its family (committed first)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await db.lock_refresh_token(conn, hash_refresh_token(refresh_token))
        if row is None or row["revoked_at"] is not None or row["expired"]:
            problem = "refresh token is invalid, expired or revoked; sign in again"
        elif row["used_at"] is not None:
            await db.revoke_refresh_family(conn, row["family_id"])
            log.warning(
                "refresh token reused; its family is revoked",
                user_id=str(row["user_id"]),
                family_id=str(row["family_id"]),
            )
            problem = "refresh token was already used; this sign-in is revoked, sign in again"
        else:
            await db.mark_refresh_token_used(conn, hash_refresh_token(refresh_token))
            return await _issue(
                conn, keys, settings, row["user_id"], row["email"], row["family_id"]
            )
    raise _invalid_grant(problem)
