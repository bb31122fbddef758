"""Benchmark: the first backfill of many users' provider connections, all at once.

What is measured, and why:
- Whether the connectors stay inside the providers' rate limits (no 429 at all) while many
  backfills run together: the limits are shared per application at WHOOP, Withings and Strava,
  so the cost of a backfill grows with the number of users, not only with the history length.
- How many provider calls a backfill costs against the fewest the providers' page sizes and range
  limits allow for the data found (sync_jobs.min_calls), counted by the simulator itself.
- How long the backfill takes here (limits raised by --limit-scale on both sides, so the run
  measures our machinery, not the providers' patience), and the projection of how long it must
  take at least at the real limits (calls over the binding per-application limit; per-user limits
  do not add up across users).
- Raw events published per second, against a baseline measured in the same run on the same broker:
  the same number (at most 100,000, in the same mix) of similar envelopes published directly
  with the syncer's own publish_many (acks=all, a few in flight per worker). The machine is
  shared and noisy, so only the ratio to that baseline is comparable between runs.
- The connectors process's peak resident memory.

Everything runs as real processes: embedded PostgreSQL and Tansu (or DATABASE_URL /
KAFKA_BOOTSTRAP_SERVERS, with a fresh database and topic prefix for the run), the provider
simulator, auth, and the connectors (started only once every user is connected, so the backfills
all start together). Exits 1 if any backfill did not end `done` or any 429 was received.

    uv run python benchmarks/sync_backfill.py --users 3 --days 30
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import asyncpg
import httpx
import orjson
import psutil
from benchkit import fresh_run, rss_bytes, say, stop_on_sigterm
from faststream.kafka import KafkaMessage
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import PublishFailed, create_topics, make_broker, publish_many
from healthmesh.common.topics import Topics
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.stack import (
    SERVICES,
    Infrastructure,
    Service,
    service_env,
    start_service,
    start_simulator,
    wait_ready,
)
from healthmesh.simulator.settings import Settings as SimulatorSettings

PROVIDERS = ("oura", "whoop", "fitbit", "withings", "strava")
END_STATES = ("done", "failed", "reauth_required", "cancelled")
PASSWORD = "correct horse battery staple"  # noqa: S105 - a benchmark user's password
DANCES_AT_ONCE = 20
PUBLISH_WINDOW = 100
"""Envelopes per publish_many call in the baseline (a page's worth, as the syncer publishes)."""
BASELINE_MAX_EVENTS = 100_000
"""The baseline is a rate: this many envelopes measure it well and keep the in-memory broker
small (it holds every message)."""
SAMPLES_PER_PROVIDER = 100


@dataclass(frozen=True)
class RealLimit:
    """One of a provider's real limits, as the simulator's defaults state them."""

    setting: str
    seconds: int
    per_user: bool = False

    @property
    def capacity(self) -> int:
        return int(SimulatorSettings.model_fields[self.setting].default)


REAL_LIMITS = {
    "oura": (RealLimit("oura_limit_5min", 300, per_user=True),),
    "whoop": (RealLimit("whoop_limit_minute", 60), RealLimit("whoop_limit_day", 86_400)),
    "fitbit": (RealLimit("fitbit_limit_user_minute", 60, per_user=True),),
    "withings": (RealLimit("withings_limit_minute", 60),),
    "strava": (  # a backfill only reads, so the read limits (the tighter ones) bind
        RealLimit("strava_limit_15min", 900),
        RealLimit("strava_limit_day", 86_400),
        RealLimit("strava_read_limit_15min", 900),
        RealLimit("strava_read_limit_day", 86_400),
    ),
}


@dataclass(frozen=True)
class Options:
    users: int
    days: int
    providers: tuple[str, ...]
    limit_scale: float
    concurrency: int
    timeout: float
    json_path: Path | None


@dataclass
class ProviderResult:
    provider: str
    jobs: int
    done: int
    calls: int
    """Data calls the simulator answered (token calls left out)."""
    job_calls: int
    """The same, as the connectors counted them (sum of sync_jobs.calls)."""
    min_calls: int
    rate_limited: int
    """429s the simulator sent."""
    events: int
    wall_s: float | None
    """From the connectors being ready to this provider's last backfill finishing."""
    real_minutes: float
    binding_limit: str

    @property
    def calls_per_min(self) -> float | None:
        return self.calls / self.min_calls if self.min_calls else None

    @property
    def events_per_s(self) -> float | None:
        return self.events / self.wall_s if self.wall_s else None


@dataclass(frozen=True)
class Baseline:
    events: int
    failed: int
    """Publishes the broker client gave up on (not counted in events_per_s)."""
    events_per_s: float
    mean_event_bytes: float
    """Of the envelopes published (JSON), weighted as they were published."""


@dataclass
class Report:
    options: dict[str, Any]
    providers: list[ProviderResult]
    total: ProviderResult
    finished_in_time: bool
    peak_rss_mb: float
    baseline: Baseline | None
    sync_fraction_of_baseline: float | None
    simulator_endpoints: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return (
            self.finished_in_time
            and self.total.done == self.total.jobs == self.options["users"] * len(self.providers)
            and self.total.rate_limited == 0
        )


# --- options -----------------------------------------------------------------------------------


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--days", type=int, default=365, help="backfill_days of the connectors")
    parser.add_argument("--providers", default=",".join(PROVIDERS))
    parser.add_argument(
        "--limit-scale",
        type=float,
        default=20,
        help="every provider limit is multiplied by this, in the simulator and the connectors",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="sync workers (connectors)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait for jobs")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args(argv)
    providers = tuple(p.strip() for p in str(args.providers).split(",") if p.strip())
    unknown = set(providers) - set(PROVIDERS)
    if unknown:
        parser.error(f"unknown providers: {', '.join(sorted(unknown))}")
    return Options(
        users=int(args.users),
        days=int(args.days),
        providers=providers,
        limit_scale=float(args.limit_scale),
        concurrency=int(args.concurrency),
        timeout=float(args.timeout),
        json_path=args.json,
    )


# --- infrastructure and processes --------------------------------------------------------------


def simulator_env(env: Mapping[str, str], options: Options) -> dict[str, str]:
    """History a bit longer than the backfill; every limit raised by the same scale."""
    raised = {
        f"HEALTHMESH_SIMULATOR_{name.upper()}": str(max(1, int(info.default * options.limit_scale)))
        for name, info in SimulatorSettings.model_fields.items()
        if "_limit_" in name
    }
    return {**env, **raised, "HEALTHMESH_SIMULATOR_DAYS": str(options.days + 35)}


def connectors_env(env: Mapping[str, str], options: Options) -> dict[str, str]:
    return {
        **env,
        "HEALTHMESH_BACKFILL_DAYS": str(options.days),
        "HEALTHMESH_RATE_LIMIT_SCALE": str(options.limit_scale),
        "HEALTHMESH_SYNC_CONCURRENCY": str(options.concurrency),
    }


def start_waited(
    name: str, env: Mapping[str, str], port: int, work: Path, stack: contextlib.AsyncExitStack
) -> Service:
    service = start_service(name, env, port, work / "logs")
    stack.callback(service.process.stop)
    wait_ready(service, timeout=120)
    return service


# --- users and connections ---------------------------------------------------------------------


def expect(answer: httpx.Response, *statuses: int) -> httpx.Response:
    if answer.status_code not in statuses:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path}: "
            f"{answer.status_code} {answer.text[:300]}"
        )
    return answer


async def sign_up(auth: httpx.AsyncClient, email: str) -> dict[str, str]:
    expect(await auth.post("/v1/users", json={"email": email, "password": PASSWORD}), 201)
    token = expect(
        await auth.post("/v1/auth/token", data={"username": email, "password": PASSWORD}), 200
    )
    return {"authorization": f"Bearer {token.json()['access_token']}"}


async def connect(
    auth: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    headers: dict[str, str],
    provider: str,
    sim_user: str,
) -> None:
    """The OAuth dance as a browser walks it, with auth's callback called on auth directly."""
    started = expect(await auth.post(f"/v1/connections/{provider}", headers=headers), 200)
    authorize = started.json()["authorize_url"]
    approved = expect(
        await browser.get(f"{authorize}&{urlencode({'sim_user': sim_user})}"), 302, 303
    )
    callback = urlsplit(approved.headers["location"])
    expect(await auth.get(f"{callback.path}?{callback.query}"), 200)


async def connect_users(auth_url: str, options: Options, run_id: str) -> None:
    gate = asyncio.Semaphore(DANCES_AT_ONCE)

    async def one_user(index: int) -> None:
        name = f"bench-{run_id}-{index:05d}"
        async with gate:
            headers = await sign_up(auth, f"{name}@example.com")
            for provider in options.providers:
                await connect(auth, browser, headers, provider, name)

    async with (
        httpx.AsyncClient(base_url=auth_url, timeout=120) as auth,
        httpx.AsyncClient(timeout=120) as browser,
    ):
        await asyncio.gather(*(one_user(i) for i in range(options.users)))


async def wait_outbox_drained(db: asyncpg.Connection, connections: int) -> None:
    """Every connection stored and its connection.connected event handed to the broker."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stored = await db.fetchval("SELECT count(*) FROM auth.connections")
        pending = await db.fetchval("SELECT count(*) FROM auth.outbox")
        if stored == connections and pending == 0:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("auth did not publish every connection.connected within 120 s")


async def simulator_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as sim:
        return dict(expect(await sim.get("/_control/stats"), 200).json())


# --- waiting for the backfills -----------------------------------------------------------------


async def wait_for_jobs(
    db: asyncpg.Connection, expected: int, connectors: Service, wait_s: float
) -> tuple[bool, int]:
    """Until every backfill is in an end state (True) or the timeout (False); and peak RSS."""
    process = psutil.Process(connectors.process.pid)
    peak = 0
    deadline = time.monotonic() + wait_s
    next_note = time.monotonic() + 10
    while True:
        peak = max(peak, rss_bytes(process))
        rows = await db.fetch(
            """SELECT status, count(*) AS n, sum(events) AS events FROM connectors.sync_jobs
               WHERE reason = 'connect' GROUP BY status"""
        )
        counts = {r["status"]: int(r["n"]) for r in rows}
        ended = sum(n for status, n in counts.items() if status in END_STATES)
        if ended >= expected and ended == sum(counts.values()):
            return True, peak
        if not connectors.process.alive():
            raise RuntimeError(f"the connectors exited; see {connectors.process.log_path}")
        if time.monotonic() > deadline:
            return False, peak
        if time.monotonic() > next_note:
            events = sum(int(r["events"] or 0) for r in rows)
            say(f"  jobs {counts}, events {events}, connectors RSS {peak / 2**20:.0f} MB")
            next_note += 10
        await asyncio.sleep(0.5)


# --- results -----------------------------------------------------------------------------------


def data_calls(before: dict[str, Any], after: dict[str, Any], provider: str) -> int:
    """Calls the simulator counted during the sync, minus its token-endpoint calls (refreshes)."""

    def total(stats: dict[str, Any], key: str) -> int:
        return sum(int(n) for n in stats[key].get(provider, {}).values())

    calls = total(after, "calls") - total(before, "calls")
    return calls - (total(after, "token_calls") - total(before, "token_calls"))


def real_minutes(provider: str, calls: int, busiest_user_calls: int) -> tuple[float, str]:
    """The least time these calls take at the provider's real limits, and the limit that binds:
    per application, all calls share it; per user, only the busiest user's calls count."""
    best = (0.0, "-")
    for limit in REAL_LIMITS[provider]:
        n = busiest_user_calls if limit.per_user else calls
        minutes = n * limit.seconds / limit.capacity / 60
        best = max(
            best,
            (
                minutes,
                f"{limit.capacity}/{limit.seconds}s" + (" per user" if limit.per_user else ""),
            ),
        )
    return best


async def provider_results(
    db: asyncpg.Connection,
    t0: datetime,
    before: dict[str, Any],
    after: dict[str, Any],
    providers: tuple[str, ...],
) -> list[ProviderResult]:
    rows = {
        r["provider"]: r
        for r in await db.fetch(
            """SELECT provider, count(*) AS jobs, count(*) FILTER (WHERE status = 'done') AS done,
                      coalesce(sum(calls), 0) AS calls, coalesce(sum(min_calls), 0) AS min_calls,
                      coalesce(sum(events), 0) AS events, coalesce(max(calls), 0) AS busiest,
                      extract(epoch FROM max(finished_at) - $1)::float8 AS wall_s
               FROM connectors.sync_jobs WHERE reason = 'connect' GROUP BY provider""",
            t0,
        )
    }
    results = []
    for provider in providers:
        row = rows.get(provider)
        calls = data_calls(before, after, provider)
        minutes, binding = real_minutes(provider, calls, int(row["busiest"]) if row else 0)
        limited = int(after["rate_limited"].get(provider, 0)) - int(
            before["rate_limited"].get(provider, 0)
        )
        results.append(
            ProviderResult(
                provider=provider,
                jobs=int(row["jobs"]) if row else 0,
                done=int(row["done"]) if row else 0,
                calls=calls,
                job_calls=int(row["calls"]) if row else 0,
                min_calls=int(row["min_calls"]) if row else 0,
                rate_limited=limited,
                events=int(row["events"]) if row else 0,
                wall_s=row["wall_s"] if row else None,
                real_minutes=minutes,
                binding_limit=binding,
            )
        )
    return results


def totals(results: list[ProviderResult]) -> ProviderResult:
    walls = [r.wall_s for r in results if r.wall_s is not None]
    slowest = max(results, key=lambda r: r.real_minutes)
    return ProviderResult(
        provider="total",
        jobs=sum(r.jobs for r in results),
        done=sum(r.done for r in results),
        calls=sum(r.calls for r in results),
        job_calls=sum(r.job_calls for r in results),
        min_calls=sum(r.min_calls for r in results),
        rate_limited=sum(r.rate_limited for r in results),
        events=sum(r.events for r in results),
        wall_s=max(walls) if walls else None,
        real_minutes=slowest.real_minutes,  # providers' limits are independent: they overlap
        binding_limit=f"{slowest.provider}",
    )


# --- the baseline ------------------------------------------------------------------------------


async def sample_envelopes(
    bootstrap: str, topics: Topics, wanted: dict[str, int], wait_s: float = 60
) -> dict[str, list[dict[str, Any]]]:
    """Up to `wanted[provider]` raw envelopes the sync published, read back from raw.<provider>."""
    samples: dict[str, list[dict[str, Any]]] = {p: [] for p in wanted}
    broker = make_broker(bootstrap, TracerProvider())

    @broker.subscriber(
        *(topics.raw(p) for p in wanted),
        group_id=f"bench-{uuid.uuid4().hex}",
        auto_offset_reset="earliest",
    )
    async def _sample(msg: KafkaMessage) -> None:
        envelope = orjson.loads(msg.body)
        kept = samples.setdefault(str(envelope.get("source")), [])
        if len(kept) < SAMPLES_PER_PROVIDER:
            kept.append(envelope)

    await broker.start()
    try:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if all(len(samples[p]) >= n for p, n in wanted.items()):
                break
            await asyncio.sleep(0.2)
    finally:
        await broker.stop()
    return samples


async def publish_baseline(
    bootstrap: str, topic: str, envelopes: list[dict[str, Any]], concurrency: int
) -> tuple[float, int]:
    """Publish `envelopes` with the syncer's own `publish_many` (acks=all, a few in flight per
    worker, several workers at once); return events acknowledged per second, and the envelopes
    of batches that failed."""
    windows = iter(
        [envelopes[i : i + PUBLISH_WINDOW] for i in range(0, len(envelopes), PUBLISH_WINDOW)]
    )
    broker = make_broker(bootstrap, TracerProvider())
    await broker.start()
    failed = 0

    async def publish(window: list[dict[str, Any]]) -> None:
        nonlocal failed
        try:
            await publish_many(broker, topic, str(window[0]["user_id"]).encode(), window)
        except PublishFailed:
            failed += len(window)

    async def worker() -> None:
        for window in windows:  # one shared iterator: each window is taken once
            await publish(window)

    try:
        await publish(envelopes[:PUBLISH_WINDOW])  # warm-up, untimed: metadata, connections
        failed = 0
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
        return (len(envelopes) - failed) / (time.perf_counter() - started), failed
    finally:
        await broker.stop()


async def measure_baseline(
    bootstrap: str, topics: Topics, results: list[ProviderResult], concurrency: int
) -> Baseline | None:
    counts = {r.provider: r.events for r in results}
    wanted = {p: min(n, SAMPLES_PER_PROVIDER) for p, n in counts.items() if n}
    if not wanted:
        return None
    samples = await sample_envelopes(bootstrap, topics, wanted)
    pooled = [e for kept in samples.values() for e in kept]
    if not pooled:
        return None
    envelopes = [
        (samples.get(p) or pooled)[i % len(samples.get(p) or pooled)]
        for p, n in counts.items()
        for i in range(n * BASELINE_MAX_EVENTS // max(BASELINE_MAX_EVENTS, sum(counts.values())))
    ]
    topic = topics.name("bench.baseline")
    await create_topics(bootstrap, [topic])
    rate, failed = await publish_baseline(bootstrap, topic, envelopes, concurrency)
    sizes = {id(e): len(orjson.dumps(e)) for e in pooled}
    mean_bytes = sum(sizes[id(e)] for e in envelopes) / len(envelopes)
    return Baseline(len(envelopes), failed, rate, mean_bytes)


# --- the report --------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table(report: Report) -> str:
    head = (
        f"{'provider':<9} {'done/jobs':>9} {'calls':>8} {'(jobs)':>8} {'min':>8} {'c/min':>6} "
        f"{'429s':>5} {'wall s':>8} {'events':>9} {'ev/s':>8} {'real-limit min':>15}  binding"
    )
    lines = [head, "-" * len(head)]
    for r in [*report.providers, report.total]:
        lines.append(
            f"{r.provider:<9} {f'{r.done}/{r.jobs}':>9} {r.calls:>8,} {r.job_calls:>8,} "
            f"{r.min_calls:>8,} {fmt(r.calls_per_min, 2):>6} {r.rate_limited:>5} "
            f"{fmt(r.wall_s):>8} {r.events:>9,} {fmt(r.events_per_s, 0):>8} "
            f"{fmt(r.real_minutes):>15}  {r.binding_limit}"
        )
    lines += [
        "",
        baseline_line(report),
        f"connectors peak RSS: {report.peak_rss_mb:.0f} MB",
        f"finished within the timeout: {report.finished_in_time}; "
        f"{'PASS' if report.passed else 'FAIL'}",
    ]
    return "\n".join(lines)


def baseline_line(report: Report) -> str:
    if report.baseline is None:
        return "baseline: nothing was published, nothing to compare"
    b = report.baseline
    return (
        f"baseline (same run, {b.events:,} envelopes of {b.mean_event_bytes / 1024:.1f} kB on "
        f"average published straight to the broker): {b.events_per_s:,.0f} events/s; "
        f"the sync reached {fmt(report.sync_fraction_of_baseline, 3)} of it"
        + (f" ({b.failed:,} baseline publishes failed)" if b.failed else "")
    )


def write_json(report: Report, path: Path) -> None:
    document = asdict(report)
    document["passed"] = report.passed
    for row in [*document["providers"], document["total"]]:
        match = next(r for r in [*report.providers, report.total] if r.provider == row["provider"])
        row["calls_per_min"] = match.calls_per_min
        row["events_per_s"] = match.events_per_s
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")


# --- the run -----------------------------------------------------------------------------------


async def run(options: Options, work: Path) -> Report:
    run_id = uuid.uuid4().hex[:8]
    async with contextlib.AsyncExitStack() as stack:
        say(f"data and logs in {work}")
        run = await fresh_run(stack, work, f"bench{run_id}")
        infra, database_url, topics = run.infra, run.database_url, run.topics
        say(
            f"infrastructure: {infra.database_url} (run database {database_url.rsplit('/', 1)[1]})"
            f", kafka {infra.kafka_bootstrap_servers}, topics {topics.prefix}*"
        )

        ports = {name: free_port() for name in SERVICES}
        bench_infra = Infrastructure(database_url, infra.kafka_bootstrap_servers)
        env = service_env(os.environ, bench_infra, ports, work)
        env["HEALTHMESH_TOPIC_PREFIX"] = topics.prefix
        simulator = start_simulator(simulator_env(env, options), free_port(), work / "logs")
        stack.callback(simulator.process.stop)
        env["HEALTHMESH_PROVIDER_BASE_URL"] = simulator.url
        auth = start_waited("auth", env, ports["auth"], work, stack)
        say(f"simulator {simulator.url}, auth {auth.url}")

        started = time.monotonic()
        await connect_users(auth.url, options, run_id)
        expected = options.users * len(options.providers)
        db = await asyncpg.connect(database_url)
        try:
            await wait_outbox_drained(db, expected)
            say(
                f"{options.users} users connected to {len(options.providers)} providers "
                f"in {time.monotonic() - started:.1f}s"
            )
            before = await simulator_stats(simulator.url)
            connectors = start_waited(
                "connectors", connectors_env(env, options), ports["connectors"], work, stack
            )
            t0: datetime = await db.fetchval("SELECT clock_timestamp()")
            say(f"connectors ready at {connectors.url}; waiting for {expected} backfills")
            in_time, peak = await wait_for_jobs(db, expected, connectors, options.timeout)
            after = await simulator_stats(simulator.url)
            results = await provider_results(db, t0, before, after, options.providers)
        finally:
            await db.close()
        connectors.process.stop()  # after a timeout it would still be syncing: not in the baseline
        total = totals(results)
        say(
            f"backfills {'ended' if in_time else 'timed out'}; measuring the baseline "
            f"({total.events:,} events)"
        )
        try:
            baseline = await measure_baseline(
                infra.kafka_bootstrap_servers, topics, results, options.concurrency
            )
        except Exception as exc:  # the sync's results still stand
            say(f"the baseline could not be measured: {exc!r}")
            baseline = None
        sync_rate = total.events_per_s
        return Report(
            options={**asdict(options), "json_path": str(options.json_path or "")},
            providers=results,
            total=total,
            finished_in_time=in_time,
            peak_rss_mb=peak / 2**20,
            baseline=baseline,
            sync_fraction_of_baseline=(
                sync_rate / baseline.events_per_s if sync_rate and baseline else None
            ),
            simulator_endpoints={p: dict(after["calls"].get(p, {})) for p in options.providers},
        )
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    logging.getLogger("faststream.access.kafka").disabled = True  # our brokers' chatter
    stop_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="healthmesh-bench-"))
    try:
        report = asyncio.run(run(options, work))
    except KeyboardInterrupt:
        print(f"interrupted; logs kept in {work / 'logs'}", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"benchmark failed: {exc}; logs kept in {work / 'logs'}", file=sys.stderr)
        raise
    print()
    print(table(report))
    if options.json_path:
        write_json(report, options.json_path)
    if report.passed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work / 'logs'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
