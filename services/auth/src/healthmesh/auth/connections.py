"""Provider connections: the OAuth connect dance, tokens sealed at rest, single-flight refresh,
disconnect. Every change that others must hear of is queued in the outbox in the same
transaction as the change itself."""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import asyncpg
import httpx

from healthmesh.auth import db
from healthmesh.auth.crypto import Sealed, TokenCipher
from healthmesh.auth.oauth import (
    InvalidGrant,
    OAuthError,
    Provider,
    ProviderUnavailable,
    TokenSet,
    authorize_url,
    exchange_code,
    new_state,
    pkce_pair,
    refresh,
)
from healthmesh.auth.settings import Settings
from healthmesh.common.events import ConnectionChanged, dump
from healthmesh.common.http import ApiError
from healthmesh.common.logging import get_logger
from healthmesh.common.outbox import Outbox, OutboxMessage
from healthmesh.common.topics import Topics

log = get_logger(__name__)


@dataclass(frozen=True)
class Completed:
    user_id: UUID
    provider: str
    app_redirect: str | None


class Connections:
    def __init__(
        self,
        pool: asyncpg.Pool,
        http: httpx.AsyncClient,
        providers: dict[str, Provider],
        cipher: TokenCipher,
        outbox: Outbox,
        settings: Settings,
    ) -> None:
        self._pool = pool
        self._http = http
        self._providers = providers
        self._cipher = cipher
        self._outbox = outbox
        self._settings = settings
        self._topics = Topics(settings.topic_prefix)

    def provider(self, provider_id: str) -> Provider:
        provider = self._providers.get(provider_id)
        if provider is None:
            available = ", ".join(sorted(self._providers)) or "none configured"
            raise ApiError(
                404,
                "unknown_provider",
                f"no provider {provider_id!r} can be connected here (available: {available})",
            )
        return provider

    def redirect_uri(self, provider_id: str) -> str:
        return f"{self._settings.public_url.rstrip('/')}/v1/oauth/{provider_id}/callback"

    async def start(self, user_id: UUID, provider_id: str, app_redirect: str | None) -> str:
        """A fresh state (and PKCE pair where supported) and the provider's authorize URL."""
        provider = self.provider(provider_id)
        if app_redirect is not None and not self._allowed_app_redirect(app_redirect):
            raise ApiError(
                422,
                "invalid_redirect",
                "redirect_uri must start with one of HEALTHMESH_APP_REDIRECT_ORIGINS",
            )
        state = new_state(provider)
        verifier, challenge = pkce_pair() if provider.spec.pkce else (None, None)
        redirect_uri = self.redirect_uri(provider_id)
        await db.insert_oauth_state(
            self._pool,
            state,
            user_id,
            provider_id,
            verifier,
            redirect_uri,
            app_redirect,
            self._settings.oauth_state_ttl_s,
        )
        return authorize_url(provider, redirect_uri, state, challenge)

    def _allowed_app_redirect(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        return parts.scheme in ("http", "https") and origin in self._settings.app_redirect_origins

    async def complete(
        self,
        provider_id: str,
        state: str | None,
        code: str | None,
        error: str | None,
        caller: UUID | None,
    ) -> Completed:
        """The provider's redirect back: check the state, exchange the code, store the tokens."""
        provider = self.provider(provider_id)
        taken = await db.take_oauth_state(self._pool, state) if state else None
        if taken is None:
            raise ApiError(400, "invalid_state", "unknown, expired or already used state")
        if taken["provider"] != provider_id or (caller is not None and caller != taken["user_id"]):
            raise ApiError(400, "invalid_state", "this state was not issued for this connection")
        if error is not None:
            raise ApiError(400, "access_denied", f"the provider reported: {error[:100]}")
        if not code:
            raise ApiError(400, "invalid_request", "the provider sent no authorization code")
        try:
            tokens = await exchange_code(
                self._http, provider, code, taken["redirect_uri"], taken["code_verifier"]
            )
        except InvalidGrant:
            raise ApiError(
                400, "invalid_grant", "the provider refused the authorization code"
            ) from None
        except OAuthError as exc:
            log.warning("code exchange failed", provider=provider_id, error=str(exc))
            raise ApiError(
                502, "provider_error", f"{provider_id} did not complete the exchange"
            ) from None
        user_id = taken["user_id"]
        async with self._pool.acquire() as conn, conn.transaction():
            await db.upsert_connection(
                conn,
                user_id,
                provider_id,
                tokens.provider_user_id,
                list(tokens.scopes),
                *self._seal(user_id, provider_id, tokens),
                tokens.expires_at,
            )
            await self._announce(conn, "connection.connected", user_id, provider_id, tokens)
        return Completed(user_id, provider_id, taken["app_redirect"])

    async def list(self, user_id: UUID) -> list[dict[str, Any]]:
        return [
            {
                "provider": row["provider"],
                "status": row["status"],
                "connected_at": row["connected_at"].isoformat(),
                "last_refresh_at": row["refreshed_at"].isoformat() if row["refreshed_at"] else None,
                "last_sync_at": None,
                "last_error": row["last_error"],
                "scopes": list(row["scopes"]),
            }
            for row in await db.user_connections(self._pool, user_id)
        ]

    async def access_token(
        self, user_id: UUID, provider_id: str, rejected_sha256: str | None = None
    ) -> TokenSet:
        """A working access token, refreshed first when it is close to expiry, or when the
        provider refused it (`rejected_sha256`: the refused token's SHA-256).

        Single-flight per (user, provider) across processes: the refresh runs holding the row
        lock, and whoever waited re-reads the row and finds it fresh (or, for a refused token,
        finds a different token than the one refused).
        """
        provider = self.provider(provider_id)
        row = await db.connection(self._pool, user_id, provider_id)
        tokens = self._usable(row, user_id, provider_id, rejected_sha256)
        if tokens is not None:
            return tokens
        reauth = False
        async with self._pool.acquire() as conn, conn.transaction():
            row = await db.connection(conn, user_id, provider_id, lock=True)
            tokens = self._usable(row, user_id, provider_id, rejected_sha256)
            if tokens is not None:
                return tokens
            current = self._open(row)
            try:
                fresh = await refresh(self._http, provider, current)
            except InvalidGrant:
                await self._needs_reauth(
                    conn, user_id, provider_id, "the provider refused the refresh token; reconnect"
                )
                reauth = True
            except ProviderUnavailable as exc:
                log.warning("token refresh failed", provider=provider_id, error=str(exc))
                raise ApiError(
                    503, "provider_unavailable", f"{provider_id} is unavailable"
                ) from None
            else:
                await db.store_refreshed(
                    conn,
                    user_id,
                    provider_id,
                    *self._seal(user_id, provider_id, fresh),
                    fresh.expires_at,
                    list(fresh.scopes),
                )
                return fresh
        assert reauth
        raise ApiError(409, "reauth_required", f"the {provider_id} connection must be renewed")

    async def mark_reauth(self, user_id: UUID, provider_id: str, reason: str) -> None:
        """A connector found the grant dead (a fresh token refused, access revoked at the
        provider): the user must reconnect. Announced once."""
        self.provider(provider_id)
        async with self._pool.acquire() as conn, conn.transaction():
            row = await db.connection(conn, user_id, provider_id, lock=True)
            if row is None:
                raise ApiError(404, "not_connected", f"no {provider_id} connection for this user")
            if row["status"] != "reauth_required":
                await self._needs_reauth(conn, user_id, provider_id, reason)

    async def _needs_reauth(
        self, conn: asyncpg.Connection, user_id: UUID, provider_id: str, reason: str
    ) -> None:
        await db.mark_connection(conn, user_id, provider_id, "reauth_required", reason)
        await self._announce(conn, "connection.reauth_required", user_id, provider_id, None)

    def _usable(
        self, row: Any, user_id: UUID, provider_id: str, rejected_sha256: str | None = None
    ) -> TokenSet | None:
        if row is None:
            raise ApiError(404, "not_connected", f"no {provider_id} connection for this user")
        if row["status"] == "reauth_required":
            raise ApiError(409, "reauth_required", f"the {provider_id} connection must be renewed")
        tokens = self._open(row)
        if rejected_sha256 is not None:
            refused = hashlib.sha256(tokens.access_token.encode()).hexdigest()
            return None if hmac.compare_digest(refused, rejected_sha256) else tokens
        margin = timedelta(seconds=self._settings.refresh_margin_s)
        if row["expires_at"] - margin > datetime.now(UTC):
            return tokens
        return None

    async def disconnect(self, user_id: UUID, provider_id: str, delete_data: bool) -> None:
        """Revoke at the provider (best effort), delete the tokens, announce it."""
        provider = self.provider(provider_id)
        row = await db.connection(self._pool, user_id, provider_id)
        if row is None:
            raise ApiError(404, "not_connected", f"no {provider_id} connection for this user")
        try:
            await provider.spec.revoke(self._http, provider, self._open(row))
        except Exception as exc:  # the user's wish to disconnect wins over the provider's mood
            log.warning(
                "revocation at the provider failed", provider=provider_id, error=type(exc).__name__
            )
        async with self._pool.acquire() as conn, conn.transaction():
            if await db.delete_connection(conn, user_id, provider_id):
                await self._announce(
                    conn, "connection.disconnected", user_id, provider_id, None, delete_data
                )

    def _context(self, user_id: UUID, provider_id: str, field: str) -> str:
        return f"{user_id}:{provider_id}:{field}"

    def _seal(
        self, user_id: UUID, provider_id: str, tokens: TokenSet
    ) -> tuple[tuple[bytes, str], tuple[bytes, str] | None]:
        access = self._cipher.seal(tokens.access_token, self._context(user_id, provider_id, "a"))
        refresh_token = (
            self._cipher.seal(tokens.refresh_token, self._context(user_id, provider_id, "r"))
            if tokens.refresh_token
            else None
        )
        return (access.blob, access.kid), (
            (refresh_token.blob, refresh_token.kid) if refresh_token else None
        )

    def _open(self, row: Any) -> TokenSet:
        user_id, provider_id = row["user_id"], row["provider"]
        access = self._cipher.open(
            Sealed(row["access_token_kid"], row["access_token"]),
            self._context(user_id, provider_id, "a"),
        )
        refresh_token = (
            self._cipher.open(
                Sealed(row["refresh_token_kid"], row["refresh_token"]),
                self._context(user_id, provider_id, "r"),
            )
            if row["refresh_token"] is not None
            else None
        )
        return TokenSet(
            access, refresh_token, row["expires_at"], tuple(row["scopes"]), row["provider_user_id"]
        )

    async def reseal_all(self, batch: int = 100) -> int:
        """Re-encrypt every token sealed with an older key under the active one."""
        done = 0
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                rows = await db.connections_not_under(conn, self._cipher.active_kid, batch)
                for row in rows:
                    tokens = self._open(row)
                    await db.reseal(
                        conn,
                        row["user_id"],
                        row["provider"],
                        *self._seal(row["user_id"], row["provider"], tokens),
                    )
            done += len(rows)
            if len(rows) < batch:
                return done

    async def _announce(
        self,
        conn: asyncpg.Connection,
        event: str,
        user_id: UUID,
        provider_id: str,
        tokens: TokenSet | None,
        delete_data: bool = False,
    ) -> None:
        change = ConnectionChanged(
            event=event,
            user_id=user_id,
            provider=provider_id,
            provider_user_id=tokens.provider_user_id if tokens else None,
            scopes=list(tokens.scopes) if tokens else [],
            delete_data=delete_data,
            occurred_at=datetime.now(UTC),
        )
        await self._outbox.add(
            conn,
            [OutboxMessage(self._topics.connections_changed, str(user_id).encode(), dump(change))],
        )
        self._outbox.wakeup.set()


def app_redirect_location(completed: Completed) -> str | None:
    if completed.app_redirect is None:
        return None
    separator = "&" if "?" in completed.app_redirect else "?"
    query = urlencode({"provider": completed.provider, "status": "connected"})
    return f"{completed.app_redirect}{separator}{query}"
