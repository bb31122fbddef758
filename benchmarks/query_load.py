"""Benchmark: the query API under load, on a year of many users' data loaded through the
normalizer's own write path.

What runs, and why:
- Data (`--scale 1`): 200 users with a year of hourly steps and heart rate from Fitbit and from
  Apple Health (the watch charges 2 h a day: those hours only Fitbit has, so resolving falls
  back per hour), a night of sleep from Fitbit, Withings and Apple Health and a morning weigh-in
  on each of the three every day; and 5 heavy users with all that plus a year of Oura
  minute-level heart rate. About 10.4 M samples. Every user lives in an IANA zone (DST too).
  `--scale` multiplies the users, heavy users and days, for a quick look.
- Users sign up through the real auth service; their ids key the data.
- Raw events are built as the connectors publish them: provider answers (Google Health
  `dataPoints`, Withings `measuregrps` / sleep `series`, Oura heart-rate `data`) go through the
  connectors' own `read_page` and `envelopes`; Apple Health export items (as the importer's
  reader yields them) are published in batches of two weeks, whole nights kept together, with an
  import id. Two worker processes build them; all are published to the raw topics first, then
  `--processes` (2) normalizer processes consume them. Load rate = samples stored / seconds from
  the first raw event committed to the last (normalizer.raw_archive, written in the same
  transactions); the samples stored are checked against the count generated, and no record may
  be rejected. Then VACUUM ANALYZE, as autovacuum would have done on a database that old.
- `--reuse DIR` keeps the loaded PostgreSQL data directory (and the users) in DIR: a later run
  with the same scale skips the load, unless the normalizer's or the connectors' provider code
  changed since (a fingerprint of their files is kept with it).
- Query phases: auth, preferences and gateway as real processes (the normalizers stopped; the
  gateway with `--gateway-workers` (2) worker processes, one a core).
  `--clients` (50) concurrent clients, each with its own httpx client and connection, for
  `--warmup` s (not counted), then `--duration` s, each request one of:
      summary_30d     GET /v1/summary/daily, 30 days, a random user                 40 %
      steps_month     GET /v1/metrics/steps?resolution=day, 30 days, a random user  25 %
      hr_year         GET /v1/metrics/heart_rate?resolution=day, a year, a random user  20 %
      hr_year_heavy   the same for a random heavy user                              15 %
  First back to back (each client sends its next request when the answer arrives): the
  capacity, in requests/s. Then one open-loop phase per `--rates` value (25 and 50 by
  default): the clients together offer that many requests/s at random (Poisson) times, each
  timed from when it was due, so a client still waiting sends late and the wait counts. Per
  kind: requests/s, p50/p95/p99 of the 2xx answers, non-2xx answers by status. Peak RSS and CPU
  of every process (the benchmark's own clients included: they share the 2 cores).

Goals (exit 1 when missed): p95 < 50 ms for summary_30d and < 100 ms for hr_year_heavy, judged
on the open-loop phases (back to back, 50 clients always have 50 requests in flight, so the
latency is 50 over the throughput, by Little's law: that phase measures capacity, not
latency); no 5xx answer nor transport error in any phase, every sample loaded. A kind answered
only with 4xx (e.g. 404 before /v1/summary/daily exists) has no latency to judge: reported as
not measured, not failed.

    uv run python benchmarks/query_load.py --scale 0.02            # a quick look
    uv run python benchmarks/query_load.py --reuse .data/bench/query-load
    uv run python benchmarks/query_load.py --reuse .data/bench/query-load --rates 50,100,200
"""

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import psutil
from benchkit import fresh_run, say, stop_on_sigterm
from faststream.kafka import KafkaBroker
from opentelemetry.sdk.trace import TracerProvider

from healthmesh.common.broker import create_topics, make_broker
from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.ids import content_hash, raw_event_id
from healthmesh.common.topics import Topics
from healthmesh.connectors.fetching import envelopes
from healthmesh.connectors.providers import fitbit, oura, withings
from healthmesh.connectors.providers.base import Provider
from healthmesh.devstack.databases import with_database
from healthmesh.devstack.processes import free_port
from healthmesh.devstack.stack import (
    SERVICES,
    Infrastructure,
    Service,
    service_env,
    start_infrastructure,
    start_service,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[1]
DATA_VERSION = 1
"""Bump when the generated data changes: a kept database of an older version is reloaded."""
FINGERPRINTED = (
    ROOT / "services" / "normalizer" / "src",
    ROOT / "services" / "connectors" / "src" / "healthmesh" / "connectors" / "providers",
    ROOT / "services" / "connectors" / "src" / "healthmesh" / "connectors" / "fetching.py",
)
PASSWORD = "correct horse battery staple"  # noqa: S105 - the benchmark users' password
FIRST_DAY = date(2025, 1, 1)
WINDOW_DAYS = 14
"""Days generated at once: one Google/Oura answer page, one Apple Health batch (~700 items)."""
ZONES = (
    "Europe/Paris",
    "America/New_York",
    "Asia/Tokyo",
    "Europe/London",
    "America/Los_Angeles",
    "Australia/Sydney",
    "America/Sao_Paulo",
    "UTC",
)
CHARGING_HOURS = (19, 20)
"""Local hours (at the zone's January offset) the watch is charging: no Apple Health data."""
STEPS_BY_HOUR = (5, 0, 0, 0, 0, 10, 80, 400, 700, 500, 450, 600,
                 800, 500, 450, 500, 700, 900, 600, 400, 250, 150, 60, 20)  # fmt: skip
"""A typical day's steps per local hour."""
KINDS = (("summary_30d", 40), ("steps_month", 25), ("hr_year", 20), ("hr_year_heavy", 15))
GOALS_MS = {"summary_30d": 50.0, "hr_year_heavy": 100.0}
SLICE_S = 10.0
"""p95 latency goals (issue 7), per request kind."""
GENERATORS = 2
"""Worker processes building the raw events (the machine has 2 cores; nothing else runs then)."""
POLL_S = 1.0
SAMPLE_S = 0.25
NOTE_EVERY_S = 30.0
MB = 2**20
FITBIT_TRACKER = {
    "recordingMethod": "PASSIVELY_MEASURED",
    "device": {"displayName": "Charge 6"},
    "platform": "FITBIT",
}
FITBIT_SCALE = {"recordingMethod": "PASSIVELY_MEASURED", "device": {"displayName": "Aria Air"}}
WATCH, PHONE = "Bench Apple Watch", "Bench iPhone"


@dataclass(frozen=True)
class Options:
    scale: float
    clients: int
    duration_s: float
    warmup_s: float
    processes: int
    reuse: Path | None
    load_timeout_s: float
    seed: int
    json_path: Path | None
    rates: tuple[float, ...]
    """Offered requests/s of the open-loop phases, after the back-to-back one."""
    gateway_workers: int


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiplies users (200), heavy users (5), days"
    )
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before, not counted")
    parser.add_argument("--processes", type=int, default=2, help="normalizer processes (load)")
    parser.add_argument(
        "--reuse", type=Path, default=None, metavar="DIR", help="keep the loaded database in DIR"
    )
    parser.add_argument("--load-timeout", type=float, default=4 * 3600, help="seconds")
    parser.add_argument("--seed", type=int, default=7, help="of the data and the request mix")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--rates",
        default="25,50",
        help="offered requests/s of the open-loop phases after the back-to-back one, comma "
        "separated ('' for none); the goals are judged on these when given",
    )
    parser.add_argument(
        "--gateway-workers", type=int, default=2, help="the gateway's HEALTHMESH_WORKERS"
    )
    args = parser.parse_args(argv)
    if args.scale <= 0 or args.clients < 1 or args.duration <= 0:
        parser.error("--scale, --clients and --duration must be positive")
    return Options(
        scale=float(args.scale),
        clients=int(args.clients),
        duration_s=float(args.duration),
        warmup_s=float(args.warmup),
        processes=int(args.processes),
        reuse=args.reuse.resolve() if args.reuse else None,
        load_timeout_s=float(args.load_timeout),
        seed=int(args.seed),
        json_path=args.json,
        rates=tuple(float(r) for r in args.rates.split(",") if r.strip()),
        gateway_workers=int(args.gateway_workers),
    )


# --- the plan: who, how many days ----------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    users: int
    """Regular users."""
    heavy: int
    """Heavy users (on top of the regular ones)."""
    days: int
    first_day: date = FIRST_DAY

    @staticmethod
    def of(scale: float) -> "Plan":
        return Plan(
            users=max(2, round(200 * scale)),
            heavy=max(1, round(5 * scale)),
            days=max(7, round(365 * scale)),
        )

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)

    @property
    def tag(self) -> str:
        return f"u{self.users}h{self.heavy}d{self.days}"


@dataclass(frozen=True)
class Person:
    index: int
    id: uuid.UUID
    email: str
    zone: str
    heavy: bool


def fingerprint(plan: Plan) -> str:
    """Of the code that turns the generated data into rows, and of the data's plan."""
    digest = hashlib.sha256(f"{DATA_VERSION}:{plan}".encode())
    for root in FINGERPRINTED:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in paths:
            if path.is_file() and path.suffix in (".py", ".sql"):
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# --- the data, as each source sends it -----------------------------------------------------------


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _offset_s(moment: datetime, zone: ZoneInfo) -> int:
    offset = moment.astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _apple_time(moment: datetime, zone: ZoneInfo) -> str:
    """The export's "2025-01-01 07:15:00 +0100"."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %z")


def _published(
    provider: Provider,
    resource_name: str,
    user: uuid.UUID,
    body: dict[str, Any],
    start: datetime,
    end: datetime,
) -> list[RawPayloadReceived]:
    """The raw events a sync publishes for one answer page of `resource_name` over [start, end):
    the connector's own page reader and envelopes."""
    resource = next(r for r in provider.resources if r.name == resource_name)
    page = resource.read_page(body, resource.first_call(start, end))
    return envelopes(provider, resource, user, page.items, datetime.now(UTC))


@dataclass
class Generated:
    """One window of one person's data: raw events per raw topic, and the samples they map to."""

    events: dict[str, list[RawPayloadReceived]] = field(default_factory=dict)
    samples: int = 0

    def add(self, source: str, events: list[RawPayloadReceived], samples: int) -> None:
        self.events.setdefault(source, []).extend(events)
        self.samples += samples


@dataclass
class AppleItems:
    """Export items as the importer's reader yields them (XML attributes as text)."""

    zone: ZoneInfo
    items: list[dict[str, Any]] = field(default_factory=list)

    def record(
        self,
        kind: str,
        unit: str | None,
        value: str,
        start: datetime,
        end: datetime,
        source: str = WATCH,
    ) -> None:
        item: dict[str, Any] = {
            "kind": "record",
            "line": len(self.items) + 2,
            "type": kind,
            "sourceName": source,
            "sourceVersion": "11.0",
            "creationDate": _apple_time(end, self.zone),
            "startDate": _apple_time(start, self.zone),
            "endDate": _apple_time(end, self.zone),
            "value": value,
            "metadata": {},
        }
        if unit is not None:
            item["unit"] = unit
        self.items.append(item)


@dataclass(frozen=True)
class Span:
    """The UTC days [start, end) of one window of one person, and their random numbers."""

    person: Person
    zone: ZoneInfo
    start: datetime
    days: int
    rng: random.Random

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


def hourly(
    span: Span, charging: frozenset[int], apple: AppleItems
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A point per UTC hour of Fitbit steps (an hour's interval) and heart rate (an instant), and
    the same from the Apple Watch except while it charges. Returns the Google answers' steps
    and heart-rate points."""
    rng, zone = span.rng, span.zone
    steps_points: list[dict[str, Any]] = []
    heart_points: list[dict[str, Any]] = []
    for hour in range(span.days * 24):
        at = span.start + timedelta(hours=hour)
        then = at + timedelta(hours=1)
        offset = f"{_offset_s(at, zone)}s"
        steps = int(STEPS_BY_HOUR[at.astimezone(zone).hour] * rng.uniform(0.6, 1.4)) + 3
        bpm = 56 + steps // 30 + rng.randrange(8)
        interval = {
            "startTime": _z(at),
            "startUtcOffset": offset,
            "endTime": _z(then),
            "endUtcOffset": f"{_offset_s(then, zone)}s",
        }
        count = str(int(steps * rng.uniform(0.95, 1.05)))
        steps_points.append(
            {"dataSource": FITBIT_TRACKER, "steps": {"interval": interval, "count": count}}
        )
        sample_time = {"physicalTime": _z(at + timedelta(minutes=30)), "utcOffset": offset}
        beats = str(bpm + rng.randrange(-2, 3))
        heart_points.append(
            {
                "dataSource": FITBIT_TRACKER,
                "heartRate": {"sampleTime": sample_time, "beatsPerMinute": beats},
            }
        )
        if at.hour in charging:
            continue
        count = str(int(steps * rng.uniform(0.95, 1.05)))
        apple.record("HKQuantityTypeIdentifierStepCount", "count", count, at, then)
        beat_at = at + timedelta(minutes=10)
        beats = str(bpm + rng.randrange(-2, 3))
        apple.record("HKQuantityTypeIdentifierHeartRate", "count/min", beats, beat_at, beat_at)
    return steps_points, heart_points


@dataclass
class Mornings:
    """The documents of a window's nights and weigh-ins, per source and resource."""

    fitbit_sleep: list[dict[str, Any]] = field(default_factory=list)
    fitbit_weight: list[dict[str, Any]] = field(default_factory=list)
    withings_sleep: list[dict[str, Any]] = field(default_factory=list)
    withings_measures: list[dict[str, Any]] = field(default_factory=list)
    first_bed: datetime | None = None


def mornings(span: Span, apple: AppleItems) -> Mornings:
    """Each local day of the window: the night that ended that morning, as Fitbit, Withings
    (Sleep Analyzer) and Apple Health each saw it, and a weigh-in on a Withings scale, a Fitbit
    scale and typed into the iPhone."""
    rng, zone, person = span.rng, span.zone, span.person
    out = Mornings()
    weight = 62 + person.index % 30 + rng.random()
    for d in range(span.days):
        day = span.start.date() + timedelta(days=d)
        ordinal = day.toordinal()
        bed = datetime.combine(day - timedelta(days=1), day_time(22, 30), zone)
        bed = (bed + timedelta(minutes=rng.randrange(90))).astimezone(UTC)
        wake = datetime.combine(day, day_time(6, 15), zone)
        wake = (wake + timedelta(minutes=rng.randrange(75))).astimezone(UTC)
        out.first_bed = out.first_bed or bed
        in_bed = int((wake - bed).total_seconds())
        awake = 60 * rng.randrange(15, 45)
        deep, rem = in_bed // 6, in_bed // 5
        light = in_bed - awake - deep - rem
        stages = [("LIGHT", light, 6), ("DEEP", deep, 3), ("REM", rem, 4), ("AWAKE", awake, 7)]
        out.fitbit_sleep.append(
            {
                "name": f"users/me/dataTypes/sleep/dataPoints/night-{ordinal}",
                "dataSource": FITBIT_TRACKER,
                "sleep": {
                    "interval": {
                        "startTime": _z(bed),
                        "startUtcOffset": f"{_offset_s(bed, zone)}s",
                        "endTime": _z(wake),
                        "endUtcOffset": f"{_offset_s(wake, zone)}s",
                    },
                    "type": "STAGES",
                    "metadata": {"stagesStatus": "SUCCEEDED"},
                    "summary": {
                        "minutesInSleepPeriod": str(in_bed // 60),
                        "minutesAsleep": str((in_bed - awake) // 60),
                        "minutesAwake": str(awake // 60),
                        "stagesSummary": [
                            {"type": kind, "minutes": str(s // 60), "count": str(n)}
                            for kind, s, n in stages
                        ],
                    },
                },
            }
        )
        mat_bed, mat_wake = int(bed.timestamp()) + 120, int(wake.timestamp()) - 60
        out.withings_sleep.append(
            {
                "id": 4_000_000 + ordinal,
                "timezone": person.zone,
                "model": 32,
                "model_id": 63,
                "startdate": mat_bed,
                "enddate": mat_wake,
                "date": day.isoformat(),
                "created": mat_wake + 600,
                "modified": mat_wake + 600,
                "data": {
                    "total_timeinbed": in_bed - 180,
                    "total_sleep_time": in_bed - awake - 120,
                    "deepsleepduration": deep,
                    "lightsleepduration": light - 120,
                    "remsleepduration": rem,
                    "wakeupduration": awake,
                    "sleep_efficiency": round((in_bed - awake - 120) / (in_bed - 180), 2),
                },
            }
        )
        sleep, stage = "HKCategoryTypeIdentifierSleepAnalysis", "HKCategoryValueSleepAnalysis"
        core_start = bed + timedelta(minutes=10)
        core_end = core_start + timedelta(seconds=light)
        deep_end = core_end + timedelta(seconds=deep)
        apple.record(sleep, None, f"{stage}InBed", bed, wake, PHONE)
        apple.record(sleep, None, f"{stage}AsleepCore", core_start, core_end)
        apple.record(sleep, None, f"{stage}AsleepDeep", core_end, deep_end)
        apple.record(sleep, None, f"{stage}AsleepREM", deep_end, deep_end + timedelta(seconds=rem))

        weighed = datetime.combine(day, day_time(7, 20), zone)
        weight += rng.uniform(-0.15, 0.15)
        grams = round(weight * 1000)
        out.withings_measures.append(
            {
                "grpid": 3_000_000_000 + ordinal,
                "attrib": 0,
                "date": int(weighed.timestamp()),
                "created": int(weighed.timestamp()) + 40,
                "category": 1,
                "deviceid": "bench-body-plus",
                "measures": [
                    {"value": grams, "type": 1, "unit": -3, "algo": 3, "fm": 131},
                    {"value": 180 + person.index % 80, "type": 6, "unit": -1},
                ],
                "comment": None,
            }
        )
        out.fitbit_weight.append(
            {
                "name": f"users/me/dataTypes/weight/dataPoints/weight-{ordinal}",
                "dataSource": FITBIT_SCALE,
                "weight": {
                    "sampleTime": {
                        "physicalTime": _z(weighed + timedelta(minutes=3)),
                        "utcOffset": f"{_offset_s(weighed, zone)}s",
                    },
                    "weightGrams": grams + 100,
                },
            }
        )
        typed = weighed + timedelta(minutes=5)
        kilos = f"{(grams - 100) / 1000:.2f}"
        apple.record("HKQuantityTypeIdentifierBodyMass", "kg", kilos, typed, typed, PHONE)
    return out


def oura_heart_rate(span: Span) -> list[dict[str, Any]]:
    """Oura's heart-rate rows, one a minute (UTC timestamps, as Oura writes them)."""
    rows = []
    for d in range(span.days):
        day = (span.start + timedelta(days=d)).date().isoformat()
        for minute in range(1440):
            asleep = minute < 360
            rows.append(
                {
                    "bpm": (52 if asleep else 66) + int(span.rng.random() * 20),
                    "source": "sleep" if asleep else "awake",
                    "timestamp": f"{day}T{minute // 60:02d}:{minute % 60:02d}:00+00:00",
                }
            )
    return rows


def charging_hours(person: Person, plan: Plan) -> frozenset[int]:
    """The UTC hours the watch charges: CHARGING_HOURS at the zone's offset on the first day
    (the same UTC hours all year, so every day has exactly 22 hours of Apple data)."""
    january = datetime.combine(plan.first_day, day_time(), UTC)
    shift = _offset_s(january, ZoneInfo(person.zone)) // 3600
    return frozenset((hour - shift) % 24 for hour in CHARGING_HOURS)


def window_data(person: Person, plan: Plan, first: date, days: int, seed: int) -> Generated:
    """`days` days of a person's data from `first`, as raw events per source."""
    zone = ZoneInfo(person.zone)
    rng = random.Random(f"{seed}:{person.index}:{first.isoformat()}")  # noqa: S311 - data
    span = Span(person, zone, datetime.combine(first, day_time(), UTC), days, rng)
    start, end, user = span.start, span.end, person.id
    out = Generated()
    apple = AppleItems(zone)

    steps, heart = hourly(span, charging_hours(person, plan), apple)
    out.add(
        "fitbit",
        _published(fitbit.PROVIDER, "steps", user, {"dataPoints": steps}, start, end),
        len(steps),
    )
    out.add(
        "fitbit",
        _published(fitbit.PROVIDER, "heart-rate", user, {"dataPoints": heart}, start, end),
        len(heart),
    )

    docs = mornings(span, apple)
    # The nights begin the evening before the window: the listing's range starts there.
    since = docs.first_bed or start
    sleep_page = {"dataPoints": docs.fitbit_sleep}
    out.add("fitbit", _published(fitbit.PROVIDER, "sleep", user, sleep_page, since, end), 2 * days)
    weight_page = {"dataPoints": docs.fitbit_weight}
    out.add("fitbit", _published(fitbit.PROVIDER, "weight", user, weight_page, since, end), days)
    nights_page = {"series": docs.withings_sleep, "more": False, "offset": 0}
    out.add(
        "withings", _published(withings.PROVIDER, "sleep", user, nights_page, since, end), 2 * days
    )
    measures_page = {
        "updatetime": int(end.timestamp()),
        "timezone": person.zone,
        "measuregrps": docs.withings_measures,
        "more": 0,
        "offset": 0,
    }
    out.add(
        "withings",
        _published(withings.PROVIDER, "measures", user, measures_page, since, end),
        2 * days,
    )
    # One sample an Apple item: InBed gives none, but each night gives a session more.
    out.add("apple_health", [apple_batch(person, apple.items)], len(apple.items))
    if person.heavy:
        rows = oura_heart_rate(span)
        page = {"data": rows, "next_token": None}
        out.add("oura", _published(oura.PROVIDER, "heartrate", user, page, start, end), len(rows))
    return out


def apple_batch(person: Person, items: list[dict[str, Any]]) -> RawPayloadReceived:
    """One batch of the person's export import, as the importer publishes it: two weeks of
    items (about 700, 200 kB; the importer cuts at 2,000 items or 256 kB), whole nights in it."""
    payload: dict[str, Any] = {"records": items}
    return RawPayloadReceived(
        id=raw_event_id("apple_health", person.id, "export", content_hash(payload)),
        user_id=person.id,
        source="apple_health",
        resource="export",
        fetched_at=datetime.now(UTC),
        import_id=uuid.uuid5(person.id, "apple-health-export"),
        payload=payload,
    )


def person_windows(plan: Plan) -> Iterator[tuple[date, int]]:
    for first in range(0, plan.days, WINDOW_DAYS):
        yield plan.first_day + timedelta(days=first), min(WINDOW_DAYS, plan.days - first)


# --- the run's infrastructure --------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    infra: Infrastructure
    database_url: str
    topics: Topics
    manifest_path: Path | None
    loaded: dict[str, Any] | None
    """The kept run's manifest, when its database can be used as it is."""


async def open_stage(stack: contextlib.AsyncExitStack, options: Options, work: Path) -> Stage:
    """A fresh database and topic prefix (benchkit), or with --reuse a kept database in the
    reused directory (its topics fresh: Tansu keeps messages only in memory)."""
    plan = Plan.of(options.scale)
    if options.reuse is None:
        run = await fresh_run(stack, work, f"bench{uuid.uuid4().hex[:8]}")
        return Stage(run.infra, run.database_url, run.topics, None, None)
    options.reuse.mkdir(parents=True, exist_ok=True)
    external = {
        k: os.environ[k] for k in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS") if os.environ.get(k)
    }
    infra = start_infrastructure(
        external, options.reuse, pg_port=free_port(), kafka_port=free_port(), durable=False
    )
    stack.callback(infra.stop)
    name = f"querybench_{plan.tag}"
    manifest_path = options.reuse / f"{name}.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    admin = await asyncpg.connect(infra.database_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        usable = bool(exists) and manifest is not None
        if usable and manifest is not None and manifest.get("fingerprint") != fingerprint(plan):
            say("kept database: the normalizer or provider code changed since; loading again")
            usable = False
        if not usable:
            manifest_path.unlink(missing_ok=True)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    topics = Topics(prefix=f"bench{uuid.uuid4().hex[:8]}.")
    await create_topics(infra.kafka_bootstrap_servers, topics.all())
    return Stage(
        infra,
        with_database(infra.database_url, name),
        topics,
        manifest_path,
        manifest if usable else None,
    )


def services_env(stage: Stage, ports: dict[str, int], work: Path) -> dict[str, str]:
    infra = Infrastructure(stage.database_url, stage.infra.kafka_bootstrap_servers)
    env = service_env(os.environ, infra, ports, work)
    env["HEALTHMESH_TOPIC_PREFIX"] = stage.topics.prefix
    return env


def start_waited(
    stack: contextlib.AsyncExitStack, name: str, env: dict[str, str], port: int, logs: Path
) -> Service:
    service = start_service(name, env, port, logs)
    stack.callback(service.process.stop)
    wait_ready(service, timeout=120)
    return service


# --- users ---------------------------------------------------------------------------------------


def expect(answer: httpx.Response, *statuses: int) -> httpx.Response:
    if answer.status_code not in statuses:
        raise RuntimeError(
            f"{answer.request.method} {answer.request.url.path}: "
            f"{answer.status_code} {answer.text[:300]}"
        )
    return answer


AUTH_AT_ONCE = 2
"""Sign-ups and logins in flight at the auth service: argon2 hashing is slow on purpose."""


async def sign_up_all(auth_url: str, plan: Plan, run_id: str) -> list[Person]:
    """Every user, through the real auth service; heavy users come last."""
    gate = asyncio.Semaphore(AUTH_AT_ONCE)

    async def one(client: httpx.AsyncClient, index: int) -> Person:
        email = f"bench-{run_id}-{index}@example.com"
        async with gate:
            body = {"email": email, "password": PASSWORD}
            created = expect(await client.post("/v1/users", json=body), 201).json()
        return Person(
            index=index,
            id=uuid.UUID(created["id"]),
            email=email,
            zone=ZONES[index % len(ZONES)],
            heavy=index >= plan.users,
        )

    async with httpx.AsyncClient(base_url=auth_url, timeout=120) as client:
        return list(await asyncio.gather(*(one(client, i) for i in range(plan.users + plan.heavy))))


async def tokens(auth_url: str, people: list[Person]) -> dict[uuid.UUID, dict[str, str]]:
    """A fresh access token each (they live 15 minutes: taken right before the queries)."""
    gate = asyncio.Semaphore(AUTH_AT_ONCE)

    async def one(client: httpx.AsyncClient, person: Person) -> tuple[uuid.UUID, dict[str, str]]:
        form = {"username": person.email, "password": PASSWORD}
        async with gate:
            answer = expect(await client.post("/v1/auth/token", data=form), 200).json()
        return person.id, {"authorization": f"Bearer {answer['access_token']}"}

    async with httpx.AsyncClient(base_url=auth_url, timeout=120) as client:
        return dict(await asyncio.gather(*(one(client, p) for p in people)))


# --- memory and CPU of the processes --------------------------------------------------------------


@dataclass
class Watched:
    """A process followed for its RSS and CPU time, with its children (a service's); for
    PostgreSQL, whose backends are processes of their own, the RSS of its largest process."""

    name: str
    process: psutil.Process
    largest: bool = False
    peak: int = 0

    def _family(self) -> list[psutil.Process]:
        try:
            return [self.process, *self.process.children(recursive=True)]
        except psutil.Error:
            return []

    def sample(self) -> int:
        sizes = []
        for p in self._family():
            with contextlib.suppress(psutil.Error):
                sizes.append(p.memory_info().rss)
        rss = max(sizes, default=0) if self.largest else sum(sizes)
        self.peak = max(self.peak, rss)
        return rss

    def cpu_s(self) -> float:
        total = 0.0
        for p in self._family():
            with contextlib.suppress(psutil.Error):
                times = p.cpu_times()
                total += times.user + times.system
        return total


async def sample_rss(watched: list[Watched], stop: asyncio.Event) -> None:
    while not stop.is_set():
        for w in watched:
            w.sample()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_S)


def cpu_snapshot(watched: list[Watched]) -> dict[str, float]:
    return {w.name: w.cpu_s() for w in watched}


def own_cpu_s() -> float:
    """This process's CPU seconds (the clients'), its children left out."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def own_peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


# --- the load ------------------------------------------------------------------------------------


@dataclass
class Published:
    events: int = 0
    samples: int = 0
    by_source: Counter[str] = field(default_factory=Counter)


def person_events(person: Person, plan: Plan, seed: int) -> tuple[dict[str, list[bytes]], int]:
    """All of a person's raw events, as JSON per raw source, and the samples they map to. Runs in
    a worker process: building the events through the connectors' code is most of the cost."""
    events: dict[str, list[bytes]] = {}
    samples = 0
    for first, days in person_windows(plan):
        data = window_data(person, plan, first, days, seed)
        for source, batch in data.events.items():
            events.setdefault(source, []).extend(
                e.model_dump_json(by_alias=True).encode() for e in batch
            )
        samples += data.samples
    return events, samples


async def publish_json(
    broker: KafkaBroker, topic: str, key: bytes, bodies: list[bytes], in_flight: int = 16
) -> None:
    """As `publish_many` (acks=all, 16 in flight), for bodies already JSON."""
    for start in range(0, len(bodies), in_flight):
        chunk = bodies[start : start + in_flight]
        await asyncio.gather(*(broker.publish(body, topic=topic, key=key) for body in chunk))


async def publish_all(
    broker: KafkaBroker, topics: Topics, people: list[Person], plan: Plan, seed: int
) -> Published:
    """Every person's data published by user key, as the connectors do; GENERATORS worker
    processes build the events while this one publishes."""
    total = Published()
    next_note = time.monotonic() + NOTE_EVERY_S
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=GENERATORS, mp_context=context) as pool:
        pending: deque[tuple[Person, asyncio.Future[tuple[dict[str, list[bytes]], int]]]] = deque()
        people_left = deque(people)
        done = 0
        while people_left or pending:
            while people_left and len(pending) < 2 * GENERATORS:
                person = people_left.popleft()
                pending.append(
                    (person, loop.run_in_executor(pool, person_events, person, plan, seed))
                )
            person, future = pending.popleft()
            events, samples = await future
            for source, bodies in events.items():
                await publish_json(broker, topics.raw(source), str(person.id).encode(), bodies)
                total.events += len(bodies)
                total.by_source[source] += len(bodies)
            total.samples += samples
            done += 1
            if time.monotonic() >= next_note:
                say(f"  published {done}/{len(people)} users: {total.events:,} events")
                next_note += NOTE_EVERY_S
    return total


@dataclass
class LoadFigures:
    events: int
    samples_expected: int
    samples_stored: int
    rejected_records: int
    seconds: float
    """From the first raw event committed to the last."""
    publish_s: float
    vacuum_s: float
    normalizer_peak_rss_mb: float
    normalizer_cpu_s: float
    outbox_backlog: int
    events_by_source: dict[str, int]

    @property
    def rate(self) -> float:
        return self.samples_stored / self.seconds if self.seconds else 0.0

    @property
    def complete(self) -> bool:
        return self.samples_stored == self.samples_expected and self.rejected_records == 0


async def count(conn: asyncpg.Connection, table: str) -> int:
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def load(
    options: Options,
    stage: Stage,
    env: dict[str, str],
    people: list[Person],
    work: Path,
) -> LoadFigures:
    """Publish everything, then let the normalizers write it; their processes stop after."""
    plan = Plan.of(options.scale)
    broker = make_broker(stage.infra.kafka_bootstrap_servers, TracerProvider())
    await broker.start()
    say(f"publishing {len(people)} users' {plan.days} days to {stage.topics.prefix}raw.*")
    began = time.monotonic()
    try:
        published = await publish_all(broker, stage.topics, people, plan, options.seed)
    finally:
        await broker.stop()
    publish_s = time.monotonic() - began
    say(
        f"published {published.events:,} raw events ({published.samples:,} samples) in "
        f"{publish_s:.0f}s; starting {options.processes} normalizer(s)"
    )
    async with contextlib.AsyncExitStack() as normalizers:
        services = []
        for n in range(options.processes):
            service = start_service("normalizer", env, free_port(), work / "logs" / f"norm-{n}")
            normalizers.callback(service.process.stop)
            services.append(service)
        for service in services:
            wait_ready(service, timeout=120)
        conn = await asyncpg.connect(stage.database_url)
        try:
            figures = await _wait_loaded(conn, options, published, services)
        finally:
            await conn.close()
    figures.publish_s = publish_s
    conn = await asyncpg.connect(stage.database_url)
    try:
        say("VACUUM ANALYZE of the normalizer's tables")
        began = time.monotonic()
        for table in ("samples", "daily_rollups", "hourly_rollups"):
            await conn.execute(f"VACUUM (ANALYZE) normalizer.{table}")
        await conn.execute("CHECKPOINT")
        figures.vacuum_s = time.monotonic() - began
    finally:
        await conn.close()
    return figures


async def _wait_loaded(
    conn: asyncpg.Connection, options: Options, published: Published, services: list[Service]
) -> LoadFigures:
    """Until every raw event is committed. The time is that from the first commit to the last
    (`archived_at`, the transactions' start): a normalizer may commit before the other is up."""
    watched = [Watched(s.name, psutil.Process(s.process.pid)) for s in services]
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(watched, stop))
    began = time.monotonic()
    next_note = began + NOTE_EVERY_S
    try:
        while True:
            done = await count(conn, "normalizer.raw_archive")
            elapsed = time.monotonic() - began
            if done >= published.events:
                break
            if elapsed > options.load_timeout_s:
                raise TimeoutError(f"{done:,} of {published.events:,} events after {elapsed:.0f}s")
            dead = [s for s in services if not s.process.alive()]
            if dead:
                raise RuntimeError(f"a normalizer exited; see {dead[0].process.log_path}")
            if time.monotonic() >= next_note:
                rss = max((w.sample() for w in watched), default=0) / MB
                say(
                    f"  {elapsed:6.0f}s: {done:,}/{published.events:,} raw events committed "
                    f"({done / elapsed:,.0f}/s); largest normalizer {rss:.0f} MB"
                )
                next_note += NOTE_EVERY_S
            await asyncio.sleep(POLL_S)
        seconds = await conn.fetchval(
            "SELECT extract(epoch FROM max(archived_at) - min(archived_at))::float8 "
            "FROM normalizer.raw_archive"
        )
        backlog = await count(conn, "normalizer.outbox")
        stored = await count(conn, "normalizer.samples")
        rejected = await count(conn, "normalizer.rejected_records")
    finally:
        stop.set()
        await sampler
    cpu = cpu_snapshot(watched)  # over each process's whole life, its start included
    return LoadFigures(
        events=published.events,
        samples_expected=published.samples,
        samples_stored=stored,
        rejected_records=rejected,
        seconds=float(seconds or 0.0),
        publish_s=0.0,
        vacuum_s=0.0,
        normalizer_peak_rss_mb=max((w.peak for w in watched), default=0) / MB,
        normalizer_cpu_s=sum(cpu.values()),
        outbox_backlog=backlog,
        events_by_source=dict(published.by_source),
    )


# --- the queries ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str
    began: float
    seconds: float
    status: int
    """0: no answer (a transport error or timeout)."""


def request_for(
    kind: str, rng: random.Random, plan: Plan, people: list[Person]
) -> tuple[Person, str, dict[str, str]]:
    """A random user (a heavy one for hr_year_heavy) and the request of that kind."""
    regular = [p for p in people if not p.heavy] or people
    heavy = [p for p in people if p.heavy] or people
    person = rng.choice(heavy if kind == "hr_year_heavy" else regular)
    if kind in ("hr_year", "hr_year_heavy"):
        span = (plan.first_day, plan.last_day)
    else:
        first = plan.first_day + timedelta(days=rng.randrange(max(1, plan.days - 29)))
        span = (first, first + timedelta(days=29))
    dates = {"start": span[0].isoformat(), "end": span[1].isoformat()}
    if kind == "summary_30d":
        return person, "/v1/summary/daily", dates
    metric = "steps" if kind == "steps_month" else "heart_rate"
    return person, f"/v1/metrics/{metric}", {**dates, "resolution": "day"}


async def client_loop(
    gateway_url: str,
    number: int,
    options: Options,
    plan: Plan,
    people: list[Person],
    auth: dict[uuid.UUID, dict[str, str]],
    until: float,
    rate: float | None,
    answers: list[Answer],
) -> None:
    """Requests back to back, or (`rate`: this client's share of the offered requests/s) at
    random (Poisson) times, each timed from when it was due: a client still waiting for an
    answer sends late, and the wait counts (no coordinated omission)."""
    rng = random.Random(f"{options.seed}:client:{number}")  # noqa: S311 - a request mix
    kinds = [k for k, _ in KINDS]
    weights = [w for _, w in KINDS]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    due = time.monotonic()
    async with httpx.AsyncClient(base_url=gateway_url, timeout=30, limits=limits) as client:
        while time.monotonic() < until:
            kind = rng.choices(kinds, weights)[0]
            person, path, params = request_for(kind, rng, plan, people)
            if rate:
                due += rng.expovariate(rate)
                if due >= until:
                    break
                await asyncio.sleep(max(0.0, due - time.monotonic()))
            began = due if rate else time.monotonic()
            try:
                answer = await client.get(path, params=params, headers=auth[person.id])
                status = answer.status_code  # the body is read: not a streamed request
            except httpx.HTTPError:
                status = 0
            answers.append(Answer(kind, began, time.monotonic() - began, status))


@dataclass
class KindFigures:
    kind: str
    requests: int
    per_s: float
    ok: int
    statuses: dict[str, int]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    goal_ms: float | None

    @property
    def verdict(self) -> str:
        if self.goal_ms is None:
            return ""
        if self.p95_ms is None:
            return f"p95 < {self.goal_ms:.0f} ms: not measured (no 2xx answer)"
        met = self.p95_ms < self.goal_ms
        return f"p95 < {self.goal_ms:.0f} ms: {'met' if met else 'MISSED'}"

    @property
    def missed(self) -> bool:
        return self.goal_ms is not None and self.p95_ms is not None and self.p95_ms >= self.goal_ms


def percentile(sorted_values: list[float], share: float) -> float:
    """Nearest rank."""
    rank = max(1, round(share * len(sorted_values) + 0.5 - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def kind_figures(kind: str, answers: list[Answer], seconds: float) -> KindFigures:
    mine = [a for a in answers if a.kind == kind]
    ok = sorted(a.seconds * 1000 for a in mine if 200 <= a.status < 300)
    statuses = Counter(str(a.status) for a in mine if not 200 <= a.status < 300)
    return KindFigures(
        kind=kind,
        requests=len(mine),
        per_s=len(mine) / seconds,
        ok=len(ok),
        statuses=dict(sorted(statuses.items())),
        p50_ms=percentile(ok, 0.50) if ok else None,
        p95_ms=percentile(ok, 0.95) if ok else None,
        p99_ms=percentile(ok, 0.99) if ok else None,
        goal_ms=GOALS_MS.get(kind),
    )


@dataclass
class ProcessFigures:
    name: str
    peak_rss_mb: float
    cpu_share: float
    """CPU seconds (user + system) a second while measured; 1.0 is one core."""


@dataclass
class QueryFigures:
    rate: float | None
    """Offered requests/s (open loop), None for clients sending back to back."""
    seconds: float
    probe: dict[str, str]
    """What one answer of each kind held, for a heavy user, before the clients started."""
    clients: int
    kinds: list[KindFigures]
    processes: list[ProcessFigures]
    slices_p95_ms: list[float | None]
    """p95 of every kind together per 10 s of the measured time: a stall shows as one slow slice."""

    @property
    def total(self) -> int:
        return sum(k.requests for k in self.kinds)

    @property
    def errors(self) -> int:
        """5xx answers and requests without an answer."""
        return sum(
            n for k in self.kinds for s, n in k.statuses.items() if s == "0" or s.startswith("5")
        )


async def query(
    options: Options,
    plan: Plan,
    people: list[Person],
    gateway_url: str,
    auth_url: str,
    watched: list[Watched],
    rate: float | None,
) -> QueryFigures:
    auth = await tokens(auth_url, people)
    probed = await probe(gateway_url, plan, people, auth)
    for kind, what in probed.items():
        say(f"probe {kind}: {what}")
    say(
        f"queries: {options.clients} clients "
        + (f"offering {rate:g} requests/s" if rate else "back to back")
        + f", {options.warmup_s:.0f}s warm-up, {options.duration_s:.0f}s measured"
    )
    answers: list[Answer] = []
    start = time.monotonic()
    measured_from = start + options.warmup_s
    until = measured_from + options.duration_s
    stop = asyncio.Event()
    clients = [
        asyncio.create_task(
            client_loop(
                gateway_url,
                n,
                options,
                plan,
                people,
                auth,
                until,
                rate / options.clients if rate else None,
                answers,
            )
        )
        for n in range(options.clients)
    ]
    await asyncio.sleep(max(0.0, measured_from - time.monotonic()))
    cpu_before, own_cpu_before = cpu_snapshot(watched), own_cpu_s()
    sampler = asyncio.create_task(sample_rss(watched, stop))
    await asyncio.gather(*clients)
    cpu_after, own_cpu_after = cpu_snapshot(watched), own_cpu_s()
    window = time.monotonic() - measured_from
    stop.set()
    await sampler
    counted = [a for a in answers if measured_from <= a.began < until]
    seconds = until - measured_from
    processes = [
        ProcessFigures(w.name, w.peak / MB, (cpu_after[w.name] - cpu_before[w.name]) / window)
        for w in watched
    ]
    processes.append(
        ProcessFigures("clients", own_peak_rss() / MB, (own_cpu_after - own_cpu_before) / window)
    )
    return QueryFigures(
        rate=rate,
        seconds=seconds,
        probe=probed,
        clients=options.clients,
        kinds=[kind_figures(kind, counted, seconds) for kind, _ in KINDS],
        processes=processes,
        slices_p95_ms=slices_p95(counted, measured_from, seconds),
    )


def slices_p95(answers: list[Answer], measured_from: float, seconds: float) -> list[float | None]:
    slices: list[list[float]] = [[] for _ in range(max(1, round(seconds / SLICE_S)))]
    for a in answers:
        if 200 <= a.status < 300:
            index = min(int((a.began - measured_from) / SLICE_S), len(slices) - 1)
            slices[index].append(a.seconds * 1000)
    return [percentile(sorted(s), 0.95) if s else None for s in slices]


async def probe(
    gateway_url: str, plan: Plan, people: list[Person], auth: dict[uuid.UUID, dict[str, str]]
) -> dict[str, str]:
    """One request of each kind for a heavy user, and how many days or points it answered: a
    quick 200 without data would make the timings meaningless."""
    person = next(p for p in people if p.heavy)
    rng = random.Random(0)  # noqa: S311 - which window
    found = {}
    async with httpx.AsyncClient(base_url=gateway_url, timeout=120) as client:
        for kind, _ in KINDS:
            _, path, params = request_for(kind, rng, plan, [person])
            answer = await client.get(path, params=params, headers=auth[person.id])
            if answer.status_code != 200:
                found[kind] = f"{answer.status_code}"
                continue
            body = answer.json()
            unit = "days" if "days" in body else "points"
            wanted = plan.days if kind.startswith("hr_year") else min(30, plan.days)
            found[kind] = f"200, {len(body.get(unit, []))} {unit} (of {wanted})"
    return found


# --- the report ----------------------------------------------------------------------------------


@dataclass
class Report:
    plan: Plan
    load: LoadFigures | None
    """None when a kept database was used."""
    kept_load: dict[str, Any] | None
    """The figures of the load that filled the kept database."""
    phases: list[QueryFigures]
    """Clients back to back (the capacity), then each offered rate."""

    @property
    def judged(self) -> list[QueryFigures]:
        """The phases the latency goals are judged on: the open-loop ones when there are any.
        Back to back, 50 clients always have 50 requests in flight, so latency is 50 divided
        by the throughput (Little's law): that phase measures capacity."""
        return [p for p in self.phases if p.rate] or self.phases

    @property
    def passed(self) -> bool:
        loaded = self.load.complete if self.load else True
        missed = any(k.missed for p in self.judged for k in p.kinds)
        return loaded and not missed and not any(p.errors for p in self.phases)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def table(report: Report) -> str:
    plan = report.plan
    lines = [
        f"data: {plan.users} users + {plan.heavy} heavy, {plan.days} days from "
        f"{plan.first_day} ({plan.tag})"
    ]
    load = asdict(report.load) if report.load else report.kept_load
    if load:
        seconds = max(load["seconds"], 1e-9)
        rate = load["samples_stored"] / seconds
        kept = report.load is None
        lines += [
            "load (kept database; the figures of the run that loaded it):" if kept else "load:",
            f"  {load['events']:,} raw events "
            + ", ".join(f"{s} {n:,}" for s, n in sorted(load["events_by_source"].items())),
            f"  samples stored {load['samples_stored']:,} of {load['samples_expected']:,} "
            f"generated; records rejected {load['rejected_records']:,}",
            f"  normalizers: {rate:,.0f} samples/s, {load['events'] / seconds:,.0f} raw events/s "
            f"({load['seconds']:,.0f} s from the first commit to the last); peak RSS "
            f"{load['normalizer_peak_rss_mb']:.0f} MB; CPU "
            f"{load['normalizer_cpu_s'] / max(load['samples_stored'], 1) * 1e6:.1f} us a sample "
            f"(all processes, start included); outbox backlog at the end "
            f"{load['outbox_backlog']:,}",
            f"  publishing took {load['publish_s']:,.0f} s, "
            f"VACUUM ANALYZE {load['vacuum_s']:,.0f} s",
        ]
    for q in report.phases:
        judged = q in report.judged
        offered = f"offering {q.rate:g} requests/s" if q.rate else "back to back"
        lines += [
            "",
            "probe (one answer of each kind, a heavy user): "
            + "; ".join(f"{k} {what}" for k, what in q.probe.items()),
            f"queries: {q.clients} clients {offered} for {q.seconds:.0f} s, {q.total:,} "
            f"requests = {q.total / q.seconds:,.1f}/s; 5xx or no answer: {q.errors:,}"
            + ("" if judged else " (capacity: latency goals not judged here)"),
            f"{'kind':<14} {'requests':>8} {'per s':>7} {'2xx':>7} {'p50 ms':>8} {'p95 ms':>8} "
            f"{'p99 ms':>8}  non-2xx      goal",
        ]
        for k in q.kinds:
            others = ", ".join(f"{s}: {n:,}" for s, n in k.statuses.items()) or "-"
            lines.append(
                f"{k.kind:<14} {k.requests:>8,} {k.per_s:>7.1f} {k.ok:>7,} {_ms(k.p50_ms):>8} "
                f"{_ms(k.p95_ms):>8} {_ms(k.p99_ms):>8}  {others:<12} "
                + (k.verdict if judged else "")
            )
        lines.append(
            f"p95 ms of each {SLICE_S:.0f} s, all kinds: "
            + ", ".join(_ms(p) for p in q.slices_p95_ms)
        )
        lines += ["", "while measured:   peak RSS MB   CPU (1 core = 100 %)"]
        for p in q.processes:
            lines.append(f"  {p.name:<14} {p.peak_rss_mb:>11.0f}   {p.cpu_share:>6.0%}")
    lines += ["", "PASS" if report.passed else "FAIL"]
    return "\n".join(lines)


# --- the run -------------------------------------------------------------------------------------


async def run(options: Options, work: Path) -> Report:
    plan = Plan.of(options.scale)
    async with contextlib.AsyncExitStack() as stack:
        stage = await open_stage(stack, options, work)
        ports = {name: free_port() for name in SERVICES}
        env = services_env(stage, ports, work)
        logs = work / "logs"
        say("starting auth, preferences, gateway")
        workers = {"gateway": {"HEALTHMESH_WORKERS": str(options.gateway_workers)}}
        services = [
            start_waited(stack, name, env | workers.get(name, {}), ports[name], logs)
            for name in ("auth", "preferences", "gateway")
        ]
        auth, gateway = services[0], services[-1]
        figures: LoadFigures | None = None
        if stage.loaded is not None:
            say(f"kept database {stage.database_url.rsplit('/', 1)[1]}: no load")
            people = [Person(**{**p, "id": uuid.UUID(p["id"])}) for p in stage.loaded["people"]]
        else:
            say(f"signing up {plan.users + plan.heavy} users")
            people = await sign_up_all(auth.url, plan, uuid.uuid4().hex[:8])
            figures = await load(options, stage, env, people, work)
            say(f"loaded: {figures.samples_stored:,} samples at {figures.rate:,.0f}/s")
            if stage.manifest_path is not None and figures.complete:
                manifest = {
                    "fingerprint": fingerprint(plan),
                    "people": [{**asdict(p), "id": str(p.id)} for p in people],
                    "load": asdict(figures),
                }
                stage.manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        watched = [Watched(s.name, psutil.Process(s.process.pid)) for s in services]
        watched += [  # the embedded infrastructure, when it runs here
            Watched(name, psutil.Process(p.pid), largest=name == "postgres")
            for p, name in zip(stage.infra.processes, ("postgres", "tansu"), strict=False)
        ]
        phases = [
            await query(options, plan, people, gateway.url, auth.url, watched, rate)
            for rate in (None, *options.rates)
        ]
        kept = stage.loaded["load"] if stage.loaded is not None else None
        return Report(plan, figures, kept, phases)
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    logging.getLogger("faststream.access.kafka").disabled = True
    stop_on_sigterm()
    work = Path(tempfile.mkdtemp(prefix="healthmesh-bench-query-"))
    say(
        f"data and logs in {work}"
        + (f"; database kept in {options.reuse}" if options.reuse else "")
    )
    try:
        report = asyncio.run(run(options, work))
    except KeyboardInterrupt:
        print(f"interrupted; logs kept in {work / 'logs'}", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"benchmark failed: {exc}; logs kept in {work / 'logs'}", file=sys.stderr)
        raise
    finally:  # a fresh run's database is gone; its files (GBs at full scale) go too
        shutil.rmtree(work / "postgres", ignore_errors=True)
    print()
    print(table(report))
    if options.json_path:
        document = asdict(report)
        document["passed"] = report.passed
        options.json_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    if report.passed:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"logs kept in {work / 'logs'}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
