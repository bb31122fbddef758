"""The OAuth2 authorization-code client, the same for every provider; each provider's quirks live
in its own module under `providers/` and plug in through `ProviderSpec`."""

import base64
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx


class OAuthError(Exception):
    """Base of what a provider's OAuth endpoints can answer; messages never carry tokens."""


class InvalidGrant(OAuthError):
    """The grant is gone (revoked, spent or expired): only the user can reconnect."""


class ProviderUnavailable(OAuthError):
    """5xx, timeout, rate limit or an unreadable answer: try again later."""


class ProviderRefused(OAuthError):
    """Any other refusal (bad client credentials, bad request): a configuration problem."""


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scopes: tuple[str, ...]
    provider_user_id: str | None = None

    def __repr__(self) -> str:  # tokens never reach logs, even by accident
        return f"TokenSet(expires_at={self.expires_at.isoformat()}, scopes={self.scopes})"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r})"


TokenParser = Callable[[Any, "TokenSet | None", datetime], TokenSet]
GrantRefusal = Callable[[int, Any], bool]
"""Whether an HTTP 4xx answer of the token endpoint means the grant is dead."""


def oauth_invalid_grant(status: int, document: Any) -> bool:
    """RFC 6749 §5.2: `{"error": "invalid_grant"}`."""
    return isinstance(document, dict) and document.get("error") == "invalid_grant"


Revoker = Callable[[httpx.AsyncClient, "Provider", TokenSet], Awaitable[None]]


@dataclass(frozen=True)
class ProviderSpec:
    """What one provider's OAuth looks like (its real URLs; the registry may point them at the
    simulator)."""

    id: str
    authorize_url: str
    token_url: str
    revoke_url: str
    scopes: tuple[str, ...]
    parse_token: TokenParser
    revoke: Revoker
    scope_separator: str = " "
    pkce: bool = False
    state_length: int | None = None
    """The provider insists on this many characters of state (WHOOP: 8)."""
    grant_refused: GrantRefusal = oauth_invalid_grant
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    token_params: Mapping[str, str] = field(default_factory=dict)
    refresh_params: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Provider:
    """A provider as this deployment reaches it: its spec, credentials and base URL."""

    spec: ProviderSpec
    credentials: Credentials
    base_url: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    def url(self, real_url: str) -> str:
        """The real URL, or in sandbox mode the same path under {base}/{provider}."""
        if self.base_url is None:
            return real_url
        parts = urlsplit(real_url)
        return f"{self.base_url.rstrip('/')}/{self.spec.id}{parts.path}"


def new_state(provider: Provider) -> str:
    if provider.spec.state_length is not None:
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        return "".join(secrets.choice(alphabet) for _ in range(provider.spec.state_length))
    return secrets.token_urlsafe(32)


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    provider: Provider, redirect_uri: str, state: str, code_challenge: str | None
) -> str:
    spec = provider.spec
    params = {
        "response_type": "code",
        "client_id": provider.credentials.client_id,
        "redirect_uri": redirect_uri,
        "scope": spec.scope_separator.join(spec.scopes),
        "state": state,
        **spec.authorize_params,
    }
    if code_challenge is not None:
        params |= {"code_challenge": code_challenge, "code_challenge_method": "S256"}
    return f"{provider.url(spec.authorize_url)}?{urlencode(params)}"


async def exchange_code(
    http: httpx.AsyncClient,
    provider: Provider,
    code: str,
    redirect_uri: str,
    code_verifier: str | None,
) -> TokenSet:
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if code_verifier is not None:
        data["code_verifier"] = code_verifier
    return await _token_call(http, provider, data, previous=None)


async def refresh(http: httpx.AsyncClient, provider: Provider, current: TokenSet) -> TokenSet:
    if current.refresh_token is None:
        raise InvalidGrant("no refresh token was granted")
    data = {
        "grant_type": "refresh_token",
        "refresh_token": current.refresh_token,
        **provider.spec.refresh_params,
    }
    return await _token_call(http, provider, data, previous=current)


async def _token_call(
    http: httpx.AsyncClient, provider: Provider, data: dict[str, str], previous: TokenSet | None
) -> TokenSet:
    body = {
        **provider.spec.token_params,
        **data,
        "client_id": provider.credentials.client_id,
        "client_secret": provider.credentials.client_secret,
    }
    try:
        answer = await http.post(provider.url(provider.spec.token_url), data=body, timeout=15.0)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{provider.id} token endpoint: {type(exc).__name__}") from None
    if answer.status_code >= 500 or answer.status_code == 429:
        raise ProviderUnavailable(f"{provider.id} token endpoint answered {answer.status_code}")
    try:
        document = answer.json()
    except ValueError:
        raise ProviderUnavailable(f"{provider.id} token endpoint sent unreadable JSON") from None
    if answer.status_code >= 400:
        if provider.spec.grant_refused(answer.status_code, document):
            raise InvalidGrant(f"{provider.id}: the grant was refused")
        raise ProviderRefused(f"{provider.id} token endpoint answered {answer.status_code}")
    return provider.spec.parse_token(document, previous, datetime.now(UTC))


def standard_token_answer(document: Any, previous: TokenSet | None, now: datetime) -> TokenSet:
    """RFC 6749 §5.1. A refresh answer without refresh_token or scope keeps the previous ones."""
    try:
        scope = document.get("scope")
        return TokenSet(
            access_token=str(document["access_token"]),
            refresh_token=document.get("refresh_token")
            or (previous.refresh_token if previous else None),
            expires_at=now + timedelta(seconds=int(document.get("expires_in", 3600))),
            scopes=tuple(scope.replace(",", " ").split())
            if isinstance(scope, str)
            else (previous.scopes if previous else ()),
            provider_user_id=previous.provider_user_id if previous else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError):
        raise ProviderUnavailable("token answer without an access token") from None


async def expect_success(answer: httpx.Response, provider: Provider, what: str) -> None:
    if answer.status_code >= 400:
        raise ProviderRefused(f"{provider.id} {what}: {answer.status_code}")
