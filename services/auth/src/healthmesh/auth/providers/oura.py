"""Oura API v2: credentials in the body, rotating refresh tokens, revoke by query string."""

import httpx

from healthmesh.auth.oauth import Provider, ProviderSpec, TokenSet, standard_token_answer


async def _revoke(http: httpx.AsyncClient, provider: Provider, tokens: TokenSet) -> None:
    answer = await http.get(
        provider.url(provider.spec.revoke_url),
        params={"access_token": tokens.access_token},
        timeout=10.0,
    )
    answer.raise_for_status()


SPEC = ProviderSpec(
    id="oura",
    authorize_url="https://cloud.ouraring.com/oauth/authorize",
    token_url="https://api.ouraring.com/oauth/token",
    revoke_url="https://api.ouraring.com/oauth/revoke",
    scopes=("email", "personal", "daily", "heartrate", "workout", "session", "spo2Daily"),
    parse_token=standard_token_answer,
    revoke=_revoke,
)
