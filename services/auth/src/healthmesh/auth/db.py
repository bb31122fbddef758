"""All SQL of the auth service: small functions taking a pool or a connection."""

from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

Executor: TypeAlias = "asyncpg.Pool | asyncpg.Connection"


async def insert_user(
    db: Executor, user_id: UUID, email: str, password_hash: str, timezone: str
) -> Any:
    """The new user's row, or None when the email is taken."""
    return await db.fetchrow(
        "INSERT INTO auth.users (id, email, password_hash, timezone) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (email) DO NOTHING RETURNING id, email",
        user_id,
        email,
        password_hash,
        timezone,
    )


async def user_by_email(db: Executor, email: str) -> Any:
    return await db.fetchrow(
        "SELECT id, email, password_hash FROM auth.users WHERE email = $1", email
    )


async def user_by_id(db: Executor, user_id: UUID) -> Any:
    return await db.fetchrow("SELECT id, email, timezone FROM auth.users WHERE id = $1", user_id)


async def update_timezone(db: Executor, user_id: UUID, timezone: str) -> Any:
    """The user's updated row (id, email, timezone), or None if the user no longer exists."""
    return await db.fetchrow(
        "UPDATE auth.users SET timezone = $2 WHERE id = $1 RETURNING id, email, timezone",
        user_id,
        timezone,
    )


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


# --- provider connections -------------------------------------------------------------------


async def insert_oauth_state(
    db: Executor,
    state: str,
    user_id: UUID,
    provider: str,
    code_verifier: str | None,
    redirect_uri: str,
    app_redirect: str | None,
    ttl_s: int,
) -> None:
    await db.execute(
        """INSERT INTO auth.oauth_states
               (state, user_id, provider, code_verifier, redirect_uri, app_redirect, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))""",
        state,
        user_id,
        provider,
        code_verifier,
        redirect_uri,
        app_redirect,
        ttl_s,
    )


async def take_oauth_state(db: Executor, state: str) -> Any:
    """Mark the state used and return it — once. A replay, an expired or unknown state: None."""
    return await db.fetchrow(
        """UPDATE auth.oauth_states SET used_at = now()
           WHERE state = $1 AND used_at IS NULL AND expires_at > now()
           RETURNING user_id, provider, code_verifier, redirect_uri, app_redirect""",
        state,
    )


_CONNECTION_COLUMNS = """user_id, provider, status, provider_user_id, scopes, access_token,
    access_token_kid, refresh_token, refresh_token_kid, expires_at, connected_at, refreshed_at,
    last_error, updated_at"""


async def upsert_connection(
    db: Executor,
    user_id: UUID,
    provider: str,
    provider_user_id: str | None,
    scopes: list[str],
    access: tuple[bytes, str],
    refresh: tuple[bytes, str] | None,
    expires_at: Any,
) -> None:
    await db.execute(
        """INSERT INTO auth.connections (user_id, provider, status, provider_user_id, scopes,
               access_token, access_token_kid, refresh_token, refresh_token_kid, expires_at)
           VALUES ($1, $2, 'connected', $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (user_id, provider) DO UPDATE SET
               status = 'connected', provider_user_id = EXCLUDED.provider_user_id,
               scopes = EXCLUDED.scopes, access_token = EXCLUDED.access_token,
               access_token_kid = EXCLUDED.access_token_kid,
               refresh_token = EXCLUDED.refresh_token,
               refresh_token_kid = EXCLUDED.refresh_token_kid,
               expires_at = EXCLUDED.expires_at, connected_at = now(), refreshed_at = NULL,
               last_error = NULL, updated_at = now()""",
        user_id,
        provider,
        provider_user_id,
        scopes,
        access[0],
        access[1],
        refresh[0] if refresh else None,
        refresh[1] if refresh else None,
        expires_at,
    )


async def connection(db: Executor, user_id: UUID, provider: str, *, lock: bool = False) -> Any:
    """The row; with `lock`, held FOR UPDATE until the caller's transaction ends (this is what
    makes a refresh single-flight across processes)."""
    return await db.fetchrow(
        f"SELECT {_CONNECTION_COLUMNS} FROM auth.connections "
        f"WHERE user_id = $1 AND provider = $2{' FOR UPDATE' if lock else ''}",
        user_id,
        provider,
    )


async def user_connections(db: Executor, user_id: UUID) -> list[Any]:
    return list(
        await db.fetch(
            "SELECT provider, status, provider_user_id, scopes, connected_at, refreshed_at, "
            "last_error FROM auth.connections WHERE user_id = $1 ORDER BY provider",
            user_id,
        )
    )


async def store_refreshed(
    db: Executor,
    user_id: UUID,
    provider: str,
    access: tuple[bytes, str],
    refresh: tuple[bytes, str] | None,
    expires_at: Any,
    scopes: list[str],
) -> None:
    await db.execute(
        """UPDATE auth.connections SET access_token = $3, access_token_kid = $4,
               refresh_token = $5, refresh_token_kid = $6, expires_at = $7, scopes = $8,
               refreshed_at = now(), last_error = NULL, status = 'connected', updated_at = now()
           WHERE user_id = $1 AND provider = $2""",
        user_id,
        provider,
        access[0],
        access[1],
        refresh[0] if refresh else None,
        refresh[1] if refresh else None,
        expires_at,
        scopes,
    )


async def mark_connection(
    db: Executor, user_id: UUID, provider: str, status: str, error: str
) -> None:
    await db.execute(
        "UPDATE auth.connections SET status = $3, last_error = $4, updated_at = now() "
        "WHERE user_id = $1 AND provider = $2",
        user_id,
        provider,
        status,
        error,
    )


async def delete_connection(db: Executor, user_id: UUID, provider: str) -> bool:
    deleted = await db.execute(
        "DELETE FROM auth.connections WHERE user_id = $1 AND provider = $2", user_id, provider
    )
    return bool(deleted.endswith(" 1"))


async def connections_not_under(db: Executor, kid: str, limit: int) -> list[Any]:
    """Rows with a token sealed by another key than `kid`, locked, for re-encryption."""
    return list(
        await db.fetch(
            f"SELECT {_CONNECTION_COLUMNS} FROM auth.connections "
            "WHERE access_token_kid <> $1 OR refresh_token_kid <> $1 "
            "LIMIT $2 FOR UPDATE SKIP LOCKED",
            kid,
            limit,
        )
    )


async def reseal(
    db: Executor,
    user_id: UUID,
    provider: str,
    access: tuple[bytes, str],
    refresh: tuple[bytes, str] | None,
) -> None:
    await db.execute(
        "UPDATE auth.connections SET access_token = $3, access_token_kid = $4, "
        "refresh_token = $5, refresh_token_kid = $6 WHERE user_id = $1 AND provider = $2",
        user_id,
        provider,
        access[0],
        access[1],
        refresh[0] if refresh else None,
        refresh[1] if refresh else None,
    )
