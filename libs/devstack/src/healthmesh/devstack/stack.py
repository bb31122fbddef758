"""The whole product on one machine: infrastructure (embedded unless configured) and the five
services as separate processes. Used by `make run` and by the end-to-end tests."""

import os
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from healthmesh.common.settings import SERVICE_PORTS
from healthmesh.devstack.embedded import ensure_database, start_postgres, start_tansu
from healthmesh.devstack.processes import ManagedProcess, port_open, spawn, wait_until

# Start order: auth first (the others fetch its keys), the gateway last.
SERVICES = ("auth", "preferences", "normalizer", "connectors", "gateway")


@dataclass
class Infrastructure:
    database_url: str
    kafka_bootstrap_servers: str
    processes: list[ManagedProcess] = field(default_factory=list)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()


def start_infrastructure(
    env: Mapping[str, str],
    data_dir: Path,
    *,
    pg_port: int = 54329,
    kafka_port: int = 9092,
    durable: bool = True,
) -> Infrastructure:
    """Use DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS when set, else start the embedded ones."""
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    infra = Infrastructure(env.get("DATABASE_URL", ""), env.get("KAFKA_BOOTSTRAP_SERVERS", ""))
    try:
        if not infra.database_url:
            infra.processes.append(
                start_postgres(
                    data_dir / "postgres", pg_port, log_path=logs / "postgres.log", durable=durable
                )
            )
            ensure_database(pg_port, "healthmesh")
            infra.database_url = f"postgresql://postgres@127.0.0.1:{pg_port}/healthmesh"
        if not infra.kafka_bootstrap_servers:
            infra.processes.append(start_tansu(kafka_port, log_path=logs / "tansu.log"))
            infra.kafka_bootstrap_servers = f"127.0.0.1:{kafka_port}"
    except BaseException:
        infra.stop()
        raise
    return infra


@dataclass
class Service:
    name: str
    url: str
    process: ManagedProcess


PROVIDERS = ("oura", "whoop", "fitbit", "withings", "strava")


def sandbox_wanted(env: Mapping[str, str]) -> bool:
    """No provider credentials and no provider URL configured: the simulator stands in."""
    configured = any(env.get(f"HEALTHMESH_{p.upper()}_CLIENT_ID") for p in PROVIDERS)
    return not configured and not env.get("HEALTHMESH_PROVIDER_BASE_URL")


def service_env(
    base: Mapping[str, str], infra: Infrastructure, ports: Mapping[str, int], data_dir: Path
) -> dict[str, str]:
    env = dict(base)
    env.update(
        DATABASE_URL=infra.database_url,
        KAFKA_BOOTSTRAP_SERVERS=infra.kafka_bootstrap_servers,
        HEALTHMESH_AUTH_URL=f"http://127.0.0.1:{ports['auth']}",
        HEALTHMESH_PREFERENCES_URL=f"http://127.0.0.1:{ports['preferences']}",
        HEALTHMESH_CONNECTORS_URL=f"http://127.0.0.1:{ports['connectors']}",
    )
    env.setdefault("HEALTHMESH_UPLOAD_DIR", str(data_dir / "uploads"))
    env.setdefault("HEALTHMESH_PUBLIC_URL", f"http://127.0.0.1:{ports['gateway']}")
    return env


def start_simulator(env: Mapping[str, str], port: int, log_dir: Path) -> Service:
    """The provider simulator (sandbox mode): every provider's OAuth and API on one port."""
    process = spawn(
        "simulator",
        [sys.executable, "-m", "healthmesh.simulator"],
        env={**env, "HEALTHMESH_SIMULATOR_PORT": str(port)},
        log_path=log_dir / "simulator.log",
    )
    service = Service("simulator", f"http://127.0.0.1:{port}", process)
    try:
        wait_until(lambda: not process.alive() or port_open(port), 30, "the provider simulator")
    except TimeoutError:
        process.stop()
        raise
    if not process.alive():
        raise RuntimeError(f"the simulator exited at start; see {log_dir / 'simulator.log'}")
    return service


def start_service(name: str, env: Mapping[str, str], port: int, log_dir: Path) -> Service:
    process = spawn(
        name,
        [sys.executable, "-m", f"healthmesh.{name}"],
        env={**env, "HEALTHMESH_PORT": str(port)},
        log_path=log_dir / f"{name}.log",
    )
    return Service(name, f"http://127.0.0.1:{port}", process)


def wait_ready(service: Service, timeout: float = 60.0) -> None:
    def ready() -> bool:
        if not service.process.alive():
            raise RuntimeError(
                f"{service.name} exited with {service.process.popen.returncode}; "
                f"see {service.process.log_path}"
            )
        try:
            with urllib.request.urlopen(f"{service.url}/readyz", timeout=2) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except OSError:
            return False

    wait_until(ready, timeout, f"{service.name} to be ready", interval=0.2)


def start_services(
    env: Mapping[str, str], data_dir: Path, ports: Mapping[str, int] | None = None
) -> list[Service]:
    """Start every service (auth first), each waited for until /readyz answers 200."""
    ports = ports or SERVICE_PORTS
    log_dir = data_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started: list[Service] = []
    try:
        for name in SERVICES:
            service = start_service(name, env, ports[name], log_dir)
            started.append(service)
            wait_ready(service)
    except BaseException:
        stop_services(started)
        raise
    return started


def stop_services(services: list[Service]) -> None:
    for service in reversed(services):
        service.process.stop()


def default_data_dir() -> Path:
    return Path(os.environ.get("HEALTHMESH_DATA_DIR", ".data")).resolve()


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f}s"
