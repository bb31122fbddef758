"""`preferences.changed`: every committed change of a user's preferences is published, keyed by
the user's id, through the outbox; refused changes and deletions of nothing publish nothing."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import orjson
import pytest
from faststream.kafka import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import make_broker
from healthmesh.common.events import PreferencesChanged
from healthmesh.common.topics import Topics
from healthmesh.devstack.testing import eventually

pytestmark = pytest.mark.integration

TokenFor = Callable[[UUID], str]
Sent = tuple[bytes, dict[str, Any]]


async def published(bootstrap_servers: str, topic: str, expected: int) -> list[Sent]:
    """(key, body) of every message on `topic`, once `expected` arrived and a moment passed in
    which more could have."""
    received: list[Sent] = []
    reader = make_broker(bootstrap_servers, TracerProvider())

    @reader.subscriber(topic, group_id=f"test-{uuid4().hex}", auto_offset_reset="earliest")
    async def _read(msg: KafkaMessage) -> None:
        received.append((msg.raw_message.key, orjson.loads(msg.body)))  # type: ignore[union-attr]

    async def enough() -> bool:
        return len(received) >= expected

    await reader.start()
    try:
        await eventually(enough, timeout=30, what=f"{expected} messages on {topic}")
        await asyncio.sleep(1.5)
    finally:
        await reader.stop()
    return received


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_set_and_deleted_priorities_and_overrides_are_published_in_order(
    client: httpx.AsyncClient, token_for: TokenFor, kafka_bootstrap_servers: str, topics: Topics
) -> None:
    user = uuid4()
    auth = bearer(token_for(user))
    before = datetime.now(UTC)

    # Refused, or changing nothing: no event.
    refused = await client.put(
        "/v1/preferences/sleep", json={"sources": ["strava"], "fallback": True}, headers=auth
    )
    assert refused.status_code == 422
    refused = await client.put(
        "/v1/preferences/overrides/steps", json={"sources": ["strava"]}, headers=auth
    )
    assert refused.status_code == 422
    assert (await client.delete("/v1/preferences/sleep", headers=auth)).status_code == 204
    assert (await client.delete("/v1/preferences/overrides/steps", headers=auth)).status_code == 204

    # Four changes, each one event.
    sleep = {"sources": ["whoop", "oura"], "fallback": False}
    assert (await client.put("/v1/preferences/sleep", json=sleep, headers=auth)).status_code == 200
    steps = {"sources": ["withings", "apple_health"]}
    answer = await client.put("/v1/preferences/overrides/steps", json=steps, headers=auth)
    assert answer.status_code == 200
    assert (await client.delete("/v1/preferences/overrides/steps", headers=auth)).status_code == 204
    assert (await client.delete("/v1/preferences/sleep", headers=auth)).status_code == 204

    received = await published(kafka_bootstrap_servers, topics.preferences_changed, 4)
    assert [key for key, _ in received] == [str(user).encode()] * 4
    bodies = [body for _, body in received]
    for body in bodies:
        PreferencesChanged.model_validate(body)  # the contract reads its own wire form back
        moment = datetime.fromisoformat(body.pop("occurred_at"))
        assert before <= moment <= datetime.now(UTC) + timedelta(seconds=1)
    common = {"schema": "preferences.v1", "user_id": str(user)}
    assert bodies == [
        {
            **common,
            "event": "preferences.priority_set",
            "category": "sleep",
            "metric": None,
            "sources": ["whoop", "oura"],
            "fallback": False,
        },
        {
            **common,
            "event": "preferences.override_set",
            "category": None,
            "metric": "steps",
            "sources": ["withings", "apple_health"],
            "fallback": None,
        },
        {
            **common,
            "event": "preferences.override_deleted",
            "category": None,
            "metric": "steps",
            "sources": None,
            "fallback": None,
        },
        {
            **common,
            "event": "preferences.priority_deleted",
            "category": "sleep",
            "metric": None,
            "sources": None,
            "fallback": None,
        },
    ]
