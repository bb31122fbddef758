"""Strava API v3: comma-separated scopes, `expires_at` in epoch seconds, the athlete embedded in
the code-exchange answer (its id is the provider user id), deauthorize with the access token."""

from datetime import UTC, datetime
from typing import Any

import httpx

from healthmesh.auth.oauth import (
    Provider,
    ProviderSpec,
    TokenSet,
    standard_token_answer,
)


def _parse(document: Any, previous: TokenSet | None, now: datetime) -> TokenSet:
    tokens = standard_token_answer(document, previous, now)
    athlete = document.get("athlete") if isinstance(document, dict) else None
    expires_at = document.get("expires_at") if isinstance(document, dict) else None
    return TokenSet(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_at=datetime.fromtimestamp(int(expires_at), UTC)
        if expires_at
        else tokens.expires_at,
        scopes=tokens.scopes or SPEC.scopes,
        provider_user_id=str(athlete["id"])
        if isinstance(athlete, dict) and "id" in athlete
        else tokens.provider_user_id,
    )


def _grant_refused(status: int, document: Any) -> bool:
    """Strava's refusal of a dead code or refresh token: 400 with a resource-level error."""
    errors = document.get("errors") if isinstance(document, dict) else None
    return status in (400, 401) and any(
        isinstance(e, dict) and e.get("resource") in ("RefreshToken", "AuthorizationCode")
        for e in errors or ()
    )


async def _revoke(http: httpx.AsyncClient, provider: Provider, tokens: TokenSet) -> None:
    answer = await http.post(
        provider.url(provider.spec.revoke_url),
        data={"access_token": tokens.access_token},
        timeout=10.0,
    )
    answer.raise_for_status()


SPEC = ProviderSpec(
    id="strava",
    authorize_url="https://www.strava.com/oauth/authorize",
    token_url="https://www.strava.com/oauth/token",
    revoke_url="https://www.strava.com/oauth/deauthorize",
    scopes=("read", "activity:read_all"),
    scope_separator=",",
    parse_token=_parse,
    revoke=_revoke,
    grant_refused=_grant_refused,
    authorize_params={"approval_prompt": "auto"},
)
