"""Helpers for connected tests: reading what services published, waiting for conditions."""

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from faststream.kafka import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import make_broker


@contextlib.asynccontextmanager
async def collect(bootstrap_servers: str, topic: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Everything published on `topic` from its beginning, decoded, while the block runs."""
    received: list[dict[str, Any]] = []
    broker = make_broker(bootstrap_servers, TracerProvider())

    @broker.subscriber(topic, group_id=f"test-{uuid.uuid4().hex}", auto_offset_reset="earliest")
    async def _collect(msg: KafkaMessage) -> None:
        received.append(orjson.loads(msg.body))

    await broker.start()
    try:
        yield received
    finally:
        await broker.stop()


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
