"""`make run`: the whole product on this machine until Ctrl-C.

Starts PostgreSQL and Tansu unless DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are set, creates the
topics, starts the five services (each applies its own migrations), prints one line per service,
and on Ctrl-C or SIGTERM stops everything in reverse order. If a service dies, everything stops.
"""

import asyncio
import os
import signal
import sys
import time
from types import FrameType

from healthmesh.common.broker import create_topics
from healthmesh.common.topics import Topics
from healthmesh.devstack.stack import (
    SERVICES,
    Service,
    default_data_dir,
    elapsed,
    sandbox_wanted,
    service_env,
    start_infrastructure,
    start_services,
    start_simulator,
    stop_services,
)

_stop_requested = False


def _request_stop(signum: int, _: FrameType | None) -> None:
    global _stop_requested
    _stop_requested = True


def main() -> int:
    signal.signal(signal.SIGINT, _request_stop)
    signal.signal(signal.SIGTERM, _request_stop)
    started = time.monotonic()
    data_dir = default_data_dir()
    print(f"HealthMesh: data in {data_dir} (logs in {data_dir / 'logs'})", flush=True)
    infra = start_infrastructure(
        os.environ,
        data_dir,
        pg_port=int(os.environ.get("HEALTHMESH_EMBEDDED_PG_PORT", "54329")),
        kafka_port=int(os.environ.get("HEALTHMESH_EMBEDDED_KAFKA_PORT", "9092")),
    )
    services: list[Service] = []
    try:
        print(f"  postgres     {infra.database_url}", flush=True)
        print(f"  kafka        {infra.kafka_bootstrap_servers}", flush=True)
        prefix = os.environ.get("HEALTHMESH_TOPIC_PREFIX", "")
        asyncio.run(create_topics(infra.kafka_bootstrap_servers, Topics(prefix).all()))
        env = service_env(os.environ, infra, _ports(), data_dir)
        if sandbox_wanted(env):
            port = int(os.environ.get("HEALTHMESH_SIMULATOR_PORT", "8010"))
            simulator = start_simulator(env, port, data_dir / "logs")
            services.append(simulator)
            env["HEALTHMESH_PROVIDER_BASE_URL"] = simulator.url
            print(
                f"  {'simulator':<12} {simulator.url} (sandbox: no provider credentials set)",
                flush=True,
            )
        services += start_services(env, data_dir, _ports())
        for service in services:
            if service.name != "simulator":
                print(f"  {service.name:<12} {service.url}", flush=True)
        print(
            f"HealthMesh is up in {elapsed(started)}: http://127.0.0.1:{_ports()['gateway']}/docs"
            " - Ctrl-C stops it",
            flush=True,
        )
        while not _stop_requested:
            dead = [s for s in services if not s.process.alive()]
            if dead:
                print(
                    f"{dead[0].name} exited; stopping (see {dead[0].process.log_path})",
                    file=sys.stderr,
                    flush=True,
                )
                return 1
            time.sleep(0.5)
        print("stopping...", flush=True)
        return 0
    finally:
        stop_services(services)
        infra.stop()


def _ports() -> dict[str, int]:
    """Each service's port: HEALTHMESH_<NAME>_PORT, else its default (gateway 8000)."""
    from healthmesh.common.settings import SERVICE_PORTS

    return {
        name: int(os.environ.get(f"HEALTHMESH_{name.upper()}_PORT", SERVICE_PORTS[name]))
        for name in SERVICES
    }


if __name__ == "__main__":
    sys.exit(main())
