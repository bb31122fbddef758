"""What each provider module fills in: its OAuth policy and quirks, its error formats, its routes.

The flow shared by all (authorize page, token lock, data-call guard) lives here, so a provider
module reads as the list of ways that provider differs.
"""

import asyncio
import base64
import binascii
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Request, Response

from healthmesh.simulator.context import Context
from healthmesh.simulator.oauth import (
    AccessToken,
    Grant,
    Issued,
    OAuthError,
    OAuthServer,
    Policy,
    TokenProblem,
    Unauthenticated,
)
from healthmesh.simulator.ratelimit import Usage
from healthmesh.simulator.responses import Answer, json_response
from healthmesh.simulator.synth import Person, history, person

DEFAULT_USER = "user-1"


def valid_redirect(uri: str | None) -> bool:
    """An absolute http(s) address: the simulator has no app registry, so it takes any."""
    if not uri:
        return False
    parts = urlsplit(uri)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not parts.fragment


def basic_credentials(request: Request) -> tuple[str, str] | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return unquote(client_id), unquote(secret)


@dataclass
class AuthorizeRequest:
    """A validated authorize request: safe to redirect to `redirect_uri`."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str | None
    user: str
    challenge: str | None = None
    challenge_method: str | None = None
    offline: bool = True
    extra: dict[str, str] = field(default_factory=dict)


class RedirectError(Exception):
    """An authorize refusal the provider sends back to the (already validated) redirect_uri."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str) -> None:
        super().__init__(error)
        self.redirect_uri = redirect_uri
        self.state = state
        self.error = error
        self.description = description


class Provider(ABC):
    name: str
    title: str
    scope_separator: str
    default_ttl_s: int
    code_ttl_s: int = 600

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._router: APIRouter | None = None
        ttl = ctx.settings.token_ttl_s or self.default_ttl_s
        self.oauth = OAuthServer(self.name, self.policy(ttl), ctx.clock, self.mint)

    # --- to fill in ----------------------------------------------------------------------------

    @abstractmethod
    def policy(self, access_ttl_s: int) -> Policy: ...

    @abstractmethod
    def routes(self, router: APIRouter) -> None:
        """Add this provider's endpoints (paths without the /{name} prefix)."""

    @abstractmethod
    def parse_authorize(self, params: Mapping[str, str], user: str) -> AuthorizeRequest:
        """Validate an authorize request; raise Answer (error page) or RedirectError."""

    @abstractmethod
    def token_error(self, error: OAuthError) -> Response: ...

    @abstractmethod
    def unauthorized(self, problem: TokenProblem) -> Response: ...

    @abstractmethod
    def forbidden(self, scopes: tuple[str, ...]) -> Response: ...

    @abstractmethod
    def rate_limited(self, headers: dict[str, str]) -> Response: ...

    @abstractmethod
    def count_request(self, request: Request, token: AccessToken) -> list[Usage]:
        """Count this data call against the provider's limits."""

    def limit_headers(self, usages: list[Usage]) -> dict[str, str]:
        """The rate-limit headers this provider sends (none, unless it documents some)."""
        return {}

    def server_error(self, status: int) -> Response:
        reason = "Internal Server Error" if status == 500 else "Service Unavailable"
        return json_response({"error": reason}, status)

    def mint(self, kind: str) -> str:
        return secrets.token_urlsafe(32)

    def approved_params(self, req: AuthorizeRequest, code: str) -> dict[str, str]:
        params = {"code": code}
        if req.state is not None:
            params["state"] = req.state
        return params

    def denied_params(self, req: AuthorizeRequest) -> dict[str, str]:
        params = {"error": "access_denied"}
        if req.state is not None:
            params["state"] = req.state
        return params

    def token_body(self, issued: Issued, grant_type: str) -> dict[str, Any]:
        """The token endpoint's success answer (OAuth2 providers)."""
        raise NotImplementedError

    # --- shared machinery ----------------------------------------------------------------------

    async def fields(self, request: Request) -> dict[str, str]:
        """Query parameters and form fields together (several providers take either)."""
        form = await request.form()
        merged = dict(request.query_params)
        merged.update({k: v for k, v in form.items() if isinstance(v, str)})
        return merged

    async def oauth_token(self, request: Request) -> Response:
        """RFC 6749 token endpoint: authorization_code and refresh_token grants."""
        fields = await self.fields(request)
        grant_type = fields.get("grant_type", "")
        await self.token_call(grant_type)
        client_id, secret = basic_credentials(request) or (
            fields.get("client_id", ""),
            fields.get("client_secret", ""),
        )
        async with self.oauth.lock:
            try:
                self.oauth.check_client(client_id, secret)
                if grant_type == "authorization_code":
                    issued = self.oauth.exchange(
                        client_id=client_id,
                        code=fields.get("code"),
                        redirect_uri=fields.get("redirect_uri"),
                        verifier=fields.get("code_verifier"),
                    )
                elif grant_type == "refresh_token":
                    issued = self.oauth.refresh(
                        client_id=client_id, refresh_token=fields.get("refresh_token")
                    )
                else:
                    raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r}")
            except OAuthError as exc:
                return self.token_error(exc)
            return json_response(self.token_body(issued, grant_type))

    def expires_in(self, issued: Issued) -> int:
        return max(0, int(issued.access.expires_at - self.now()))

    def router(self) -> APIRouter:
        """This provider's routes (built once), under /{name}."""
        if self._router is None:
            self._router = APIRouter(prefix=f"/{self.name}", tags=[self.title])
            self.routes(self._router)
        return self._router

    def split_scopes(self, text: str | None) -> tuple[str, ...]:
        return tuple(s for s in (text or "").split(self.scope_separator) if s.strip())

    def join_scopes(self, scopes: Iterable[str]) -> str:
        return self.scope_separator.join(scopes)

    async def token_call(self, grant_type: str) -> None:
        """Count a token-endpoint call, then wait the configured latency (races overlap)."""
        self.ctx.stats.token_calls[self.name][grant_type or "none"] += 1
        if self.ctx.settings.token_latency_s:
            await asyncio.sleep(self.ctx.settings.token_latency_s)

    def bearer(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    def authenticate(self, request: Request, token: str | None = None) -> AccessToken:
        try:
            return self.oauth.authenticate(token or self.bearer(request))
        except Unauthenticated as exc:
            raise Answer(self.unauthorized(exc.problem)) from None

    def guard(self, request: Request, scopes: Iterable[str], token: str | None = None) -> Grant:
        """A data call: valid token, within the rate limits, one of `scopes` granted."""
        access = self.authenticate(request, token)
        usages = self.count_request(request, access)
        headers = self.limit_headers(usages)
        if any(u.exceeded for u in usages):
            self.ctx.stats.rate_limited[self.name] += 1
            raise Answer(self.rate_limited(headers))
        request.state.rate_limit_headers = headers
        needed = tuple(scopes)
        if needed and not set(needed) & set(access.grant.scopes):
            raise Answer(self.forbidden(needed))
        return access.grant

    def person(self, user: str) -> Person:
        return person(self.ctx.settings.seed, user)

    def history(self, user: str) -> tuple[date, date]:
        return history(self.ctx.clock.now(), self.person(user), self.ctx.settings.days)

    def now(self) -> float:
        return self.ctx.clock.now()

    def identity(self, user: str) -> dict[str, Any]:
        """The user as this provider knows them (ids a connector would store), and the span of
        their simulated history (local days)."""
        first, last = self.history(user)
        return {
            "time_zone": self.person(user).tz_name,
            "first_day": first.isoformat(),
            "last_day": last.isoformat(),
        }

    def exhausted_headers(self) -> dict[str, str]:
        """Headers for an injected rate-limit fault: every window used up."""
        return {}

    def fault(self, kind: str) -> Response:
        if kind == "status_500":
            return self.server_error(500)
        if kind == "status_503":
            return self.server_error(503)
        if kind == "rate_limit":
            self.ctx.stats.rate_limited[self.name] += 1
            return self.rate_limited(self.exhausted_headers())
        if kind == "unauthorized":
            return self.unauthorized(TokenProblem.REVOKED)
        if kind == "malformed_json":
            return Response(b'{"data": [{"id": "', media_type="application/json")
        return Response(b"Gateway Timeout", status_code=504, media_type="text/plain")

    async def webhook(self, body: dict[str, Any]) -> dict[str, Any]:
        """Send a webhook the way this provider does; see healthmesh.simulator.webhooks."""
        raise Answer(json_response({"error": f"{self.name} sends no webhooks"}, 400))

    def live_grant(self, user: str) -> Grant:
        """Revoked users get no webhooks: sending one for them is refused."""
        grant = self.oauth.live_grant(user)
        if grant is None:
            raise Answer(json_response({"error": f"{user} has not authorized {self.name}"}, 409))
        return grant
