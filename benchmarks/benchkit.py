"""What the benchmark scripts share: timestamped output, a fresh database and topic prefix per
run, and the resident memory of a process with its children."""

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from healthmesh.common.broker import create_topics
from healthmesh.common.topics import Topics
from healthmesh.devstack.databases import create_database, drop_database
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.stack import Infrastructure, start_infrastructure


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C, so every process a benchmark started is stopped."""

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


@dataclass(frozen=True)
class Run:
    """One benchmark run's own corner of the infrastructure."""

    infra: Infrastructure
    database_url: str
    topics: Topics


async def fresh_run(stack: contextlib.AsyncExitStack, work: Path, prefix: str) -> Run:
    """Embedded PostgreSQL and Tansu (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS), a new
    database and topic prefix for this run; all undone when `stack` closes."""
    external = {
        k: os.environ[k] for k in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") if os.environ.get(k)
    }
    infra = start_infrastructure(
        external, work, pg_port=free_port(), kafka_port=free_port(), durable=False
    )
    stack.callback(infra.stop)
    database_url = await create_database(infra.database_url, "bench")
    stack.push_async_callback(drop_database, infra.database_url, database_url)
    topics = Topics(prefix=f"{prefix}.")
    await create_topics(infra.kafka_bootstrap_servers, topics.all())
    return Run(infra, database_url, topics)


def rss_bytes(process: psutil.Process) -> int:
    try:
        family = [process, *process.children(recursive=True)]
        return sum(p.memory_info().rss for p in family)
    except psutil.Error:
        return 0
