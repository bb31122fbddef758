"""Benchmark: an Apple Health export.zip from upload to queryable rows, side by side with
healthkit-to-sqlite (PyPI) on the same file in the same run.

What runs, and why:
- The export is made by shared/tools/gen_apple_health.py (cached in --cache-dir, so reruns of
  the same size skip it): iPhone and Watch steps overlapping, heart rate with metadata, sleep
  stages, HRV lists, workouts, blood-pressure correlations, several UTC offsets.
- Baseline: `healthkit-to-sqlite export.zip db` (a dev dependency) as a child process, on the
  same file, alone on the machine: wall time, rows it wrote, and its exact peak RSS (wait4).
- HealthMesh: embedded PostgreSQL and Tansu (or DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS, with a
  fresh database and topic prefix) and the five services as real processes, each answering
  ready. One user signs up, uploads the zip through `POST /v1/imports` (kind=apple_health, the
  file streamed from disk), and `GET /v1/imports/{id}` is polled until `done`, which the API
  promises means every record is committed and queryable; then the rows are queried back.
- Records are what the import reports as seen. The clock runs from the first byte of the upload
  to `done`, split into upload (until 202), queued (until the connectors start reading), parsing
  and publishing (until the connectors finish reading), and the normalizer's tail (until the
  last batch's transaction began); the normalizer works while the file is still being read.
- Every process's RSS is sampled throughout (the services each alone; PostgreSQL as its largest
  process, its backends being separate processes), per tenth of the run, so a growing one shows.

It exits 1 when the import is below --goal-rate records/s end to end, when a HealthMesh service
went above --goal-rss-mb, or when the import did not end `done` with queryable rows.

    uv run python benchmarks/apple_import.py --records 50000
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from benchkit import fresh_run, rss_bytes, say, stop_on_sigterm

from healthmesh.devstack.processes import free_port
from healthmesh.devstack.stack import (
    SERVICES,
    Infrastructure,
    Service,
    service_env,
    start_services,
    stop_services,
)

ROOT = Path(__file__).resolve().parents[1]
GENERATOR = ROOT.parent / "shared" / "tools" / "gen_apple_health.py"
PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark user's password
POLL_S = 0.5
SAMPLE_S = 0.25
NOTE_EVERY_S = 15.0
TENTHS = 10
MB = 2**20


@dataclass(frozen=True)
class Options:
    records: int
    cache_dir: Path
    generator: Path
    baseline: bool
    goal_rate: float
    goal_rss_mb: float
    timeout: float
    profile_with: Path | None
    json_path: Path | None


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=500_000, help="records in the export")
    parser.add_argument(
        "--cache-dir", type=Path, default=ROOT / ".data" / "bench", help="generated exports"
    )
    parser.add_argument("--generator", type=Path, default=GENERATOR)
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip healthkit-to-sqlite (a 5 M run)"
    )
    parser.add_argument("--goal-rate", type=float, default=50_000, help="records/s end to end")
    parser.add_argument("--goal-rss-mb", type=float, default=300, help="per HealthMesh process")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds for the import")
    parser.add_argument(
        "--profile-with",
        type=Path,
        default=None,
        metavar="PY_SPY",
        help="a py-spy executable (not a dependency: install it apart): records the connectors, "
        "normalizer and gateway during the import; collapsed stacks next to the logs, the "
        "heaviest functions in the report",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    return Options(
        records=int(args.records),
        cache_dir=args.cache_dir,
        generator=args.generator,
        baseline=not args.no_baseline,
        goal_rate=float(args.goal_rate),
        goal_rss_mb=float(args.goal_rss_mb),
        timeout=float(args.timeout),
        profile_with=args.profile_with,
        json_path=args.json,
    )


# --- the export --------------------------------------------------------------------------------


def export_zip(options: Options) -> Path:
    """The generated export for this size, made once and kept in the cache directory."""
    path = options.cache_dir / f"apple-export-{options.records}.zip"
    if path.exists():
        say(f"export: reusing {path} ({path.stat().st_size / MB:.1f} MB)")
        return path
    options.cache_dir.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.zip")
    say(f"export: generating {options.records:,} records with {options.generator}")
    subprocess.run(  # noqa: S603 - our own interpreter and the shared generator
        [sys.executable, str(options.generator), str(partial), "--records", str(options.records)],
        check=True,
    )
    partial.replace(path)
    say(f"export: {path} ({path.stat().st_size / MB:.1f} MB)")
    return path


# --- the baseline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    rows: int
    wall_s: float
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.wall_s


def run_baseline(export: Path, work: Path) -> Baseline:
    """healthkit-to-sqlite on the same file; its peak RSS exactly, from the kernel (wait4)."""
    tool = shutil.which("healthkit-to-sqlite", path=str(Path(sys.executable).parent))
    if tool is None:
        raise RuntimeError("healthkit-to-sqlite is not installed: run `uv sync --frozen`")
    target = work / "healthkit.db"
    say(f"baseline: {tool} {export.name} {target}")
    began = time.perf_counter()
    child = subprocess.Popen(  # noqa: S603 - the installed tool, on our own file
        [tool, "--silent", str(export), str(target)], stdin=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - began
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"healthkit-to-sqlite exited with {child.returncode}")
    with contextlib.closing(sqlite3.connect(target)) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        rows = sum(int(db.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables)
    target.unlink()
    baseline = Baseline(rows, wall, usage.ru_maxrss / 1024)  # ru_maxrss is in KiB on Linux
    say(
        f"baseline: {rows:,} rows in {wall:.1f}s = {baseline.rate:,.0f} rows/s, "
        f"peak RSS {baseline.peak_rss_mb:.0f} MB"
    )
    return baseline


# --- memory and CPU of every process -----------------------------------------------------------


@dataclass
class Watched:
    """One process (or, for PostgreSQL, a family of processes) whose RSS is sampled."""

    name: str
    process: psutil.Process
    family_max: bool = False
    """Report the family's largest process (PostgreSQL's backends), not the family's sum."""
    goal_applies: bool = True
    samples: list[tuple[float, int]] = field(default_factory=list)

    def rss(self) -> int:
        if not self.family_max:
            return rss_bytes(self.process)
        try:
            family = [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return 0
        sizes = []
        for p in family:
            with contextlib.suppress(psutil.Error):
                sizes.append(p.memory_info().rss)
        return max(sizes, default=0)

    def cpu_s(self) -> float:
        try:
            family = [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for p in family:
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
        return total

    @property
    def peak(self) -> int:
        return max((rss for _, rss in self.samples), default=0)


async def sample_rss(watched: list[Watched], stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = time.monotonic()
        for w in watched:
            w.samples.append((now, w.rss()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


def watch_list(infra: Infrastructure, services: list[Service]) -> list[Watched]:
    """The five services, and the embedded PostgreSQL and Tansu when they run here."""
    watched = [Watched(s.name, psutil.Process(s.process.pid)) for s in services]
    for process in infra.processes:
        watched.append(
            Watched(
                process.name,
                psutil.Process(process.pid),
                family_max=process.name == "postgres",
                goal_applies=False,
            )
        )
    return watched


def cpu_snapshot(watched: list[Watched]) -> dict[str, float]:
    return {w.name: w.cpu_s() for w in watched}


# --- profiling (optional) ----------------------------------------------------------------------


@contextlib.contextmanager
def profiling(py_spy: Path | None, services: list[Service], out: Path) -> Iterator[list[Path]]:
    """py-spy recording the connectors and the normalizer while the body runs."""
    recorders: list[subprocess.Popen[bytes]] = []
    outputs: list[Path] = []
    if py_spy is not None:
        out.mkdir(parents=True, exist_ok=True)
        for s in services:
            if s.name in ("connectors", "normalizer", "gateway"):
                target = out / f"{s.name}.txt"
                outputs.append(target)
                recorders.append(
                    subprocess.Popen(  # noqa: S603 - the py-spy the user named
                        [
                            str(py_spy),
                            "record",
                            "--pid",
                            str(s.process.pid),
                            "--format",
                            "raw",
                            "--nolineno",
                            "--rate",
                            "50",
                            "--output",
                            str(target),
                        ],
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
    try:
        yield outputs
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
        for recorder in recorders:
            try:
                recorder.wait(60)
            except subprocess.TimeoutExpired:
                recorder.kill()
                recorder.wait()


WAITING = ("select (selectors.py)", "Condition.wait (threading.py)", "Event.wait (threading.py)")
"""Innermost frames of a process waiting (for the network, a lock, a timer), not working."""
OUR_FRAME = re.compile(r"\((auth|common|connectors|gateway|normalizer|preferences)/")


@dataclass
class Profile:
    """Where one process spent its busy samples (every sample not waiting in WAITING): its
    heaviest innermost frames, and its heaviest HealthMesh functions, each charged with the
    samples in which it is the innermost HealthMesh frame (its own code and the libraries it
    calls, e.g. strptime, pydantic, asyncpg)."""

    samples: int
    busy: int
    leaves: list[tuple[str, float]]
    ours: list[tuple[str, float]]


def read_profile(collapsed: Path, count: int = 10) -> Profile:
    """From py-spy's collapsed stacks (recorded with --nolineno: "func (file.py)" frames)."""
    charged: dict[str, int] = {}
    own: dict[str, int] = {}
    samples = busy = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = stack.split(";")
        samples += int(n)
        if frames[-1].endswith(WAITING):
            continue
        busy += int(n)
        own[frames[-1]] = own.get(frames[-1], 0) + int(n)
        ours = next((f for f in reversed(frames) if OUR_FRAME.search(f)), "(outside HealthMesh)")
        charged[ours] = charged.get(ours, 0) + int(n)

    def heaviest(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)[:count]
        return [(frame, n / max(busy, 1)) for frame, n in ranked]

    return Profile(samples, busy, heaviest(own), heaviest(charged))


# --- the import --------------------------------------------------------------------------------


def expect(answer: httpx.Response, *statuses: int) -> httpx.Response:
    if answer.status_code not in statuses:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path}: "
            f"{answer.status_code} {answer.text[:300]}"
        )
    return answer


class PasswordAuth(httpx.Auth):
    """The benchmark user's bearer token, fetched again when it has expired (a 500,000-record
    import outlasts an access token's 15 minutes)."""

    requires_response_body = True

    def __init__(self, email: str) -> None:
        self.email = email
        self.token: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token is None:
            self.token = self._token((yield self._login(request)))
        request.headers["authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            self.token = self._token((yield self._login(request)))
            request.headers["authorization"] = f"Bearer {self.token}"
            yield request

    def _login(self, request: httpx.Request) -> httpx.Request:
        return httpx.Request(
            "POST",
            request.url.join("/v1/auth/token"),
            data={"username": self.email, "password": PASSWORD},
        )

    @staticmethod
    def _token(answer: httpx.Response) -> str:
        return str(expect(answer, 200).json()["access_token"])


async def sign_up(gateway: httpx.AsyncClient) -> PasswordAuth:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    expect(await gateway.post("/v1/users", json={"email": email, "password": PASSWORD}), 201)
    return PasswordAuth(email)


@dataclass
class ImportRun:
    view: dict[str, Any]
    began: float
    """time.monotonic() and the wall clock (time.time()) of the upload's first byte."""
    began_wall: float
    accepted_s: float
    done_s: float
    parse_started_s: float | None
    parse_finished_s: float | None
    last_commit_s: float | None
    samples_rows: int
    queried_points: dict[str, int]
    progress: list[tuple[float, int]]
    """(seconds since the upload began, records committed), at each poll."""


async def upload(gateway: httpx.AsyncClient, export: Path) -> str:
    with export.open("rb") as body:  # httpx streams the file part in chunks
        answer = await gateway.post(
            "/v1/imports",
            data={"kind": "apple_health"},
            files={"file": ("export.zip", body, "application/zip")},
            timeout=3600,
        )
    return str(expect(answer, 202).json()["id"])


async def wait_done(
    gateway: httpx.AsyncClient,
    import_id: str,
    began: float,
    services: list[Service],
    watched: list[Watched],
    wait_s: float,
    progress: list[tuple[float, int]],
) -> dict[str, Any]:
    """Poll until the import ends; `progress` gets (seconds since the upload began, records
    committed) at each poll."""
    next_note = time.monotonic() + NOTE_EVERY_S
    while True:
        view = dict(expect(await gateway.get(f"/v1/imports/{import_id}"), 200).json())
        committed = int(view["records_imported"] or 0) + int(view["records_rejected"] or 0)
        progress.append((time.monotonic() - began, committed))
        if view["status"] in ("done", "failed"):
            return view
        dead = [s for s in services if not s.process.alive()]
        if dead:
            raise RuntimeError(f"{dead[0].name} exited; see {dead[0].process.log_path}")
        elapsed = time.monotonic() - began
        if elapsed > wait_s:
            raise TimeoutError(f"import not done after {elapsed:.0f}s: {view}")
        if time.monotonic() >= next_note:
            rss = ", ".join(f"{w.name} {w.samples[-1][1] / MB:.0f}" for w in watched if w.samples)
            say(
                f"  {elapsed:6.0f}s {view['status']}: read "
                f"{(view['bytes_read'] or 0) / max(1, view['bytes_total']):.0%}, "
                f"seen {view['records_seen']:,}, imported {view['records_imported']:,}; "
                f"RSS MB {rss}"
            )
            next_note += NOTE_EVERY_S
        await asyncio.sleep(POLL_S)


def seconds_after(moment: datetime | None, began_wall: float) -> float | None:
    return moment.timestamp() - began_wall if moment else None


async def query_back(
    gateway: httpx.AsyncClient, database_url: str, user_id: str
) -> tuple[int, dict[str, int]]:
    """Rows stored for the user, and points the public API answers for the export's first
    month (the generator starts on 2022-01-01): the rows are queryable, not merely written."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetchval(
            "SELECT count(*) FROM normalizer.samples_v1 WHERE user_id = $1", uuid.UUID(user_id)
        )
    finally:
        await conn.close()
    points = {}
    for metric, resolution in (("steps", "day"), ("heart_rate", "hour"), ("body_mass", "raw")):
        answer = expect(
            await gateway.get(
                f"/v1/metrics/{metric}",
                params={"start": "2022-01-01", "end": "2022-01-31", "resolution": resolution},
            ),
            200,
        )
        points[f"{metric}/{resolution}"] = len(answer.json()["points"])
    return int(rows), points


async def run_import(
    gateway_url: str,
    database_url: str,
    export: Path,
    services: list[Service],
    watched: list[Watched],
    wait_s: float,
) -> ImportRun:
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as gateway:
        gateway.auth = await sign_up(gateway)
        user_id = str(expect(await gateway.get("/v1/me"), 200).json()["id"])
        say(f"upload: {export.name} to {gateway_url}")
        began, began_wall = time.monotonic(), time.time()
        import_id = await upload(gateway, export)
        accepted_s = time.monotonic() - began
        say(f"upload: accepted in {accepted_s:.1f}s as import {import_id}")
        progress: list[tuple[float, int]] = [(accepted_s, 0)]
        view = await wait_done(gateway, import_id, began, services, watched, wait_s, progress)
        done_s = time.monotonic() - began
        say(f"import {view['status']} after {done_s:.1f}s; querying the rows back")
        conn = await asyncpg.connect(database_url)
        try:
            parse = await conn.fetchrow(
                """SELECT started_at, finished_at FROM connectors.import_progress_v1
                   WHERE import_id = $1""",
                uuid.UUID(import_id),
            )
            last_commit = await conn.fetchval(
                """SELECT last_committed_at FROM normalizer.import_progress_v1
                   WHERE import_id = $1""",
                uuid.UUID(import_id),
            )
        finally:
            await conn.close()
        rows, points = await query_back(gateway, database_url, user_id)
    return ImportRun(
        view=view,
        began=began,
        began_wall=began_wall,
        accepted_s=accepted_s,
        done_s=done_s,
        parse_started_s=seconds_after(parse["started_at"] if parse else None, began_wall),
        parse_finished_s=seconds_after(parse["finished_at"] if parse else None, began_wall),
        last_commit_s=seconds_after(last_commit, began_wall),
        samples_rows=rows,
        queried_points=points,
        progress=progress,
    )


# --- the report --------------------------------------------------------------------------------


@dataclass
class ProcessFigures:
    name: str
    peak_rss_mb: float
    rss_by_tenth_mb: list[float]
    cpu_s: float
    goal_applies: bool


@dataclass
class Report:
    records: int
    records_imported: int
    records_rejected: int
    status: str
    wall_s: float
    rate: float
    split_s: dict[str, float | None]
    samples_rows: int
    queried_points: dict[str, int]
    committed_per_s_by_tenth: list[float]
    processes: list[ProcessFigures]
    baseline: Baseline | None
    goal_rate: float
    goal_rss_mb: float
    profiles: dict[str, Profile] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return self.rate / self.baseline.rate if self.baseline else None

    @property
    def queryable(self) -> bool:
        return self.samples_rows > 0 and all(n > 0 for n in self.queried_points.values())

    @property
    def passed(self) -> bool:
        within = all(p.peak_rss_mb <= self.goal_rss_mb for p in self.processes if p.goal_applies)
        return self.status == "done" and self.queryable and self.rate >= self.goal_rate and within


def process_figures(
    watched: list[Watched], began: float, ended: float, cpu_before: dict[str, float]
) -> list[ProcessFigures]:
    """Peak RSS over the whole run, the peak within each tenth of the import, CPU seconds
    spent during the import."""
    span = max(ended - began, 1e-9)
    figures = []
    cpu_after = cpu_snapshot(watched)
    for w in watched:
        tenths = [0] * TENTHS
        for t, rss in w.samples:
            if began <= t <= ended:
                i = min(TENTHS - 1, int((t - began) / span * TENTHS))
                tenths[i] = max(tenths[i], rss)
        figures.append(
            ProcessFigures(
                name=w.name,
                peak_rss_mb=w.peak / MB,
                rss_by_tenth_mb=[r / MB for r in tenths],
                cpu_s=cpu_after[w.name] - cpu_before.get(w.name, 0.0),
                goal_applies=w.goal_applies,
            )
        )
    return figures


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(report: Report) -> str:
    s = report.split_s
    lines = [
        f"records seen {report.records:,}, imported {report.records_imported:,}, rejected "
        f"{report.records_rejected:,}; status {report.status}; {report.samples_rows:,} sample rows "
        f"stored; first month queried back: "
        + ", ".join(f"{k} {n} points" for k, n in report.queried_points.items()),
        "",
        f"HealthMesh, upload to done: {report.wall_s:,.1f} s = {report.rate:,.0f} records/s "
        f"(goal {report.goal_rate:,.0f})",
        f"  upload (until 202)            {fmt(s['upload'])} s",
        f"  queued (until parsing starts) {fmt(s['queued'])} s",
        f"  parse + publish               {fmt(s['parse_publish'])} s",
        f"  normalizer tail (after parse) {fmt(s['normalizer_tail'])} s",
        f"  last batch's transaction, poll {fmt(s['poll'])} s (committed_at is its start)",
        "  records committed per second, per tenth of the run: "
        + " ".join(f"{r:,.0f}" for r in report.committed_per_s_by_tenth),
    ]
    if report.baseline:
        b = report.baseline
        lines += [
            f"healthkit-to-sqlite, same file: {b.wall_s:,.1f} s, {b.rows:,} rows = "
            f"{b.rate:,.0f} rows/s, peak RSS {b.peak_rss_mb:.0f} MB",
            f"ratio HealthMesh / healthkit-to-sqlite: {fmt(report.ratio, 2)}",
        ]
    head = f"{'process':<12} {'peak RSS MB':>11} {'CPU s':>8}   peak RSS MB per tenth of the import"
    lines += ["", head, "-" * (len(head) + 30)]
    for p in report.processes:
        mark = "" if p.goal_applies else " (infrastructure, no goal)"
        lines.append(
            f"{p.name:<12} {p.peak_rss_mb:>11.0f} {p.cpu_s:>8.1f}   "
            + " ".join(f"{r:4.0f}" for r in p.rss_by_tenth_mb)
            + mark
        )
    for name, profile in report.profiles.items():
        lines += [
            "",
            f"py-spy, {name}: {profile.busy:,} of {profile.samples:,} samples busy (or waiting "
            "for a CPU); shares of the busy ones",
            "  HealthMesh functions, with the library code they call:",
            *(f"    {share:6.1%}  {frame}" for frame, share in profile.ours),
            "  innermost frames, self:",
            *(f"    {share:6.1%}  {frame}" for frame, share in profile.leaves),
        ]
    over = [
        p.name for p in report.processes if p.goal_applies and p.peak_rss_mb > report.goal_rss_mb
    ]
    lines += [
        "",
        f"goal: >= {report.goal_rate:,.0f} records/s "
        f"({'met' if report.rate >= report.goal_rate else 'MISSED'}), no HealthMesh process above "
        f"{report.goal_rss_mb:.0f} MB ({'met' if not over else 'MISSED: ' + ', '.join(over)}), "
        f"rows queryable ({'yes' if report.queryable else 'NO'}): "
        f"{'PASS' if report.passed else 'FAIL'}",
    ]
    return "\n".join(lines)


def make_report(
    options: Options,
    run: ImportRun,
    watched: list[Watched],
    cpu_before: dict[str, float],
    baseline: Baseline | None,
) -> Report:
    view = run.view
    records = int(view["records_seen"])
    split: dict[str, float | None] = {
        "upload": run.accepted_s,
        "queued": _minus(run.parse_started_s, run.accepted_s),
        "parse_publish": _minus(run.parse_finished_s, run.parse_started_s),
        "normalizer_tail": (
            max(0.0, run.last_commit_s - run.parse_finished_s)
            if run.last_commit_s is not None and run.parse_finished_s is not None
            else None
        ),
        "poll": _minus(run.done_s, max(run.last_commit_s or 0.0, run.parse_finished_s or 0.0)),
    }
    return Report(
        records=records,
        records_imported=int(view["records_imported"]),
        records_rejected=int(view["records_rejected"]),
        status=str(view["status"]),
        wall_s=run.done_s,
        rate=records / run.done_s,
        split_s=split,
        samples_rows=run.samples_rows,
        queried_points=run.queried_points,
        committed_per_s_by_tenth=rates_by_tenth(run.progress, run.done_s),
        processes=process_figures(watched, run.began, run.began + run.done_s, cpu_before),
        baseline=baseline,
        goal_rate=options.goal_rate,
        goal_rss_mb=options.goal_rss_mb,
    )


def rates_by_tenth(progress: list[tuple[float, int]], span: float) -> list[float]:
    """Records committed per second in each tenth of the run (a falling rate: the cost of a
    record grows with the data already stored)."""
    step = span / TENTHS

    def committed_at(moment: float) -> int:
        return max((n for t, n in progress if t <= moment), default=0)

    edges = [committed_at(step * i) for i in range(TENTHS)] + [progress[-1][1]]
    return [(b - a) / step for a, b in itertools.pairwise(edges)]


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


# --- the run -----------------------------------------------------------------------------------


async def run(options: Options, export: Path, work: Path, baseline: Baseline | None) -> Report:
    async with contextlib.AsyncExitStack() as stack:
        fresh = await fresh_run(stack, work, f"bench{uuid.uuid4().hex[:8]}")
        ports = {name: free_port() for name in SERVICES}
        infra = Infrastructure(fresh.database_url, fresh.infra.kafka_bootstrap_servers)
        env = service_env(os.environ, infra, ports, work)
        env["HEALTHMESH_TOPIC_PREFIX"] = fresh.topics.prefix
        say("starting auth, preferences, normalizer, connectors, gateway")
        services = start_services(env, work, ports)
        stack.callback(stop_services, services)
        watched = watch_list(fresh.infra, services)
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_rss(watched, stop))
        cpu_before = cpu_snapshot(watched)
        gateway = next(s for s in services if s.name == "gateway")
        try:
            with profiling(options.profile_with, services, work / "profiles") as profiles:
                result = await run_import(
                    gateway.url, fresh.database_url, export, services, watched, options.timeout
                )
        finally:
            stop.set()
            await sampler
        report = make_report(options, result, watched, cpu_before, baseline)
        for path in profiles:
            if path.exists():
                report.profiles[path.stem] = read_profile(path)
                say(f"py-spy: {path}")
        return report
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    logging.getLogger("faststream.access.kafka").disabled = True
    stop_on_sigterm()
    export = export_zip(options)
    work = Path(tempfile.mkdtemp(prefix="healthmesh-bench-apple-"))
    say(f"data and logs in {work}")
    try:
        baseline = run_baseline(export, work) if options.baseline else None
        report = asyncio.run(run(options, export, work, baseline))
    except KeyboardInterrupt:
        print(f"interrupted; logs kept in {work / 'logs'}", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"benchmark failed: {exc}; logs kept in {work / 'logs'}", file=sys.stderr)
        raise
    print()
    print(table(report))
    if options.json_path:
        document = asdict(report)
        document.update(passed=report.passed, ratio=report.ratio)
        options.json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if report.passed and options.profile_with is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work / 'logs'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
