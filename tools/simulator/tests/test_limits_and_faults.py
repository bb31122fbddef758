"""Rate limits with each provider's real headers and answers; faults injected on demand."""

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI

from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.settings import Settings
from healthmesh.simulator.testing import connect


@pytest.fixture
def settings() -> Settings:
    """Tiny limits, so a handful of calls exhausts them."""
    return Settings(
        days=10,
        oura_limit_5min=3,
        whoop_limit_minute=2,
        strava_read_limit_15min=2,
        withings_limit_minute=1,
        fitbit_limit_user_minute=1,
        fault_timeout_s=0.3,
    )


async def token(client: httpx.AsyncClient, provider: str, user: str = "user-1") -> dict[str, str]:
    tokens = await connect(client, provider, user=user)
    return {"authorization": f"Bearer {tokens['access_token']}"}


async def stats(client: httpx.AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/_control/stats")).json()
    return body


async def test_oura_5000_per_5_minutes(client: httpx.AsyncClient, clock: FakeClock) -> None:
    headers = await token(client, "oura")
    url = "/oura/v2/usercollection/daily_sleep"
    for _ in range(3):
        assert (await client.get(url, headers=headers)).status_code == 200
    limited = await client.get(url, headers=headers)
    assert limited.status_code == 429
    assert limited.json() == {"detail": "Request Rate Limit Exceeded."}
    clock.advance(300)
    assert (await client.get(url, headers=headers)).status_code == 200
    assert (await stats(client))["rate_limited"] == {"oura": 1}


async def test_whoop_headers_on_every_answer(client: httpx.AsyncClient) -> None:
    headers = await token(client, "whoop")
    url = "/whoop/developer/v2/recovery"
    first = await client.get(url, headers=headers)
    assert first.headers["x-ratelimit-limit"] == "2, 2;window=60, 10000;window=86400"
    assert first.headers["x-ratelimit-remaining"] == "1"
    assert 0 < int(first.headers["x-ratelimit-reset"]) <= 60
    second = await client.get(url, headers=headers)
    assert second.headers["x-ratelimit-remaining"] == "0"
    third = await client.get(url, headers=headers)
    assert third.status_code == 429
    assert third.headers["x-ratelimit-remaining"] == "0"


async def test_strava_fifteen_minute_and_daily_usage(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    headers = await token(client, "strava")
    url = "/strava/api/v3/athlete/activities"
    first = await client.get(url, headers=headers)
    assert first.headers["x-ratelimit-limit"] == "200,2000"
    assert first.headers["x-ratelimit-usage"] == "1,1"
    assert first.headers["x-readratelimit-limit"] == "2,1000"
    assert first.headers["x-readratelimit-usage"] == "1,1"
    await client.get(url, headers=headers)
    limited = await client.get(url, headers=headers)
    assert limited.status_code == 429
    assert limited.json()["message"] == "Rate Limit Exceeded"
    assert limited.headers["x-readratelimit-usage"] == "3,3"  # over-limit calls count too
    clock.advance(900)  # the next quarter hour: short window reset, daily kept
    again = await client.get(url, headers=headers)
    assert again.status_code == 200
    assert again.headers["x-readratelimit-usage"] == "1,4"


async def test_withings_says_601_in_a_200(client: httpx.AsyncClient) -> None:
    headers = await token(client, "withings")
    form = {"action": "getmeas"}
    assert (await client.post("/withings/measure", data=form, headers=headers)).json()[
        "status"
    ] == 0
    limited = await client.post("/withings/measure", data=form, headers=headers)
    assert limited.status_code == 200
    assert limited.json()["status"] == 601


async def test_google_per_user_quota(client: httpx.AsyncClient) -> None:
    ada, grace = await token(client, "fitbit", "ada"), await token(client, "fitbit", "grace")
    url = "/fitbit/v4/users/me/dataTypes/weight/dataPoints"
    assert (await client.get(url, headers=ada)).status_code == 200
    limited = await client.get(url, headers=ada)
    assert limited.status_code == 429
    assert limited.json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert (await client.get(url, headers=grace)).status_code == 200


async def arm(client: httpx.AsyncClient, **fault: Any) -> None:
    response = await client.post("/_control/faults", json=fault)
    assert response.status_code == 200, response.text


async def test_status_faults_hit_the_next_n_matching_calls(client: httpx.AsyncClient) -> None:
    headers = await token(client, "fitbit")
    await arm(
        client, provider="fitbit", path_prefix="/fitbit/v4/users/me", kind="status_503", count=2
    )
    url = "/fitbit/v4/users/me/dataTypes/steps/dataPoints"
    for _ in range(2):
        failed = await client.get(url, headers=headers)
        assert failed.status_code == 503
        assert failed.json()["error"]["status"] == "UNAVAILABLE"
    assert (await client.get(url, headers=headers)).status_code == 200
    assert (await client.get("/_control/faults")).json() == {"armed": []}


async def test_faults_respect_the_path_prefix(client: httpx.AsyncClient) -> None:
    await arm(
        client, provider="oura", path_prefix="/v2/usercollection/sleep", kind="status_500", count=1
    )
    headers = await token(client, "oura")  # the token endpoint is not under the prefix
    other = await client.get("/oura/v2/usercollection/daily_sleep", headers=headers)
    assert other.status_code == 200
    assert (await client.get("/oura/v2/usercollection/sleep", headers=headers)).status_code == 500


async def test_a_fault_on_the_token_endpoint(client: httpx.AsyncClient) -> None:
    await arm(
        client, provider="whoop", path_prefix="/oauth/oauth2/token", kind="status_500", count=1
    )
    with pytest.raises(AssertionError):
        await connect(client, "whoop")
    assert await connect(client, "whoop")


async def test_timeout_hangs_then_answers_504(client: httpx.AsyncClient) -> None:
    headers = await token(client, "strava")
    await arm(client, provider="strava", kind="timeout", count=2)
    url = "/strava/api/v3/athlete"
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(client.get(url, headers=headers), timeout=0.1)
    late = await client.get(url, headers=headers)
    assert late.status_code == 504


async def test_malformed_json(client: httpx.AsyncClient) -> None:
    headers = await token(client, "whoop")
    await arm(client, provider="whoop", path_prefix="/developer", kind="malformed_json", count=1)
    response = await client.get("/whoop/developer/v2/cycle", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(response.content)


async def test_injected_rate_limit_and_unauthorized(client: httpx.AsyncClient) -> None:
    headers = await token(client, "strava")
    await arm(client, provider="strava", path_prefix="/api/v3", kind="rate_limit", count=1)
    await arm(client, provider="strava", path_prefix="/api/v3", kind="unauthorized", count=1)
    limited = await client.get("/strava/api/v3/athlete", headers=headers)
    assert limited.status_code == 429
    assert limited.headers["x-ratelimit-usage"] == limited.headers["x-ratelimit-limit"]
    refused = await client.get("/strava/api/v3/athlete", headers=headers)
    assert refused.status_code == 401
    assert refused.json()["message"] == "Authorization Error"
    assert (await client.get("/strava/api/v3/athlete", headers=headers)).status_code == 200


async def test_stats_and_reset(app: FastAPI, client: httpx.AsyncClient) -> None:
    headers = await token(client, "oura")
    await client.get("/oura/v2/usercollection/daily_sleep", headers=headers)
    await arm(client, provider="oura", kind="status_500", count=1)
    await client.get("/oura/v2/usercollection/sleep", headers=headers)
    body = await stats(client)
    assert body["calls"]["oura"] == {
        "/oauth/authorize": 1,
        "/oauth/token": 1,
        "/v2/usercollection/daily_sleep": 1,
        "/v2/usercollection/sleep": 1,
    }
    assert body["token_calls"] == {"oura": {"authorization_code": 1}}
    assert body["faults"] == {"oura": 1}
    await client.post("/_control/reset")
    assert await stats(client) == {
        "calls": {},
        "token_calls": {},
        "rate_limited": {},
        "faults": {},
        "webhooks": {},
    }
    gone = await client.get("/oura/v2/usercollection/daily_sleep", headers=headers)
    assert gone.status_code == 401  # reset forgets every token
