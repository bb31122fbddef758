"""Deletions at WHOOP and Oura reach the normalizer: a signed deletion webhook, through
`webhooks.receive` on a real PostgreSQL, publishes one tombstone on `raw.<provider>` and queues
no sync (a sync cannot see a deleted record); a forged one publishes nothing.

The events are the simulator's, signed on the real clock (the receiver checks freshness); the
tombstones go through the real broker and are read back from it. Only the broker that never
acknowledges is a stand-in: a real one cannot be made to withhold an ack on cue."""

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any, cast
from uuid import UUID, uuid4

import asyncpg
import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka.errors import KafkaTimeoutError  # noqa: TID251 - what an unacknowledged publish raises
from faststream.kafka import KafkaBroker, KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import make_broker
from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.ids import raw_event_id
from healthmesh.common.topics import Topics
from healthmesh.connectors import jobs
from healthmesh.connectors.providers import oura, whoop
from healthmesh.connectors.providers.base import Provider, WebhookRequest, WebhookSecrets
from healthmesh.connectors.tokens import AuthClient
from healthmesh.connectors.webhooks import WebhookAnswer, receive
from healthmesh.devstack.testing import eventually
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.testing import client_secret, connect

pytestmark = pytest.mark.integration

SLEEP_UUID = "ecfc6a15-4661-442f-a9a4-f160dd7afae8"
PROVIDERS: dict[str, Provider] = {"whoop": whoop.PROVIDER, "oura": oura.PROVIDER}


@pytest.fixture
def clock() -> FakeClock:
    """The simulator signs on the real clock here: `receive` verifies against it."""
    return FakeClock(time.time())


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url)
    await apply_migrations(pool, "connectors", files("healthmesh.connectors") / "migrations")
    yield pool
    await pool.close()


@pytest_asyncio.fixture
async def broker(kafka_bootstrap_servers: str) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(kafka_bootstrap_servers, TracerProvider())
    await broker.start()
    yield broker
    await broker.stop()


Sent = tuple[bytes, dict[str, Any]]


async def published(kafka_bootstrap_servers: str, topic: str, expected: int) -> list[Sent]:
    """(key, body) of every message on `topic`, once `expected` arrived and a moment passed
    in which more could have."""
    received: list[Sent] = []
    reader = make_broker(kafka_bootstrap_servers, TracerProvider())

    @reader.subscriber(topic, group_id=f"test-{uuid4().hex}", auto_offset_reset="earliest")
    async def _read(msg: KafkaMessage) -> None:
        received.append((msg.raw_message.key, orjson.loads(msg.body)))  # type: ignore[union-attr]

    async def enough() -> bool:
        return len(received) >= expected

    await reader.start()
    try:
        await eventually(enough, timeout=30, what=f"{expected} messages on {topic}")
        await asyncio.sleep(1.0)
    finally:
        await reader.stop()
    return received


class NeverAcks:
    """A broker that never acknowledges: what `publish_many` meets when Kafka is down."""

    async def publish(self, body: dict[str, Any], *, topic: str, key: bytes) -> None:
        raise KafkaTimeoutError()


def _no_auth(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"auth must not be called: {request.url}")


async def deliver(
    pool: asyncpg.Pool,
    provider: str,
    request: WebhookRequest,
    broker: KafkaBroker | NeverAcks,
    topics: Topics,
) -> WebhookAnswer:
    secrets = WebhookSecrets(client_secret(provider), "verify", None, None)
    async with httpx.AsyncClient(transport=httpx.MockTransport(_no_auth)) as http:
        auth = AuthClient(http, "http://auth.test", "internal")
        return await receive(
            PROVIDERS[provider], request, secrets, pool, auth, cast(KafkaBroker, broker), topics
        )


async def linked_event(
    sim: httpx.AsyncClient, pool: asyncpg.Pool, provider: str, **event: str
) -> tuple[UUID, WebhookRequest]:
    """A user of ours connected to a simulated person, and a genuine event of that person's."""
    person = f"{provider}-{uuid4().hex[:8]}"
    await connect(sim, provider, user=person)
    who = (await sim.get(f"/_control/users/{person}")).json()[provider]
    user_id = uuid4()
    await jobs.link_connected(pool, user_id, provider, str(who["user_id"]), datetime.now(UTC))
    answer = await sim.post(
        "/_control/webhooks/send",
        json={"provider": provider, "user": person, "url": "http://app.test/hook", **event},
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()["requests"][0]
    request = WebhookRequest(
        method=sent["method"],
        query={},
        headers={k.lower(): v for k, v in sent["headers"].items()},
        body=sent["body"].encode(),
    )
    return user_id, request


async def syncs_queued(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM connectors.sync_jobs")
    return count


def check_tombstone(
    sent: Sent,
    provider: str,
    user_id: UUID,
    request: WebhookRequest,
    resource: str,
    record_id: str,
    published_after: datetime,
) -> None:
    key, body = sent
    assert key == str(user_id).encode()
    event = RawPayloadReceived.model_validate(body)
    assert event.id == raw_event_id(provider, user_id, "deleted", f"{resource}:{record_id}")
    assert (event.user_id, event.source, event.resource) == (user_id, provider, "deleted")
    assert event.payload == {
        "resource": resource,
        "id": record_id,
        "event": orjson.loads(request.body),  # the webhook body as received
    }
    assert published_after <= event.fetched_at <= datetime.now(UTC)
    assert (event.window.start, event.window.end, event.import_id) == (None, None, None)


@pytest.mark.parametrize("resource", ["sleep", "workout", "recovery"])
async def test_a_signed_whoop_deletion_publishes_its_tombstone_and_queues_no_sync(
    sim: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    kafka_bootstrap_servers: str,
    resource: str,
) -> None:
    # v2 names a deleted recovery by its sleep's UUID, a sleep or workout by its own.
    user_id, request = await linked_event(
        sim, pool, "whoop", type=f"{resource}.deleted", id=SLEEP_UUID
    )
    began = datetime.now(UTC)
    assert await deliver(pool, "whoop", request, broker, topics) == WebhookAnswer(200, None)
    [sent] = await published(kafka_bootstrap_servers, topics.raw("whoop"), 1)
    check_tombstone(sent, "whoop", user_id, request, resource, SLEEP_UUID, began)
    assert await syncs_queued(pool) == 0


@pytest.mark.parametrize("data_type", ["sleep", "workout", "daily_readiness"])
async def test_a_signed_oura_delete_event_publishes_its_tombstone_and_queues_no_sync(
    sim: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    kafka_bootstrap_servers: str,
    data_type: str,
) -> None:
    user_id, request = await linked_event(
        sim, pool, "oura", data_type=data_type, event_type="delete", object_id="12345abc"
    )
    began = datetime.now(UTC)
    assert await deliver(pool, "oura", request, broker, topics) == WebhookAnswer(200, None)
    [sent] = await published(kafka_bootstrap_servers, topics.raw("oura"), 1)
    check_tombstone(sent, "oura", user_id, request, data_type, "12345abc", began)
    assert await syncs_queued(pool) == 0


@pytest.mark.parametrize(
    ("provider", "event", "forged_from", "forged_to"),
    [
        ("whoop", {"type": "sleep.deleted", "id": SLEEP_UUID}, b"ecfc6a15", b"00000000"),
        ("oura", {"data_type": "sleep", "event_type": "delete", "object_id": "a1"}, b"a1", b"b2"),
    ],
)
async def test_a_forged_deletion_publishes_nothing(
    sim: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    kafka_bootstrap_servers: str,
    provider: str,
    event: dict[str, str],
    forged_from: bytes,
    forged_to: bytes,
) -> None:
    _, genuine = await linked_event(sim, pool, provider, **event)
    assert forged_from in genuine.body
    forged = WebhookRequest(
        genuine.method, {}, genuine.headers, genuine.body.replace(forged_from, forged_to)
    )
    answer = await deliver(pool, provider, forged, broker, topics)
    assert answer.status == 401, answer
    assert await published(kafka_bootstrap_servers, topics.raw(provider), 0) == []
    assert await syncs_queued(pool) == 0


async def test_an_update_still_queues_a_sync_and_publishes_nothing(
    sim: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    kafka_bootstrap_servers: str,
) -> None:
    _, request = await linked_event(sim, pool, "whoop", type="sleep.updated", id=SLEEP_UUID)
    assert await deliver(pool, "whoop", request, broker, topics) == WebhookAnswer(200, None)
    assert await published(kafka_bootstrap_servers, topics.raw("whoop"), 0) == []
    assert await syncs_queued(pool) == 1


async def test_a_deletion_for_a_user_we_do_not_know_is_acknowledged_and_dropped(
    sim: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    kafka_bootstrap_servers: str,
) -> None:
    user_id, request = await linked_event(sim, pool, "whoop", type="sleep.deleted", id=SLEEP_UUID)
    await jobs.link_status(pool, user_id, "whoop", "disconnected", None)
    assert await deliver(pool, "whoop", request, broker, topics) == WebhookAnswer(200, None)
    assert await published(kafka_bootstrap_servers, topics.raw("whoop"), 0) == []


async def test_an_unacknowledged_tombstone_is_answered_503_and_the_redelivery_is_the_same(
    sim: httpx.AsyncClient,
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    topics: Topics,
    kafka_bootstrap_servers: str,
) -> None:
    """The provider delivers a non-2xx answer again; the tombstone's id depends on the record
    only, so the redelivered one is the same event."""
    user_id, request = await linked_event(sim, pool, "whoop", type="workout.deleted", id=SLEEP_UUID)
    answer = await deliver(pool, "whoop", request, NeverAcks(), topics)
    assert answer.status == 503
    began = datetime.now(UTC)
    assert await deliver(pool, "whoop", request, broker, topics) == WebhookAnswer(200, None)
    [sent] = await published(kafka_bootstrap_servers, topics.raw("whoop"), 1)
    check_tombstone(sent, "whoop", user_id, request, "workout", SLEEP_UUID, began)
