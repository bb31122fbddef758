"""Connecting providers through the real OAuth redirect dance, against the provider simulator:
gateway → auth → simulator → callback → sealed tokens → event on the broker; then refresh
races across two auth processes, reauth, disconnect, key rotation, and every refusal."""

import asyncio
import subprocess
import sys
from datetime import date, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import asyncpg
import httpx
import pytest

from healthmesh.auth.crypto import generate_key
from healthmesh.auth.settings import DEV_TOKEN_KEYS
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.stack import start_service, wait_ready
from healthmesh.devstack.testing import collect, eventually
from tests.e2e.conftest import Stack, sign_up

pytestmark = pytest.mark.e2e

PROVIDERS = ("oura", "whoop", "fitbit", "withings", "strava")
INTERNAL = {"authorization": "Bearer dev-internal-token"}


def data_request(provider: str) -> tuple[str, str, dict[str, str]]:
    """(method, path under the simulator, params) of one data call each provider serves."""
    end = date.today()
    start = end - timedelta(days=3)
    return {
        "oura": (
            "GET",
            "/oura/v2/usercollection/daily_activity",
            {"start_date": start.isoformat(), "end_date": end.isoformat()},
        ),
        "whoop": ("GET", "/whoop/developer/v2/cycle", {"limit": "5"}),
        "fitbit": ("GET", "/fitbit/v4/users/me/dataTypes/steps/dataPoints", {"pageSize": "5"}),
        "withings": ("GET", "/withings/measure", {"action": "getmeas"}),
        "strava": ("GET", "/strava/api/v3/athlete/activities", {"per_page": "5"}),
    }[provider]


async def token_works(stack: Stack, provider: str, access_token: str) -> bool:
    method, path, params = data_request(provider)
    async with httpx.AsyncClient(base_url=stack.simulator, timeout=30) as sim:
        answer = await sim.request(
            method, path, params=params, headers={"authorization": f"Bearer {access_token}"}
        )
    if provider == "withings":  # errors come as HTTP 200 with a status in the body
        return answer.status_code == 200 and answer.json().get("status") == 0
    return answer.status_code == 200


async def connect(
    client: httpx.AsyncClient, auth: dict[str, str], provider: str, sim_user: str
) -> httpx.Response:
    """Walk the dance as a browser would; return the callback's answer."""
    started = await client.post(f"/v1/connections/{provider}", headers=auth)
    assert started.status_code == 200, started.text
    authorize = started.json()["authorize_url"]
    async with httpx.AsyncClient(timeout=30) as browser:
        approved = await browser.get(f"{authorize}&{urlencode({'sim_user': sim_user})}")
    assert approved.status_code in (302, 303), approved.text
    location = approved.headers["location"]
    assert location.startswith(
        f"{client.base_url}/v1/oauth/{provider}/callback".replace("//v1", "/v1")
    )
    callback = urlsplit(location)
    return await client.get(callback.path, params=parse_qs(callback.query))


async def stats(stack: Stack) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.simulator) as sim:
        return dict((await sim.get("/_control/stats")).json())


async def internal_token(
    client: httpx.AsyncClient, auth_url: str, provider: str, user: str
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=auth_url, timeout=60) as auth_client:
        return await auth_client.post(
            f"/internal/v1/connections/{provider}/{user}/token", headers=INTERNAL
        )


async def user_id(client: httpx.AsyncClient, auth: dict[str, str]) -> str:
    return str((await client.get("/v1/me", headers=auth)).json()["id"])


async def make_expiring(stack: Stack, user: str, provider: str) -> None:
    """As if time passed: the stored access token is within the refresh margin."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "UPDATE auth.connections SET expires_at = now() + interval '30 seconds' "
            "WHERE user_id = $1::uuid AND provider = $2",
            user,
            provider,
        )
    finally:
        await conn.close()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_the_full_dance_stores_a_working_token_and_announces_it(
    client: httpx.AsyncClient, stack: Stack, provider: str
) -> None:
    auth = await sign_up(client)
    user = await user_id(client, auth)
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    async with collect(bootstrap, stack.topics.connections_changed) as events:
        done = await connect(client, auth, provider, f"{provider}-{user[:8]}")
        assert done.status_code == 200, done.text
        assert done.json() == {"provider": provider, "status": "connected"}
        await eventually(
            lambda: _any(events, user, "connection.connected"), what="connection.connected"
        )
    listed = (await client.get("/v1/connections", headers=auth)).json()
    assert [c["provider"] for c in listed] == [provider]
    assert listed[0]["status"] in ("connected", "syncing")  # the first backfill may be running
    assert "token" not in str(listed).replace("refresh_at", "")

    token = await internal_token(client, stack.services["auth"].url, provider, user)
    assert token.status_code == 200, token.text
    assert await token_works(stack, provider, token.json()["access_token"])

    conn = await asyncpg.connect(stack.database_url)
    try:
        row = await conn.fetchrow(
            "SELECT access_token, access_token_kid FROM auth.connections "
            "WHERE user_id = $1::uuid AND provider = $2",
            user,
            provider,
        )
    finally:
        await conn.close()
    assert token.json()["access_token"].encode() not in row["access_token"]
    assert row["access_token_kid"] == "dev-1"

    async with collect(bootstrap, stack.topics.connections_changed) as events:
        gone = await client.delete(f"/v1/connections/{provider}", headers=auth)
        assert gone.status_code == 204, gone.text
        await eventually(lambda: _any(events, user, "connection.disconnected"), what="disconnected")
    assert (await client.get("/v1/connections", headers=auth)).json() == []
    assert not await token_works(stack, provider, token.json()["access_token"])


async def test_a_replayed_expired_or_foreign_state_is_refused(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    alice, bob = await sign_up(client), await sign_up(client)
    started = await client.post("/v1/connections/oura", headers=alice)
    authorize = started.json()["authorize_url"]
    async with httpx.AsyncClient(timeout=30) as browser:
        approved = await browser.get(authorize)
    callback = urlsplit(approved.headers["location"])
    params = parse_qs(callback.query)

    foreign = await client.get(callback.path, params=params, headers=bob)
    assert foreign.status_code == 400 and foreign.json()["error"]["code"] == "invalid_state"
    replay = await client.get(callback.path, params=params, headers=alice)
    assert replay.status_code == 400 and replay.json()["error"]["code"] == "invalid_state"

    started = await client.post("/v1/connections/oura", headers=alice)
    state = parse_qs(urlsplit(started.json()["authorize_url"]).query)["state"][0]
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "UPDATE auth.oauth_states SET expires_at = now() - interval '1 second' "
            "WHERE state = $1",
            state,
        )
    finally:
        await conn.close()
    expired = await client.get(callback.path, params={"state": state, "code": "x"})
    assert expired.status_code == 400 and expired.json()["error"]["code"] == "invalid_state"

    started = await client.post("/v1/connections/oura", headers=alice)
    state = parse_qs(urlsplit(started.json()["authorize_url"]).query)["state"][0]
    denied = await client.get(callback.path, params={"state": state, "error": "access_denied"})
    assert denied.status_code == 400 and denied.json()["error"]["code"] == "access_denied"

    wrong_provider = await client.get(
        "/v1/oauth/whoop/callback", params={"state": state, "code": "x"}
    )
    assert wrong_provider.status_code == 400


async def test_refusals_and_isolation(client: httpx.AsyncClient) -> None:
    alice, bob = await sign_up(client), await sign_up(client)
    assert (await client.post("/v1/connections/oura")).status_code == 401
    unknown = await client.post("/v1/connections/garmin", headers=alice)
    assert unknown.status_code == 404 and "garmin" in unknown.json()["error"]["message"]
    done = await connect(client, alice, "strava", "isolation")
    assert done.status_code == 200
    assert (await client.get("/v1/connections", headers=bob)).json() == []
    assert (await client.delete("/v1/connections/strava", headers=bob)).status_code == 404
    assert len((await client.get("/v1/connections", headers=alice)).json()) == 1


async def test_the_internal_token_endpoint_wants_the_service_secret(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    user = await user_id(client, auth)
    async with httpx.AsyncClient(base_url=stack.services["auth"].url) as auth_client:
        for headers in ({}, {"authorization": "Bearer guess"}, auth):
            answer = await auth_client.post(
                f"/internal/v1/connections/oura/{user}/token", headers=headers
            )
            assert answer.status_code == 401
    assert (await client.post(f"/internal/v1/connections/oura/{user}/token")).status_code == 404


async def test_twenty_concurrent_requests_across_two_auth_processes_refresh_once(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    user = await user_id(client, auth)
    assert (await connect(client, auth, "whoop", f"race-{user[:8]}")).status_code == 200
    second = start_service("auth", stack.env, free_port(), stack.data_dir / "logs-auth2")
    try:
        wait_ready(second)
        await make_expiring(stack, user, "whoop")
        before = (await stats(stack))["token_calls"].get("whoop", {}).get("refresh_token", 0)
        urls = [stack.services["auth"].url, second.url] * 10
        answers = await asyncio.gather(
            *(internal_token(client, url, "whoop", user) for url in urls)
        )
        assert [a.status_code for a in answers] == [200] * 20, [a.text for a in answers]
        after = (await stats(stack))["token_calls"]["whoop"]["refresh_token"]
        assert after - before == 1
        tokens = {a.json()["access_token"] for a in answers}
        assert len(tokens) == 1
        assert await token_works(stack, "whoop", tokens.pop())
    finally:
        second.process.stop()


async def test_a_revoked_grant_needs_reauth_without_a_retry_storm(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    user = await user_id(client, auth)
    sim_user = f"revoked-{user[:8]}"
    assert (await connect(client, auth, "oura", sim_user)).status_code == 200
    async with httpx.AsyncClient(base_url=stack.simulator) as sim:
        revoked = await sim.post("/_control/revoke", json={"provider": "oura", "user": sim_user})
        assert revoked.status_code < 300, revoked.text
    await make_expiring(stack, user, "oura")
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    async with collect(bootstrap, stack.topics.connections_changed) as events:
        first = await internal_token(client, stack.services["auth"].url, "oura", user)
        assert first.status_code == 409 and first.json()["error"]["code"] == "reauth_required"
        await eventually(
            lambda: _any(events, user, "connection.reauth_required"), what="reauth_required"
        )
    calls = (await stats(stack))["token_calls"]["oura"].get("refresh_token", 0)
    again = await internal_token(client, stack.services["auth"].url, "oura", user)
    assert again.status_code == 409
    assert (await stats(stack))["token_calls"]["oura"].get("refresh_token", 0) == calls
    listed = (await client.get("/v1/connections", headers=auth)).json()
    assert listed[0]["status"] == "reauth_required"
    assert (await connect(client, auth, "oura", sim_user)).status_code == 200
    listed = (await client.get("/v1/connections", headers=auth)).json()
    assert listed[0]["status"] in ("connected", "syncing")  # the old failure is history


async def test_key_rotation_and_reencryption_keep_every_token_readable(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    user = await user_id(client, auth)
    assert (await connect(client, auth, "strava", f"rot-{user[:8]}")).status_code == 200
    new_key = f"k2:{generate_key()}"
    rotated = {
        **stack.env,
        "HEALTHMESH_TOKEN_KEYS": f"{DEV_TOKEN_KEYS},{new_key}",
        "HEALTHMESH_TOKEN_ACTIVE_KEY": "k2",
    }
    try:
        reencrypt(rotated)
        conn = await asyncpg.connect(stack.database_url)
        try:
            kids = await conn.fetch(
                "SELECT DISTINCT access_token_kid AS kid FROM auth.connections "
                "UNION SELECT DISTINCT refresh_token_kid FROM auth.connections "
                "WHERE refresh_token_kid IS NOT NULL"
            )
        finally:
            await conn.close()
        assert {r["kid"] for r in kids} == {"k2"}
        only_new = {**rotated, "HEALTHMESH_TOKEN_KEYS": new_key}
        auth_new = start_service("auth", only_new, free_port(), stack.data_dir / "logs-auth-k2")
        try:
            wait_ready(auth_new)
            token = await internal_token(client, auth_new.url, "strava", user)
            assert token.status_code == 200, token.text
            assert await token_works(stack, "strava", token.json()["access_token"])
        finally:
            auth_new.process.stop()
    finally:  # the other tests' auth knows only the development key
        reencrypt({**rotated, "HEALTHMESH_TOKEN_ACTIVE_KEY": "dev-1"})


def reencrypt(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "healthmesh.auth.reencrypt"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "re-encrypted" in result.stdout


async def _any(events: list[dict[str, Any]], user: str, event: str) -> bool:
    return any(e["user_id"] == user and e["event"] == event for e in events)
