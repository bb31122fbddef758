"""Fitbit, reached through the Google Health API v4 with Google OAuth 2.0: PKCE, offline access
for a refresh token (sent only with prompt=consent), refresh tokens that do not rotate."""

import httpx

from healthmesh.auth.oauth import Provider, ProviderSpec, TokenSet, standard_token_answer

_SCOPE = "https://www.googleapis.com/auth/googlehealth."


async def _revoke(http: httpx.AsyncClient, provider: Provider, tokens: TokenSet) -> None:
    answer = await http.post(
        provider.url(provider.spec.revoke_url),
        data={"token": tokens.refresh_token or tokens.access_token},
        timeout=10.0,
    )
    answer.raise_for_status()


SPEC = ProviderSpec(
    id="fitbit",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",
    revoke_url="https://oauth2.googleapis.com/revoke",
    scopes=tuple(
        f"{_SCOPE}{s}.readonly"
        for s in ("activity_and_fitness", "health_metrics_and_measurements", "sleep", "profile")
    ),
    parse_token=standard_token_answer,
    revoke=_revoke,
    pkce=True,
    authorize_params={
        "access_type": "offline",
        "prompt": "consent",
        "include_granted_scopes": "true",
    },
)
