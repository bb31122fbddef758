"""Provider data all the way through: connect, the connectors backfill a month from the provider
simulator, the normalizer maps every raw event (none dead-lettered, no record rejected, every
event archived), rollups follow, and the gateway serves the metrics saying where they came from."""

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest

from healthmesh.devstack.testing import collect, eventually
from tests.e2e.conftest import BACKFILL_DAYS, Stack, sign_up
from tests.e2e.test_connections import connect, user_id
from tests.e2e.test_sync import PROVIDERS, sync_jobs, synced

pytestmark = pytest.mark.e2e

# Metrics the simulator's month of history always yields, per provider.
EXPECTED_METRICS = {
    "oura": {"steps", "active_energy", "readiness", "sleep_session", "heart_rate", "spo2"},
    "whoop": {"strain", "total_energy", "recovery", "hrv_rmssd", "sleep_session"},
    "fitbit": {"steps", "heart_rate", "sleep_session", "body_mass", "resting_heart_rate"},
    "withings": {"body_mass", "steps", "sleep_session", "total_energy"},
    "strava": {"workout"},
}
SERVED = {"oura": "steps", "whoop": "recovery", "fitbit": "steps", "withings": "body_mass"}


async def fetch_set(stack: Stack, query: str, *args: object) -> set[str]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        return {r[0] for r in await conn.fetch(query, *args)}
    finally:
        await conn.close()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_backfill_becomes_unified_metrics_with_nothing_dead_lettered(
    client: httpx.AsyncClient, stack: Stack, provider: str
) -> None:
    auth = await sign_up(client)
    me = await user_id(client, auth)
    began = datetime.now(UTC)
    dlq = stack.topics.dlq(f"raw.{provider}")
    async with collect(stack.env["KAFKA_BOOTSTRAP_SERVERS"], dlq) as dead:
        callback = await connect(client, auth, provider, f"metrics-{provider}")
        assert callback.status_code in (200, 302, 303), callback.text
        await synced(client, auth, provider, began)
        (job,) = await sync_jobs(stack, me, provider)

        async def all_archived() -> bool:
            archived = await fetch_set(
                stack,
                "SELECT raw_event_id::text FROM normalizer.raw_archive WHERE user_id = $1::uuid",
                me,
            )
            return len(archived) >= int(job["events"])

        await eventually(all_archived, timeout=120, what=f"{job['events']} raw events archived")
        await asyncio.sleep(1.0)  # a dead letter is published after its batch commits
    assert [d["reason"] for d in dead if me in d["original"]] == []
    rejected = await fetch_set(
        stack,
        "SELECT record || ': ' || reason FROM normalizer.rejected_records WHERE user_id = $1::uuid",
        me,
    )
    assert rejected == set()
    metrics = await fetch_set(
        stack,
        "SELECT DISTINCT metric FROM normalizer.samples WHERE user_id = $1::uuid AND source = $2",
        me,
        provider,
    )
    assert EXPECTED_METRICS[provider] <= metrics
    rolled = await fetch_set(
        stack, "SELECT DISTINCT metric FROM normalizer.daily_rollups WHERE user_id = $1::uuid", me
    )
    assert rolled == metrics

    metric = SERVED.get(provider)
    if metric is None:
        return
    answer = await client.get(
        f"/v1/metrics/{metric}",
        params={
            "start": (began - timedelta(days=BACKFILL_DAYS)).date().isoformat(),
            "end": (began + timedelta(days=1)).date().isoformat(),
            "resolution": "day",
        },
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    points = answer.json()["points"]
    assert len(points) >= BACKFILL_DAYS // 2
    assert {p["source"] for p in points} == {provider}
