"""The client side of each provider's OAuth dance against the simulator, for tests.

`await connect(client, "oura")` runs authorize -> redirect -> token exchange and returns the
token answer (Withings' `body` unwrapped). Tests of other services may use it to obtain tokens
without re-implementing five OAuth clients.
"""

import base64
import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

REDIRECT_URI = "http://app.test/callback"


@dataclass(frozen=True)
class OAuthPaths:
    authorize: str
    token: str
    scopes: str  # everything the simulator serves, in the provider's own separator


OAUTH = {
    "oura": OAuthPaths(
        "/oura/oauth/authorize",
        "/oura/oauth/token",
        "email personal daily heartrate workout spo2Daily",
    ),
    "whoop": OAuthPaths(
        "/whoop/oauth/oauth2/auth",
        "/whoop/oauth/oauth2/token",
        "offline read:recovery read:cycles read:workout read:sleep read:profile "
        "read:body_measurement",
    ),
    "fitbit": OAuthPaths(
        "/fitbit/o/oauth2/v2/auth",
        "/fitbit/token",
        " ".join(
            f"https://www.googleapis.com/auth/googlehealth.{s}.readonly"
            for s in (
                "activity_and_fitness",
                "health_metrics_and_measurements",
                "sleep",
                "profile",
                "settings",
            )
        ),
    ),
    "withings": OAuthPaths(
        "/withings/oauth2_user/authorize2",
        "/withings/v2/oauth2",
        "user.info,user.metrics,user.activity",
    ),
    "strava": OAuthPaths(
        "/strava/oauth/authorize",
        "/strava/oauth/token",
        "read,profile:read_all,activity:read_all",
    ),
}
PROVIDERS = tuple(OAUTH)


def client_id(provider: str) -> str:
    return f"sandbox-{provider}"


def client_secret(provider: str) -> str:
    return f"sandbox-secret-{provider}"


def pkce_pair(verifier: str = "a" * 43 + "-verifier") -> tuple[str, str]:
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_params(
    provider: str, *, user: str | None = None, scope: str | None = None, state: str = "st4te-ok"
) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id(provider),
        "redirect_uri": REDIRECT_URI,
        "scope": OAUTH[provider].scopes if scope is None else scope,
        "state": state,
    }
    if provider == "fitbit":
        params.update(access_type="offline", prompt="consent")
    if user is not None:
        params["sim_user"] = user
    return params


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The query of a 302 back to the app."""
    assert response.status_code == 302, (response.status_code, response.text)
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def authorize(client: httpx.AsyncClient, provider: str, **params: str) -> str:
    """Run the consent step; return the code."""
    response = await client.get(OAUTH[provider].authorize, params=params)
    return redirect_query(response)["code"]


def token_form(provider: str, grant_type: str, value: str, **extra: str) -> dict[str, str]:
    form = {
        "grant_type": grant_type,
        "client_id": client_id(provider),
        "client_secret": client_secret(provider),
        **extra,
    }
    if grant_type == "authorization_code":
        form["code"] = value
        form.setdefault("redirect_uri", REDIRECT_URI)
    else:
        form["refresh_token"] = value
    if provider == "withings":
        form["action"] = "requesttoken"
    return form


async def token_request(
    client: httpx.AsyncClient, provider: str, grant_type: str, value: str, **extra: str
) -> httpx.Response:
    form = token_form(provider, grant_type, value, **extra)
    return await client.post(OAUTH[provider].token, data=form)


def token_answer(provider: str, response: httpx.Response) -> dict[str, Any]:
    """The token answer, or an AssertionError carrying the refusal."""
    body: dict[str, Any] = response.json()
    if provider == "withings":
        assert body["status"] == 0, body
        inner: dict[str, Any] = body["body"]
        return inner
    assert response.status_code == 200, body
    return body


async def connect(
    client: httpx.AsyncClient,
    provider: str,
    *,
    user: str | None = None,
    scope: str | None = None,
) -> dict[str, Any]:
    """The whole dance for `user`; the token answer."""
    state = "st4te-ok"
    code = await authorize(
        client, provider, **authorize_params(provider, user=user, scope=scope, state=state)
    )
    response = await token_request(client, provider, "authorization_code", code)
    return token_answer(provider, response)


async def refresh(client: httpx.AsyncClient, provider: str, refresh_token: str) -> httpx.Response:
    extra = {"scope": "offline"} if provider == "whoop" else {}
    return await token_request(client, provider, "refresh_token", refresh_token, **extra)
