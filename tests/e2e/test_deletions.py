"""A record deleted at the provider disappears here: the provider's signed deletion webhook
becomes a tombstone raw event, the normalizer withdraws the record's samples and announces them
as deleted, and no sync is queued for it."""

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from healthmesh.common.events import MetricChanges
from healthmesh.devstack.testing import collect, eventually
from tests.e2e.conftest import Stack, sign_up
from tests.e2e.test_connections import connect, user_id
from tests.e2e.test_sync import sync_jobs, synced

pytestmark = pytest.mark.e2e


def deletion(provider: str, record_id: str) -> dict[str, Any]:
    if provider == "whoop":
        return {"type": "sleep.deleted", "id": record_id}
    return {"data_type": "sleep", "event_type": "delete", "object_id": record_id}


async def sleep_records(stack: Stack, user: str, provider: str) -> list[str]:
    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = await conn.fetch(
            """SELECT DISTINCT source_record_id FROM normalizer.samples
               WHERE user_id = $1::uuid AND source = $2 AND metric = 'sleep_session'
               ORDER BY 1""",
            user,
            provider,
        )
    finally:
        await conn.close()
    return [r[0] for r in rows]


@pytest.mark.parametrize("provider", ["whoop", "oura"])
async def test_a_record_deleted_at_the_provider_is_withdrawn_and_announced(
    client: httpx.AsyncClient, stack: Stack, provider: str
) -> None:
    auth = await sign_up(client)
    me = await user_id(client, auth)
    person = f"deletion-{provider}-{uuid.uuid4().hex[:6]}"
    began = datetime.now(UTC)
    await connect(client, auth, provider, person)
    await synced(client, auth, provider, began)

    async def has_sleep() -> bool:
        return len(await sleep_records(stack, me, provider)) >= 2

    await eventually(has_sleep, timeout=60, what="sleep samples")
    doomed, *kept = await sleep_records(stack, me, provider)
    url = f"{stack.gateway}/v1/webhooks/{provider}"
    async with (
        collect(stack.env["KAFKA_BOOTSTRAP_SERVERS"], stack.topics.metrics_unified) as events,
        httpx.AsyncClient(base_url=stack.simulator, timeout=30) as sim,
    ):
        sent = await sim.post(
            "/_control/webhooks/send",
            json={"provider": provider, "user": person, "url": url, **deletion(provider, doomed)},
        )
        assert sent.status_code == 200, sent.text
        request = sent.json()["requests"][-1]
        assert 200 <= request["status"] < 300, request

        async def withdrawn() -> bool:
            return doomed not in await sleep_records(stack, me, provider)

        await eventually(withdrawn, timeout=60, what="the deleted sleep's samples to go")

        def announced() -> set[str]:
            return {
                c.sample.metric
                for e in events
                if e["user_id"] == me
                for c in MetricChanges.model_validate(e).flat()
                if c.event == "deleted" and c.sample.source_record_id == doomed
            }

        async def all_announced() -> bool:
            return {"sleep_session", "sleep_duration"} <= announced()

        await eventually(all_announced, timeout=30, what="the deletions on metrics.unified")
    left = await sleep_records(stack, me, provider)  # (the backfill may still be adding nights)
    assert doomed not in left and set(kept) <= set(left)
    assert not any(job["reason"] == "webhook" for job in await sync_jobs(stack, me, provider))

    # A forged deletion (the signed body changed) is refused and deletes nothing.
    headers = {
        k: v for k, v in request["headers"].items() if k.lower() not in ("content-length", "host")
    }
    body = request["body"] if isinstance(request["body"], str) else str(request["body"])
    forged = await client.post(url, content=body.replace(doomed, kept[0]), headers=headers)
    assert forged.status_code in (401, 403), forged.text
    assert set(kept) <= set(await sleep_records(stack, me, provider))
