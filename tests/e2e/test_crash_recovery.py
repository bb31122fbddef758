"""SIGKILL the normalizer while a large CSV flows; after a restart every row is there once."""

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from healthmesh.common.events import MetricChanges
from healthmesh.devstack.testing import collect
from tests.e2e.conftest import Stack, sign_up, wait_until_finished
from tests.e2e.test_thin_path import upload

pytestmark = pytest.mark.e2e

ROWS = 40_000


def hourly_steps_csv(rows: int) -> bytes:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    lines = ["Time,Steps"]
    lines += [f"{(start + timedelta(hours=i)).isoformat()},{i % 997}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


async def committed_batches(database_url: str, import_id: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM normalizer.import_batches WHERE import_id = $1::uuid",
                import_id,
            )
        )
    finally:
        await conn.close()


def changes_of(events: list[dict[str, Any]], user: str) -> list[dict[str, Any]]:
    """The user's sample changes carried by metrics.unified messages."""
    return [
        c.model_dump(mode="json")
        for e in events
        if e["user_id"] == user
        for c in MetricChanges.model_validate(e).flat()
    ]


async def test_a_killed_normalizer_loses_nothing_and_doubles_nothing(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    mapping = {"timestamp": "Time", "columns": {"Steps": {"metric": "steps", "unit": "count"}}}
    bootstrap = stack.env["KAFKA_BOOTSTRAP_SERVERS"]
    async with collect(bootstrap, stack.topics.metrics_unified) as events:
        accepted = await upload(client, auth, hourly_steps_csv(ROWS), mapping=mapping)
        assert accepted.status_code == 202, accepted.text
        import_id = accepted.json()["id"]
        total_batches = ROWS // 500

        deadline = time.monotonic() + 120
        while (done := await committed_batches(stack.database_url, import_id)) < 3:
            assert time.monotonic() < deadline, "the normalizer never started committing"
            await asyncio.sleep(0.05)
        assert done < total_batches, "the import finished before the kill; make it larger"
        stack.services["normalizer"].process.kill()
        stack.restart("normalizer")

        finished = await wait_until_finished(client, auth, import_id, timeout=300)
        assert finished["status"] == "done", finished
        assert finished["records_imported"] == ROWS
        assert finished["records_rejected"] == 0

        conn = await asyncpg.connect(stack.database_url)
        try:
            user = (await client.get("/v1/me", headers=auth)).json()["id"]
            count, total = await conn.fetchrow(
                "SELECT count(*), sum(value) FROM normalizer.samples WHERE user_id = $1::uuid", user
            )
            ids = {
                str(r["id"])
                for r in await conn.fetch(
                    "SELECT id FROM normalizer.samples WHERE user_id = $1::uuid", user
                )
            }
            rolled = await conn.fetchval(
                "SELECT sum(total) FROM normalizer.daily_rollups WHERE user_id = $1::uuid", user
            )
        finally:
            await conn.close()
        assert count == ROWS
        assert total == sum(i % 997 for i in range(ROWS))
        assert rolled == total  # the day rollups were kept in step through the kill

        # Every committed sample is announced on metrics.unified (at least once; by id, once).
        deadline = time.monotonic() + 120
        while {c["sample"]["id"] for c in changes_of(events, user)} != ids:
            assert time.monotonic() < deadline, "metrics.unified is missing samples"
            await asyncio.sleep(0.5)
    created = changes_of(events, user)
    assert {e["event"] for e in created} == {"created"}
    assert {e["revision"] for e in created} == {1}
