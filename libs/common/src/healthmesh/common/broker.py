"""The one place that builds Kafka brokers (FastStream over aiokafka).

Producers wait for every in-sync replica (acks=all) so "published" means durable; no Kafka
transactions or idempotent producer are used (the embedded broker has neither).
"""

import contextlib
import logging

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
