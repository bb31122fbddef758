"""`make run`'s supervisor as a user runs it: up, one line per service, Ctrl-C, no orphans."""

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

from healthmesh.devstack.databases import create_database
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.pytest_plugin import SharedInfrastructure
from healthmesh.devstack.stack import SERVICES

pytestmark = pytest.mark.e2e


def test_run_starts_every_service_in_sandbox_and_ctrl_c_leaves_no_process(
    infrastructure: SharedInfrastructure,
) -> None:
    database_url = asyncio.run(create_database(infrastructure.admin_database_url, "run"))
    ports = {service: free_port() for service in SERVICES}
    simulator_port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": infrastructure.kafka_bootstrap_servers,
        "HEALTHMESH_TOPIC_PREFIX": f"run{uuid.uuid4().hex[:8]}.",
        "HEALTHMESH_DATA_DIR": tempfile.mkdtemp(prefix="healthmesh-run-"),
        **{f"HEALTHMESH_{service.upper()}_PORT": str(port) for service, port in ports.items()},
        "HEALTHMESH_SIMULATOR_PORT": str(simulator_port),
    }
    for provider in ("OURA", "WHOOP", "FITBIT", "WITHINGS", "STRAVA"):
        env.pop(f"HEALTHMESH_{provider}_CLIENT_ID", None)
    env.pop("HEALTHMESH_PROVIDER_BASE_URL", None)
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "healthmesh.devstack.run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert supervisor.stdout is not None
        deadline = time.monotonic() + 120
        while not any("is up" in line for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = supervisor.stdout.readline()
            assert line, f"supervisor exited early:\n{''.join(lines)}"
            lines.append(line)
        children = psutil.Process(supervisor.pid).children(recursive=True)
        assert len(children) >= len(SERVICES)
        for service, port in ports.items():
            assert any(f"{service}" in ln and f"127.0.0.1:{port}" in ln for ln in lines), lines
        assert any(f"simulator    http://127.0.0.1:{simulator_port}" in ln for ln in lines), lines
        assert Path(env["HEALTHMESH_DATA_DIR"], "logs", "gateway.log").exists()
        supervisor.send_signal(signal.SIGINT)
        assert supervisor.wait(60) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert alive == [], f"orphans left: {alive}"
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
        if supervisor.stdout is not None:
            supervisor.stdout.close()
