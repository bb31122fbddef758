"""Withings: comma-separated scopes; the token endpoint wants `action=requesttoken` and wraps
every answer as `{"status", "body"}` with errors as HTTP 200 and a non-zero status; the userid
must be kept; revocation is a signed request (nonce + HMAC-SHA256 signature)."""

import hashlib
import hmac
import time
from datetime import datetime, timedelta
from typing import Any

import httpx

from healthmesh.auth.oauth import (
    InvalidGrant,
    Provider,
    ProviderRefused,
    ProviderSpec,
    ProviderUnavailable,
    TokenSet,
)

_SIGNATURE_URL = "https://wbsapi.withings.net/v2/signature"  # action=getnonce lives here
_RATE_LIMITED = 601
_INVALID_PARAMS = (503, 401)


def _parse(document: Any, previous: TokenSet | None, now: datetime) -> TokenSet:
    if not isinstance(document, dict):
        raise ProviderUnavailable("withings: unreadable token answer")
    status = document.get("status")
    if status == _RATE_LIMITED:
        raise ProviderUnavailable("withings: rate limited (status 601)")
    if status in _INVALID_PARAMS:  # a spent/expired code or refresh token
        raise InvalidGrant(f"withings: grant refused (status {status})")
    if status != 0:
        raise ProviderRefused(f"withings: token request refused (status {status})")
    body = document.get("body") or {}
    try:
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=str(body["refresh_token"]),
            expires_at=now + timedelta(seconds=int(body.get("expires_in", 10800))),
            scopes=tuple(str(body.get("scope", "")).replace(",", " ").split()),
            provider_user_id=str(body["userid"]) if "userid" in body else None,
        )
    except (KeyError, TypeError, ValueError):
        raise ProviderUnavailable("withings: token answer without tokens") from None


def sign(secret: str, *values: str) -> str:
    """Withings request signature: HMAC-SHA256 of the values joined by commas."""
    return hmac.new(secret.encode(), ",".join(values).encode(), hashlib.sha256).hexdigest()


async def _revoke(http: httpx.AsyncClient, provider: Provider, tokens: TokenSet) -> None:
    url = provider.url(provider.spec.revoke_url)
    nonce_url = provider.url(_SIGNATURE_URL)
    client_id, secret = provider.credentials.client_id, provider.credentials.client_secret
    timestamp = str(int(time.time()))
    answer = await http.post(
        nonce_url,
        data={
            "action": "getnonce",
            "client_id": client_id,
            "timestamp": timestamp,
            "signature": sign(secret, "getnonce", client_id, timestamp),
        },
        timeout=10.0,
    )
    answer.raise_for_status()
    nonce = str((answer.json().get("body") or {}).get("nonce", ""))
    if not nonce:
        raise ProviderRefused("withings: no nonce for revocation")
    answer = await http.post(
        url,
        data={
            "action": "revoke",
            "client_id": client_id,
            "nonce": nonce,
            "signature": sign(secret, "revoke", client_id, nonce),
            "userid": tokens.provider_user_id or "",
        },
        timeout=10.0,
    )
    answer.raise_for_status()
    if answer.json().get("status") != 0:
        raise ProviderRefused(f"withings: revoke refused (status {answer.json().get('status')})")


SPEC = ProviderSpec(
    id="withings",
    authorize_url="https://account.withings.com/oauth2_user/authorize2",
    token_url="https://wbsapi.withings.net/v2/oauth2",
    revoke_url="https://wbsapi.withings.net/v2/oauth2",
    scopes=("user.info", "user.metrics", "user.activity"),
    scope_separator=",",
    parse_token=_parse,
    revoke=_revoke,
    token_params={"action": "requesttoken"},
)
