"""The OAuth dance of every provider, and the quirks each one has."""

import asyncio
import hashlib
import hmac
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.testing import (
    OAUTH,
    PROVIDERS,
    REDIRECT_URI,
    authorize,
    authorize_params,
    client_secret,
    connect,
    redirect_query,
    refresh,
    token_answer,
    token_request,
)

PROBES: dict[str, tuple[str, str, dict[str, str]]] = {
    "oura": ("GET", "/oura/v2/usercollection/daily_activity", {}),
    "whoop": ("GET", "/whoop/developer/v2/cycle", {}),
    "fitbit": ("GET", "/fitbit/v4/users/me/dataTypes/steps/dataPoints", {"pageSize": "5"}),
    "withings": ("POST", "/withings/measure", {"action": "getmeas"}),
    "strava": ("GET", "/strava/api/v3/athlete/activities", {}),
}
ROTATING = ("oura", "whoop", "withings", "strava")


async def probe(client: httpx.AsyncClient, provider: str, token: str) -> httpx.Response:
    method, path, params = PROBES[provider]
    headers = {"authorization": f"Bearer {token}"}
    if method == "POST":
        return await client.post(path, data=params, headers=headers)
    return await client.get(path, params=params, headers=headers)


def succeeded(provider: str, response: httpx.Response) -> bool:
    if provider == "withings":
        return response.status_code == 200 and response.json()["status"] == 0
    return response.status_code == 200


def unauthorized(provider: str, response: httpx.Response) -> bool:
    body = response.json()
    if provider == "withings":
        return (
            response.status_code == 200
            and body["status"] == 401
            and "invalid_token" in body["error"]
        )
    if provider == "fitbit":
        return response.status_code == 401 and body["error"]["status"] == "UNAUTHENTICATED"
    if provider == "strava":
        return response.status_code == 401 and body["errors"][0]["field"] == "access_token"
    return response.status_code == 401


def invalid_grant(provider: str, response: httpx.Response) -> bool:
    body = response.json()
    if provider == "withings":
        return response.status_code == 200 and body["status"] == 503 and "invalid" in body["error"]
    if provider == "strava":
        return response.status_code == 400 and body["message"] == "Bad Request"
    return response.status_code == 400 and body["error"] == "invalid_grant"


async def revoke_at_provider(
    client: httpx.AsyncClient, provider: str, tokens: dict[str, Any]
) -> None:
    access = tokens["access_token"]
    if provider == "oura":
        response = await client.get("/oura/oauth/revoke", params={"access_token": access})
        assert response.status_code == 200
    elif provider == "whoop":
        response = await client.delete(
            "/whoop/developer/v2/user/access", headers={"authorization": f"Bearer {access}"}
        )
        assert response.status_code == 204
    elif provider == "fitbit":
        response = await client.post("/fitbit/revoke", data={"token": tokens["refresh_token"]})
        assert response.status_code == 200
    elif provider == "strava":
        response = await client.post("/strava/oauth/deauthorize", data={"access_token": access})
        assert response.json() == {"access_token": access}
    else:
        await withings_revoke(client, tokens["userid"])


def withings_sign(*values: str) -> str:
    secret = client_secret("withings").encode()
    return hmac.new(secret, ",".join(values).encode(), hashlib.sha256).hexdigest()


async def withings_revoke(client: httpx.AsyncClient, userid: str) -> None:
    """The signed revoke: a nonce from /v2/signature, then action=revoke."""
    timestamp = "1700000000"
    nonce_answer = await client.post(
        "/withings/v2/signature",
        data={
            "action": "getnonce",
            "client_id": "sandbox-withings",
            "timestamp": timestamp,
            "signature": withings_sign("getnonce", "sandbox-withings", timestamp),
        },
    )
    nonce = nonce_answer.json()["body"]["nonce"]
    response = await client.post(
        "/withings/v2/oauth2",
        data={
            "action": "revoke",
            "client_id": "sandbox-withings",
            "nonce": nonce,
            "signature": withings_sign("revoke", "sandbox-withings", nonce),
            "userid": userid,
        },
    )
    assert response.json() == {"status": 0, "body": {}}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_whole_dance(client: httpx.AsyncClient, clock: FakeClock, provider: str) -> None:
    response = await client.get(OAUTH[provider].authorize, params=authorize_params(provider))
    query = redirect_query(response)
    assert response.headers["location"].startswith(REDIRECT_URI + "?")
    assert query["state"] == "st4te-ok"
    tokens = token_answer(
        provider, await token_request(client, provider, "authorization_code", query["code"])
    )
    assert succeeded(provider, await probe(client, provider, tokens["access_token"]))

    clock.advance(tokens["expires_in"] - 600)  # close to expiry: every provider issues anew
    renewed = token_answer(provider, await refresh(client, provider, tokens["refresh_token"]))
    assert renewed["access_token"] != tokens["access_token"]
    assert succeeded(provider, await probe(client, provider, renewed["access_token"]))

    again = await refresh(client, provider, tokens["refresh_token"])
    if provider == "fitbit":  # Google refresh tokens do not rotate
        assert "refresh_token" not in renewed
        assert succeeded(provider, again)
        renewed["refresh_token"] = tokens["refresh_token"]
    else:
        assert renewed["refresh_token"] != tokens["refresh_token"]
        assert invalid_grant(provider, again), again.text

    await revoke_at_provider(client, provider, {**tokens, **renewed})
    assert unauthorized(provider, await probe(client, provider, renewed["access_token"]))
    assert invalid_grant(provider, await refresh(client, provider, renewed["refresh_token"]))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_wrong_client_secret_is_invalid_client(
    client: httpx.AsyncClient, provider: str
) -> None:
    code = await authorize(client, provider, **authorize_params(provider))
    response = await token_request(
        client, provider, "authorization_code", code, client_secret="not-the-secret"
    )
    body = response.json()
    if provider == "withings":
        assert response.status_code == 200 and body["status"] == 503
    elif provider == "strava":
        assert response.status_code == 401 and body["errors"][0]["resource"] == "Application"
    else:
        assert response.status_code == 401 and body["error"] == "invalid_client"


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_unknown_client_is_never_redirected(
    client: httpx.AsyncClient, provider: str
) -> None:
    params = {**authorize_params(provider), "client_id": "someone-else"}
    response = await client.get(OAUTH[provider].authorize, params=params)
    assert response.status_code in (400, 401)
    assert "location" not in response.headers


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_codes_are_single_use_and_bound(client: httpx.AsyncClient, provider: str) -> None:
    code = await authorize(client, provider, **authorize_params(provider))
    if provider != "strava":  # Strava's token request carries no redirect_uri
        wrong = await token_request(
            client, provider, "authorization_code", code, redirect_uri="http://evil.test/cb"
        )
        assert wrong.status_code in (200, 400) and "access_token" not in wrong.text
    first = await token_request(client, provider, "authorization_code", code)
    token_answer(provider, first)
    second = await token_request(client, provider, "authorization_code", code)
    assert invalid_grant(provider, second)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_expired_access_token_is_refused(
    client: httpx.AsyncClient, clock: FakeClock, provider: str
) -> None:
    tokens = await connect(client, provider)
    clock.advance(tokens["expires_in"] + 1)
    assert unauthorized(provider, await probe(client, provider, tokens["access_token"]))


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_revocation_at_the_provider(client: httpx.AsyncClient, provider: str) -> None:
    tokens = await connect(client, provider, user="ada")
    other = await connect(client, provider, user="grace")
    revoked = await client.post("/_control/revoke", json={"provider": provider, "user": "ada"})
    assert revoked.json() == {"revoked_grants": 1}
    assert unauthorized(provider, await probe(client, provider, tokens["access_token"]))
    assert invalid_grant(provider, await refresh(client, provider, tokens["refresh_token"]))
    assert succeeded(provider, await probe(client, provider, other["access_token"]))


NARROW = {  # a scope that does not cover the probe
    "oura": "personal",
    "whoop": "offline read:profile",
    "fitbit": "https://www.googleapis.com/auth/googlehealth.sleep.readonly",
    "withings": "user.activity",
    "strava": "read",
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_call_outside_the_granted_scopes(client: httpx.AsyncClient, provider: str) -> None:
    tokens = await connect(client, provider, scope=NARROW[provider])
    response = await probe(client, provider, tokens["access_token"])
    body = response.json()
    if provider == "withings":
        assert body["status"] == 401 and "insufficient_scope" in body["error"]
    elif provider == "strava":  # Strava answers a missing scope with 401 "missing"
        assert response.status_code == 401
        assert body["errors"][0] == {
            "resource": "AccessToken",
            "field": "activity:read_permission",
            "code": "missing",
        }
    elif provider == "fitbit":
        assert response.status_code == 403
        assert body["error"]["details"][0]["reason"] == "ACCESS_TOKEN_SCOPE_INSUFFICIENT"
    else:
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("provider", "winners"),
    [("oura", 1), ("whoop", 1), ("strava", 1), ("withings", 20), ("fitbit", 20)],
)
async def test_twenty_concurrent_refreshes(
    app: FastAPI, client: httpx.AsyncClient, clock: FakeClock, provider: str, winners: int
) -> None:
    """Single-use refresh tokens: one of 20 racing refreshes wins (Withings' grace lets all
    through until a new access token is used; Google's never rotate)."""
    app.state.ctx.settings.token_latency_s = 0.01
    tokens = await connect(client, provider)
    clock.advance(tokens["expires_in"] - 60)
    answers = await asyncio.gather(
        *(refresh(client, provider, tokens["refresh_token"]) for _ in range(20))
    )
    ok = [a for a in answers if "access_token" in a.text]
    assert len(ok) == winners
    assert all(invalid_grant(provider, a) for a in answers if a not in ok)
    stats = (await client.get("/_control/stats")).json()
    assert stats["token_calls"][provider] == {"authorization_code": 1, "refresh_token": 20}
