"""Provider syncs end to end: connect through the gateway, the connectors backfill from the
provider simulator onto raw.<provider>, with faults injected, a worker killed, tokens refused,
grants revoked and webhooks sent. Nothing may be lost and nothing published twice."""

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from healthmesh.common.ids import content_hash
from healthmesh.devstack.testing import collect, eventually
from tests.e2e.conftest import BACKFILL_DAYS, WEBHOOK_VERIFY_TOKEN, Stack, sign_up
from tests.e2e.test_connections import connect, stats, user_id

pytestmark = pytest.mark.e2e

PROVIDERS = ("oura", "whoop", "fitbit", "withings", "strava")

# Resources the simulator always has data for in a month of history.
EXPECTED_RESOURCES = {
    "oura": {"daily_activity", "sleep", "daily_sleep", "daily_readiness", "heartrate"},
    "whoop": {"cycle", "recovery", "sleep"},
    "fitbit": {"steps", "sleep", "heart-rate", "weight"},
    "withings": {"measures", "activity", "sleep"},
    "strava": {"activities"},
}


async def connections(client: httpx.AsyncClient, auth: dict[str, str]) -> dict[str, Any]:
    answer = await client.get("/v1/connections", headers=auth)
    assert answer.status_code == 200, answer.text
    return {c["provider"]: c for c in answer.json()}


async def synced(
    client: httpx.AsyncClient, auth: dict[str, str], provider: str, after: datetime
) -> None:
    """Wait until the provider's connection shows a finished sync newer than `after`."""

    async def done() -> bool:
        connection = (await connections(client, auth)).get(provider)
        assert connection is not None
        assert connection["status"] not in ("error", "reauth_required"), connection
        last = connection["last_sync_at"]
        return (
            connection["status"] == "connected"
            and last is not None
            and (datetime.fromisoformat(last) > after)
        )

    await eventually(done, timeout=180, what=f"{provider} sync to finish")


async def sync_jobs(stack: Stack, user: str, provider: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            """SELECT sync_id, reason, status, calls, rate_limited, events, error
               FROM connectors.sync_jobs WHERE user_id = $1::uuid AND provider = $2
               ORDER BY requested_at""",
            user,
            provider,
        )
    finally:
        await conn.close()
    return [dict(r) for r in rows]


async def quiet(stack: Stack) -> None:
    """No sync queued or running anywhere (faults are armed per provider, not per user)."""

    async def idle() -> bool:
        conn = await asyncpg.connect(stack.database_url)
        try:
            return not await conn.fetchval(
                """SELECT count(*) FROM connectors.sync_jobs
                   WHERE status IN ('queued', 'running')"""
            )
        finally:
            await conn.close()

    await eventually(idle, timeout=180, what="every sync to end")


def of_user(events: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    return [e for e in events if e["user_id"] == user]


def settled(events: list[dict[str, Any]], since: datetime) -> set[tuple[str, str]]:
    """(resource, content hash) of events about settled history: more than two days after the
    backfill horizon and over 36 hours old, so two syncs seconds apart must agree on them."""
    first = since - timedelta(days=BACKFILL_DAYS - 2)
    last = since - timedelta(hours=36)
    out = set()
    for event in events:
        start, end = event["window"]["start"], event["window"]["end"]
        if start is None or end is None:
            continue
        if first < datetime.fromisoformat(start) and datetime.fromisoformat(end) < last:
            out.add((event["resource"], content_hash(event["payload"])))
    return out


DATA_PATHS = {
    "oura": "/v2/usercollection",
    "whoop": "/developer",
    "fitbit": "/v4/users",
    "withings": "/v2/measure",
    "strava": "/api/v3",
}
"""Where faults strike: the data API only, not the OAuth pages of the connect dance."""


async def arm(stack: Stack, provider: str, kind: str, count: int) -> None:
    fault = {"provider": provider, "kind": kind, "count": count}
    async with httpx.AsyncClient(base_url=stack.simulator) as sim:
        answer = await sim.post(
            "/_control/faults", json={**fault, "path_prefix": DATA_PATHS[provider]}
        )
        assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_connecting_backfills_every_resource_once_and_a_resync_repeats_the_ids(
    client: httpx.AsyncClient, stack: Stack, provider: str
) -> None:
    auth = await sign_up(client)
    me = await user_id(client, auth)
    began = datetime.now(UTC)
    async with collect(
        stack.env["KAFKA_BOOTSTRAP_SERVERS"], stack.topics.raw(provider)
    ) as published:
        callback = await connect(client, auth, provider, f"backfill-{provider}")
        assert callback.status_code in (200, 302, 303), callback.text
        await synced(client, auth, provider, began)
        (job,) = await sync_jobs(stack, me, provider)
        assert job["reason"] == "connect" and job["status"] == "done"
        assert job["rate_limited"] == 0
        await arrived(published, me, job["events"])
        await asyncio.sleep(1.0)  # and nothing more
        first = of_user(published, me)
        ids = Counter(e["id"] for e in first)
        twice = [(e["resource"], e["window"]) for e in first if ids[e["id"]] > 1]
        assert not twice, f"published twice: {twice[:4]}"
        assert len(first) == job["events"]
        assert EXPECTED_RESOURCES[provider] <= {e["resource"] for e in first}
        assert all(e["source"] == provider and e["schema"] == "raw.v1" for e in first)

        # A manual re-sync of the whole month: settled data comes back with the same ids.
        again = datetime.now(UTC)
        answer = await client.post(
            f"/v1/connections/{provider}/sync",
            json={"start": (began - timedelta(days=BACKFILL_DAYS)).isoformat()},
            headers=auth,
        )
        assert answer.status_code == 202, answer.text
        sync_id = answer.json()["sync_id"]
        await synced(client, auth, provider, again)
        status = await client.get(f"/v1/connections/{provider}/syncs/{sync_id}", headers=auth)
        assert status.status_code == 200 and status.json()["status"] == "done", status.text
        await arrived(published, me, len(first) + status.json()["events"])
        second = of_user(published, me)[len(first) :]
    assert settled(second, began) == settled(first, began) != set()
    first_ids = {e["id"] for e in first}
    settled_second = settled(second, began)
    assert {
        e["id"] for e in second if (e["resource"], content_hash(e["payload"])) in settled_second
    } <= first_ids


async def counted(stack: Stack, user: str, provider: str) -> int:
    """Events the user's syncs recorded as published (a killed worker's last window may have
    published more, never fewer)."""
    return sum(job["events"] for job in await sync_jobs(stack, user, provider))


async def arrived(published: list[dict[str, Any]], user: str, count: int) -> None:
    """Wait until the test's consumer has read `count` of the user's events."""

    async def enough() -> bool:
        return len(of_user(published, user)) >= count

    await eventually(enough, timeout=60, what=f"{count} raw events")


FAULTS = {
    "oura": [
        ("status_500", 2),
        ("malformed_json", 2),
        ("timeout", 1),
        ("rate_limit", 1),
        ("unauthorized", 1),
    ],
    "whoop": [("status_503", 2), ("malformed_json", 1), ("timeout", 1), ("unauthorized", 1)],
    "fitbit": [("status_500", 1), ("malformed_json", 2), ("rate_limit", 2), ("unauthorized", 1)],
    "withings": [("status_503", 2), ("malformed_json", 1), ("rate_limit", 1), ("timeout", 1)],
    "strava": [("status_500", 2), ("malformed_json", 1), ("timeout", 1), ("unauthorized", 1)],
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_faults_lose_nothing_and_publish_nothing_twice(
    client: httpx.AsyncClient, stack: Stack, provider: str
) -> None:
    """The same simulated person connected twice: once cleanly, once through 5xx, malformed
    pages, timeouts, 429s and a refused token. Both see exactly the same settled data."""
    person = f"faults-{provider}-{uuid.uuid4().hex[:6]}"
    clean, faulty = await sign_up(client), await sign_up(client)
    clean_id, faulty_id = await user_id(client, clean), await user_id(client, faulty)
    began = datetime.now(UTC)
    async with collect(
        stack.env["KAFKA_BOOTSTRAP_SERVERS"], stack.topics.raw(provider)
    ) as published:
        await connect(client, clean, provider, person)
        await synced(client, clean, provider, began)
        await quiet(stack)
        before = await stats(stack)
        for kind, count in FAULTS[provider]:
            await arm(stack, provider, kind, count)
        await connect(client, faulty, provider, person)
        await synced(client, faulty, provider, began)
        await quiet(stack)
        for who in (clean_id, faulty_id):
            await arrived(published, who, await counted(stack, who, provider))
        after = await stats(stack)
        async with httpx.AsyncClient(base_url=stack.simulator) as sim:
            assert (await sim.get("/_control/faults")).json()["armed"] == []
        clean_events, faulty_events = of_user(published, clean_id), of_user(published, faulty_id)
    assert after["faults"][provider] - before["faults"].get(provider, 0) == sum(
        count for _, count in FAULTS[provider]
    )
    faulty_ids = Counter(e["id"] for e in faulty_events)
    assert faulty_ids.most_common(1)[0][1] == 1, "an event was published twice"
    assert settled(faulty_events, began) == settled(clean_events, began) != set()


async def test_a_refused_token_is_refreshed_once_and_a_revoked_grant_needs_reauth(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    me = await user_id(client, auth)
    person = f"revoked-{uuid.uuid4().hex[:6]}"
    began = datetime.now(UTC)
    await connect(client, auth, "oura", person)
    await synced(client, auth, "oura", began)
    await quiet(stack)

    refreshes = (await stats(stack))["token_calls"]["oura"].get("refresh_token", 0)
    await arm(stack, "oura", "unauthorized", 1)
    again = datetime.now(UTC)
    assert (await client.post("/v1/connections/oura/sync", headers=auth)).status_code == 202
    await synced(client, auth, "oura", again)
    assert (await stats(stack))["token_calls"]["oura"].get("refresh_token", 0) == refreshes + 1

    async with httpx.AsyncClient(base_url=stack.simulator) as sim:
        await sim.post("/_control/revoke", json={"provider": "oura", "user": person})
    calls_before = (await stats(stack))["calls"]["oura"]
    assert (await client.post("/v1/connections/oura/sync", headers=auth)).status_code == 202

    async def needs_reauth() -> bool:
        return bool((await connections(client, auth))["oura"]["status"] == "reauth_required")

    await eventually(needs_reauth, timeout=60, what="reauth_required")
    jobs = await sync_jobs(stack, me, "oura")
    assert jobs[-1]["status"] in ("reauth_required", "cancelled")
    # No retry storm: one refused call, one refused refresh, and then nothing.
    await asyncio.sleep(2.0)
    calls_after = (await stats(stack))["calls"]["oura"]
    assert sum(calls_after.values()) - sum(calls_before.values()) <= 2
    refused = await client.post("/v1/connections/oura/sync", headers=auth)
    assert refused.status_code == 409, refused.text


async def test_a_failing_sync_shows_as_an_error_until_a_sync_succeeds(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    began = datetime.now(UTC)
    await connect(client, auth, "strava", f"failing-{uuid.uuid4().hex[:6]}")
    await synced(client, auth, "strava", began)
    await quiet(stack)
    await arm(stack, "strava", "status_503", 10_000)
    try:
        assert (await client.post("/v1/connections/strava/sync", headers=auth)).status_code == 202

        async def shows_error() -> bool:
            return bool((await connections(client, auth))["strava"]["status"] == "error")

        await eventually(shows_error, timeout=120, what="the error to show")
        failed = (await connections(client, auth))["strava"]
        assert "athlete/activities" in failed.get("last_error", ""), failed
        await quiet(stack)  # every retry spent: nothing more is queued
    finally:
        async with httpx.AsyncClient(base_url=stack.simulator) as sim:
            await sim.delete("/_control/faults")
    again = datetime.now(UTC)
    assert (await client.post("/v1/connections/strava/sync", headers=auth)).status_code == 202
    await synced(client, auth, "strava", again)
    assert (await connections(client, auth))["strava"].get("last_error") is None


async def test_killing_the_connectors_mid_sync_loses_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    """SIGKILL while a sync hangs on provider timeouts; after the restart the job's lease runs
    out, another worker resumes it, and the data equals a clean run's."""
    person = f"killed-{uuid.uuid4().hex[:6]}"
    clean, victim = await sign_up(client), await sign_up(client)
    clean_id, victim_id = await user_id(client, clean), await user_id(client, victim)
    began = datetime.now(UTC)
    async with collect(
        stack.env["KAFKA_BOOTSTRAP_SERVERS"], stack.topics.raw("whoop")
    ) as published:
        await connect(client, clean, "whoop", person)
        await synced(client, clean, "whoop", began)
        await quiet(stack)
        await arm(stack, "whoop", "timeout", 3)
        await connect(client, victim, "whoop", person)

        async def running() -> bool:
            jobs = await sync_jobs(stack, victim_id, "whoop")
            return bool(jobs) and jobs[-1]["status"] == "running"

        await eventually(running, timeout=60, what="the sync to run")
        await asyncio.sleep(1.0)
        stack.services["connectors"].process.kill()
        stack.restart("connectors")
        await synced(client, victim, "whoop", began)
        for who in (clean_id, victim_id):
            await arrived(published, who, await counted(stack, who, "whoop"))
        clean_events, victim_events = of_user(published, clean_id), of_user(published, victim_id)
    assert settled(victim_events, began) == settled(clean_events, began) != set()
    (job,) = await sync_jobs(stack, victim_id, "whoop")
    assert job["status"] == "done"


WEBHOOK_EXTRAS: dict[str, dict[str, Any]] = {
    "oura": {"data_type": "sleep"},
    "whoop": {"type": "recovery.updated"},
    "fitbit": {},
    "withings": {"appli": 1},
    "strava": {},
}


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_verified_webhook_queues_a_sync_and_a_forged_one_is_refused(
    client: httpx.AsyncClient, stack: Stack, provider: str
) -> None:
    auth = await sign_up(client)
    me = await user_id(client, auth)
    person = f"webhook-{provider}-{uuid.uuid4().hex[:6]}"
    began = datetime.now(UTC)
    await connect(client, auth, provider, person)
    await synced(client, auth, provider, began)
    url = f"{stack.gateway}/v1/webhooks/{provider}"
    async with httpx.AsyncClient(base_url=stack.simulator, timeout=30) as sim:
        if provider in ("oura", "strava", "fitbit"):
            handshake = await sim.post(
                "/_control/webhooks/send",
                json={
                    "provider": provider,
                    "user": person,
                    "url": url,
                    "kind": "validation" if provider == "strava" else "verification",
                    "verify_token": WEBHOOK_VERIFY_TOKEN,
                    "verification_token": WEBHOOK_VERIFY_TOKEN,
                },
            )
            assert handshake.status_code == 200, handshake.text
            assert handshake.json()["verified"] is True, handshake.json()
        sent = await sim.post(
            "/_control/webhooks/send",
            json={"provider": provider, "user": person, "url": url, **WEBHOOK_EXTRAS[provider]},
        )
        assert sent.status_code == 200, sent.text
        request = sent.json()["requests"][-1]
        assert 200 <= request["status"] < 300, request

    async def queued() -> bool:
        return any(j["reason"] == "webhook" for j in await sync_jobs(stack, me, provider))

    await eventually(queued, timeout=30, what="a webhook sync")
    if provider in ("oura", "whoop", "fitbit"):  # signed: a changed body must be refused
        headers = {
            k: v
            for k, v in request["headers"].items()
            if k.lower() not in ("content-length", "host")
        }
        body = request["body"] if isinstance(request["body"], str) else str(request["body"])
        forged = await client.post(url, content=body.replace("1", "2"), headers=headers)
        assert forged.status_code in (401, 403), forged.text


async def test_an_unsigned_deauthorization_is_checked_by_a_sync_not_trusted(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    """Strava signs nothing: anyone knowing an athlete id could send a deauthorization. It only
    queues a sync; the grant still works here, so the connection stays connected."""
    auth = await sign_up(client)
    me = await user_id(client, auth)
    person = f"deauth-{uuid.uuid4().hex[:6]}"
    began = datetime.now(UTC)
    await connect(client, auth, "strava", person)
    await synced(client, auth, "strava", began)
    async with httpx.AsyncClient(base_url=stack.simulator, timeout=30) as sim:
        sent = await sim.post(
            "/_control/webhooks/send",
            json={
                "provider": "strava",
                "user": person,
                "url": f"{stack.gateway}/v1/webhooks/strava",
                "object_type": "athlete",
                "aspect_type": "update",
                "updates": {"authorized": "false"},
            },
        )
        assert sent.status_code == 200, sent.text
        assert sent.json()["requests"][-1]["status"] == 200

    async def checked() -> bool:
        jobs = await sync_jobs(stack, me, "strava")
        return bool(jobs[-1]["reason"] == "webhook" and jobs[-1]["status"] == "done")

    await eventually(checked, timeout=60, what="the checking sync")
    assert (await connections(client, auth))["strava"]["status"] == "connected"


async def test_sync_endpoints_refuse_strangers_and_unknown_connections(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    assert (await client.post("/v1/connections/oura/sync")).status_code == 401
    missing = await client.post("/v1/connections/oura/sync", headers=auth)
    assert missing.status_code == 404, missing.text
    bad = await client.post(
        "/v1/connections/oura/sync",
        json={"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        headers=auth,
    )
    assert bad.status_code in (404, 422), bad.text
    other = await client.get(f"/v1/connections/oura/syncs/{uuid.uuid4()}", headers=auth)
    assert other.status_code == 404
    unknown = await client.post("/v1/webhooks/nosuch", content=b"{}")
    assert unknown.status_code == 404
