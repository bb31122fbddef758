"""The one place that builds Kafka brokers (FastStream over aiokafka).

Producers wait for every in-sync replica (acks=all) so "published" means durable; no Kafka
transactions or idempotent producer are used (the embedded broker has neither).
"""

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import KafkaError  # noqa: TID251 - the broker module
from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider


def make_broker(bootstrap_servers: str, tracer_provider: TracerProvider) -> KafkaBroker:
    return KafkaBroker(
        bootstrap_servers.split(","),
        acks="all",
        enable_idempotence=False,
        max_request_size=1_048_576,
        middlewares=(KafkaTelemetryMiddleware(tracer_provider=tracer_provider),),
        log_level=logging.DEBUG,
    )


class PublishFailed(Exception):
    """The broker did not acknowledge a publish; nothing may be recorded as sent."""


async def publish_many(
    broker: KafkaBroker,
    topic: str,
    key: bytes,
    bodies: Sequence[dict[str, Any]],
    in_flight: int = 16,
) -> None:
    """Publish every (JSON) body and return once all are acknowledged. At most `in_flight` wait at a
    time: a window of a year's events sent at once only times out against a busy broker."""
    try:
        for start in range(0, len(bodies), in_flight):
            await asyncio.gather(
                *(
                    broker.publish(body, topic=topic, key=key)
                    for body in bodies[start : start + in_flight]
                )
            )
    except KafkaError as exc:
        raise PublishFailed(f"the broker did not acknowledge ({type(exc).__name__})") from exc


async def create_topics(bootstrap_servers: str, topics: list[str], partitions: int = 6) -> None:
    """Create the topics that do not exist yet (idempotent: existing ones are left alone)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: TID251 - the broker module
    from aiokafka.errors import TopicAlreadyExistsError  # noqa: TID251

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers.split(","))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                await admin.create_topics(
                    [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in missing]
                )
    finally:
        await admin.close()
