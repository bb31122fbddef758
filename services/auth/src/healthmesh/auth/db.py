"""All SQL of the auth service: small functions taking a pool or a connection."""

from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Executor: TypeAlias = "asyncpg.Pool | asyncpg.Connection"


async def insert_user(db: Executor, user_id: UUID, email: str, password_hash: str) -> Any:
    """The new user's row, or None when the email is taken."""
    return await db.fetchrow(
        "INSERT INTO auth.users (id, email, password_hash) VALUES ($1, $2, $3) "
        "ON CONFLICT (email) DO NOTHING RETURNING id, email",
        user_id,
        email,
        password_hash,
    )


async def user_by_email(db: Executor, email: str) -> Any:
    return await db.fetchrow(
        "SELECT id, email, password_hash FROM auth.users WHERE email = $1", email
    )


async def user_by_id(db: Executor, user_id: UUID) -> Any:
    return await db.fetchrow("SELECT id, email, timezone FROM auth.users WHERE id = $1", user_id)


async def update_password_hash(db: Executor, user_id: UUID, password_hash: str) -> None:
    await db.execute(
        "UPDATE auth.users SET password_hash = $2 WHERE id = $1", user_id, password_hash
    )


async def insert_refresh_token(
    db: Executor, token_hash: str, user_id: UUID, family_id: UUID, ttl_s: int
) -> None:
    await db.execute(
        "INSERT INTO auth.refresh_tokens (token_hash, user_id, family_id, expires_at) "
        "VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
        token_hash,
        user_id,
        family_id,
        float(ttl_s),
    )


async def lock_refresh_token(conn: asyncpg.Connection, token_hash: str) -> Any:
    """The token's row with its user's email, locked until the transaction ends; None if unknown."""
    return await conn.fetchrow(
        "SELECT t.user_id, t.family_id, t.used_at, t.revoked_at, t.expires_at <= now() AS expired, "
        "u.email FROM auth.refresh_tokens t JOIN auth.users u ON u.id = t.user_id "
        "WHERE t.token_hash = $1 FOR UPDATE OF t",
        token_hash,
    )


async def mark_refresh_token_used(conn: asyncpg.Connection, token_hash: str) -> None:
    await conn.execute(
        "UPDATE auth.refresh_tokens SET used_at = now() WHERE token_hash = $1", token_hash
    )


async def revoke_refresh_family(conn: asyncpg.Connection, family_id: UUID) -> None:
    await conn.execute(
        "UPDATE auth.refresh_tokens SET revoked_at = now() "
        "WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )


async def lock_signing_keys(conn: asyncpg.Connection) -> None:
    """Serialise key creation between replicas starting at once (until the transaction ends)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('auth.signing_keys'))")


async def signing_keys(db: Executor) -> list[Any]:
    """(kid, private_pem, created_at) of every signing key, newest first."""
    return list(
        await db.fetch(
            "SELECT kid, private_pem, created_at FROM auth.signing_keys "
            "ORDER BY created_at DESC, kid"
        )
    )


async def insert_signing_key(conn: asyncpg.Connection, kid: str, private_pem: str) -> None:
    await conn.execute(
        "INSERT INTO auth.signing_keys (kid, private_pem) VALUES ($1, $2)", kid, private_pem
    )
