"""WHOOP API v2: `offline` scope for a refresh token, state of exactly 8 characters, refresh
tokens single-use (a concurrent second refresh fails), revoke with the user's bearer token."""

import httpx

from healthmesh.auth.oauth import Provider, ProviderSpec, TokenSet, standard_token_answer


async def _revoke(http: httpx.AsyncClient, provider: Provider, tokens: TokenSet) -> None:
    answer = await http.delete(
        provider.url(provider.spec.revoke_url),
        headers={"Authorization": f"Bearer {tokens.access_token}"},
        timeout=10.0,
    )
    answer.raise_for_status()


SPEC = ProviderSpec(
    id="whoop",
    authorize_url="https://api.prod.whoop.com/oauth/oauth2/auth",
    token_url="https://api.prod.whoop.com/oauth/oauth2/token",
    revoke_url="https://api.prod.whoop.com/developer/v2/user/access",
    scopes=(
        "offline",
        "read:recovery",
        "read:cycles",
        "read:workout",
        "read:sleep",
        "read:profile",
        "read:body_measurement",
    ),
    parse_token=standard_token_answer,
    revoke=_revoke,
    state_length=8,
    refresh_params={"scope": "offline"},
)
