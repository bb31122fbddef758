"""Properties (hypothesis) of mapping and writing: mapping is deterministic, overlap resolution
never counts more than was measured, and applying a batch twice (or cut differently) equals
applying it once."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from typing import Any, Literal

import asyncpg
import orjson
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import (
    ChangeKind,
    MetricChange,
    MetricChanges,
    MetricSample,
    RawPayloadReceived,
    dump,
)
from healthmesh.common.outbox import Outbox, encode
from healthmesh.common.topics import Topics
from healthmesh.normalizer.db import ChangedSample
from healthmesh.normalizer.handlers import RawHandler, RawMessage, metric_changes
from healthmesh.normalizer.mapping import Sample
from healthmesh.normalizer.rollups import Span, device_rank, overlap_free_total, rollup_keys
from healthmesh.normalizer.sources import oura

DAY = datetime(2024, 3, 1, tzinfo=UTC)

minutes = st.integers(min_value=0, max_value=24 * 60 - 1)
heart_rows = st.lists(
    st.tuples(minutes, st.integers(min_value=25, max_value=220)), min_size=1, max_size=50
)


def heartrate_envelope(
    rows: list[tuple[int, int]], user: uuid.UUID, day: int = 0
) -> RawPayloadReceived:
    """A UTC day of Oura heart-rate rows, as the connector publishes it."""
    midnight = DAY + timedelta(days=day)
    data = [
        {
            "bpm": bpm,
            "source": "awake",
            "timestamp": (midnight + timedelta(minutes=m)).isoformat().replace("+00:00", "Z"),
        }
        for m, bpm in rows
    ]
    return RawPayloadReceived(
        id=uuid.uuid4(),
        user_id=user,
        source="oura",
        resource="heartrate",
        fetched_at=datetime.now(UTC),
        payload={"data": data},
    )


@given(rows=heart_rows)
def test_mapping_is_deterministic_and_ids_depend_only_on_the_data(
    rows: list[tuple[int, int]],
) -> None:
    user = uuid.UUID(int=7)
    first = oura.map_payload(heartrate_envelope(rows, user)).samples
    again = oura.map_payload(heartrate_envelope(rows, user)).samples  # another raw event id
    assert [asdict(s) | {"raw_event_id": None} for s in first] == [
        asdict(s) | {"raw_event_id": None} for s in again
    ]
    assert len({s.id for s in first}) == len({m for m, _ in rows})


spans = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=1440),
        st.integers(min_value=0, max_value=120),
        st.floats(min_value=0, max_value=5_000),
        st.sampled_from(["Watch", "iPhone", "Scale app"]),
    ),
    max_size=30,
)


def as_spans(raw: list[tuple[int, int, float, str]]) -> list[Span]:
    return [
        Span(DAY + timedelta(minutes=m), DAY + timedelta(minutes=m + length), value, device)
        for m, length, value, device in raw
    ]


@given(raw=spans)
def test_overlap_resolution_never_adds_and_the_watch_counts_in_full(
    raw: list[tuple[int, int, float, str]],
) -> None:
    items = as_spans(raw)
    total = overlap_free_total(items)
    assert total <= sum(s.value for s in items) + 1e-6
    watch = [s for s in items if s.device == "Watch"]
    assert total >= overlap_free_total(watch) - 1e-6
    assert abs(overlap_free_total(list(reversed(items))) - total) < 1e-6


@given(raw=spans)
def test_one_device_without_overlaps_is_a_plain_sum(raw: list[tuple[int, int, float, str]]) -> None:
    cursor, items = 0, []
    for _, length, value, _ in raw:  # laid end to end, as one device records
        items.append((cursor, length, value, "Watch"))
        cursor += length
    assert abs(overlap_free_total(as_spans(items)) - sum(v for _, _, v, _ in items)) < 1e-6


def covered_share_by_scanning(spans: list[Span]) -> float:
    """The rule written the plain way, minute by minute against everything covered so far:
    what the indexed `overlap_free_total` must equal."""
    total = 0.0
    covered: list[tuple[datetime, datetime]] = []
    for device in sorted({s.device for s in spans}, key=lambda d: (device_rank(d), d or "")):
        group = [s for s in spans if s.device == device]
        for s in group:
            length = (s.end - s.start).total_seconds()
            if length <= 0:
                total += 0.0 if any(a <= s.start < b for a, b in covered) else s.value
                continue
            # The spans are whole minutes: count the sample's minutes already covered.
            inside = sum(
                60.0
                for m in range(int(length // 60))
                if any(a <= s.start + timedelta(minutes=m) < b for a, b in covered)
            )
            total += s.value * (1.0 - inside / length)
        covered += [(s.start, s.end) for s in group if s.end > s.start]
    return total


@given(raw=spans)
def test_overlap_resolution_equals_the_rule_applied_minute_by_minute(
    raw: list[tuple[int, int, float, str]],
) -> None:
    items = as_spans(raw)
    assert abs(overlap_free_total(items) - covered_share_by_scanning(items)) < 1e-6


# --- applying batches --------------------------------------------------------------------------

TOPICS = Topics("p.")


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url)
    await apply_migrations(pool, "normalizer", files("healthmesh.normalizer") / "migrations")
    yield pool
    await pool.close()


def message(envelope: RawPayloadReceived, offset: int) -> RawMessage:
    return RawMessage("p.raw.oura", 0, offset, None, orjson.dumps(dump(envelope)))


async def state(pool: asyncpg.Pool, user: uuid.UUID) -> tuple[Any, ...]:
    samples = await pool.fetch(
        "SELECT start_at, value, revision FROM normalizer.samples WHERE user_id = $1 "
        "ORDER BY start_at",
        user,
    )
    days = await pool.fetch(
        "SELECT day, samples, total, minimum, maximum FROM normalizer.daily_rollups "
        "WHERE user_id = $1 ORDER BY day",
        user,
    )
    hours = await pool.fetch(
        "SELECT hour, samples, total FROM normalizer.hourly_rollups WHERE user_id = $1 "
        "ORDER BY hour",
        user,
    )
    return [tuple(r) for r in samples], [tuple(r) for r in days], [tuple(r) for r in hours]


@pytest.mark.integration
@settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.lists(heart_rows, min_size=1, max_size=4), cut=st.integers(min_value=1, max_value=3))
async def test_a_batch_applied_twice_or_cut_differently_equals_applying_it_once(
    pool: asyncpg.Pool, days: list[list[tuple[int, int]]], cut: int
) -> None:
    once, twice = uuid.uuid4(), uuid.uuid4()
    handler = RawHandler(pool, Outbox("normalizer"), TOPICS, {"oura": oura.map_payload})

    def batch(user: uuid.UUID) -> list[RawMessage]:
        return [message(heartrate_envelope(rows, user, i), i) for i, rows in enumerate(days)]

    await handler.handle(batch(once))
    messages = batch(twice)
    for start in range(0, len(messages), cut):  # the same messages, in smaller batches
        await handler.handle(messages[start : start + cut])
    await handler.handle(messages)  # and all of them redelivered

    a, b = await state(pool, once), await state(pool, twice)
    assert a == b
    assert {row[2] for row in b[0]} <= {1}  # a redelivery is no revision


_samples: st.SearchStrategy[dict[str, Any]] = st.builds(
    dict,
    metric=st.sampled_from([("steps", "count"), ("heart_rate", "bpm")]),
    device=st.none() | st.sampled_from(["Watch", "iPhone"]),
    value=st.floats(allow_nan=False, allow_infinity=False),
    start=st.datetimes(max_value=datetime(9000, 1, 1), timezones=st.just(UTC)),
    seconds=st.integers(min_value=0, max_value=10**6),
    record=st.sampled_from(["", "r1"]),
    quality=st.sampled_from([(1.0, None), (0.9, "why"), (0.0, "implausible")]),
    details=st.none()
    | st.dictionaries(st.text(max_size=5), st.integers(-(2**53), 2**53) | st.text(max_size=5)),
    revision=st.integers(min_value=1, max_value=9),
    created=st.booleans(),
)


@given(
    drawn=st.lists(_samples, min_size=1, max_size=6),
    kind=st.sampled_from(["created_or_updated", "deleted"]),
)
def test_announced_events_read_back_as_the_same_samples(
    drawn: list[dict[str, Any]], kind: Literal["created_or_updated", "deleted"]
) -> None:
    """The outbox writes the dataclass samples straight with orjson, grouped by series and with
    defaults left out; read as the `MetricChanges` contract, each change must give back exactly
    its sample, event and revision."""
    user, raw_event = uuid.uuid4(), uuid.uuid4()
    changed = [
        ChangedSample(
            Sample(
                id=uuid.uuid4(),
                user_id=user,
                metric=d["metric"][0],
                value=d["value"],
                unit=d["metric"][1],
                source="oura",
                device=d["device"],
                start=d["start"],
                end=d["start"] + timedelta(seconds=d["seconds"]),
                utc_offset_s=3600,
                source_record_id=d["record"],
                quality=d["quality"][0],
                quality_reason=d["quality"][1],
                raw_event_id=raw_event,
                details=d["details"],
            ),
            d["revision"],
            d["created"],
        )
        for d in drawn
    ]
    now = datetime.now(UTC)

    wire = encode(metric_changes(user, raw_event, now, kind, changed))
    read = MetricChanges.model_validate_json(wire)

    def kind_of(c: ChangedSample) -> ChangeKind:
        return "deleted" if kind == "deleted" else "created" if c.created else "updated"

    expected = {
        c.sample.id: MetricChange(
            event=kind_of(c),
            revision=c.revision,
            sample=MetricSample.model_validate(asdict(c.sample)),
        )
        for c in changed
    }
    assert {c.sample.id: c for c in read.flat()} == expected
    assert (read.user_id, read.raw_event_id, read.occurred_at) == (user, raw_event, now)
    assert len({(s.metric, s.device) for s in read.series}) == len(read.series)


@given(
    start=st.datetimes(
        min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    seconds=st.integers(min_value=0, max_value=3 * 86_400),
    offset=st.integers(min_value=-18 * 3600, max_value=18 * 3600),
    metric=st.sampled_from(["steps", "heart_rate", "sleep_duration"]),
)
def test_rollup_keys_are_the_local_day_and_the_utc_hour(
    start: datetime, seconds: int, offset: int, metric: str
) -> None:
    """Keys are worked out on POSIX seconds for speed: they must be the calendar's answer."""
    end = start + timedelta(seconds=seconds)
    sample = Sample(
        id=uuid.uuid4(), user_id=uuid.uuid4(), metric=metric, value=1.0, unit="count",
        source="oura", device=None, start=start, end=end, utc_offset_s=offset,
        source_record_id="", quality=1.0, quality_reason=None, raw_event_id=uuid.uuid4(),
        details=None,
    )  # fmt: skip
    by_end = metric == "sleep_duration"
    local = ((end if by_end else start) + timedelta(seconds=offset)).date()
    days, hours = rollup_keys([sample])
    assert days == [(sample.user_id, metric, "oura", local, by_end)]
    hour = start.replace(minute=0, second=0, microsecond=0)
    assert hours == ([(sample.user_id, metric, "oura", hour)] if seconds <= 3600 else [])
