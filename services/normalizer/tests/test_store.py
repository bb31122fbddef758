"""The write path on a real PostgreSQL: raw archive, rollups (with overlaps between one source's
devices resolved), idempotence, and `reprocess` fixing a mapper bug by replay."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

import asyncpg
import orjson
import pytest
import pytest_asyncio

from healthmesh.common.db import apply_migrations, open_pool
from healthmesh.common.events import MetricChanges, RawPayloadReceived, dump
from healthmesh.common.outbox import Outbox
from healthmesh.common.topics import Topics
from healthmesh.normalizer import db
from healthmesh.normalizer.handlers import RawHandler, RawMessage, remove
from healthmesh.normalizer.mapping import (
    Mapper,
    MappingResult,
    Sample,
    Withdrawal,
    measurement,
    names_one_record,
)
from healthmesh.normalizer.reprocess import reprocess
from healthmesh.normalizer.sources import apple_health, csv

pytestmark = pytest.mark.integration

TOPICS = Topics("t.")


def listed(envelope: RawPayloadReceived, metric_of: dict[str, str] | None = None) -> MappingResult:
    """A test source whose payload lists its samples; `metric_of` renames metrics (a 'bug')."""
    assert isinstance(envelope.payload, dict)
    rows: Any = envelope.payload["samples"]
    withdrawn: Any = envelope.payload.get("withdraw", [])
    result = MappingResult(records_seen=len(rows), withdrawals=[Withdrawal(w) for w in withdrawn])
    for row in rows:
        metric = (metric_of or {}).get(row["metric"], row["metric"])
        result.samples.append(
            measurement(
                envelope,
                metric=metric,
                value=row["value"],
                unit=row["unit"],
                start=datetime.fromisoformat(row["start"]),
                end=datetime.fromisoformat(row["end"]),
                utc_offset_s=row.get("offset", 0),
                source_field=metric,
                device=row.get("device"),
                source_record_id=row.get("id", ""),
            )
        )
    return result


def buggy(envelope: RawPayloadReceived) -> MappingResult:
    """The bug the leading open-source peer shipped: RMSSD filed as SDNN."""
    return listed(envelope, {"hrv_rmssd": "hrv_sdnn"})


REGISTRY: dict[str, Mapper] = {"test": listed}


def message(
    user: uuid.UUID,
    samples: list[dict[str, Any]],
    offset: int = 0,
    source: str = "test",
    withdraw: list[str] | None = None,
    fetched_at: datetime | None = None,
) -> RawMessage:
    envelope = RawPayloadReceived(
        id=uuid.uuid4(),
        user_id=user,
        source=source,
        resource="samples",
        fetched_at=fetched_at or datetime.now(UTC),
        payload={"samples": samples, "withdraw": withdraw or []},
    )
    return RawMessage("t.raw.test", 0, offset, str(user).encode(), orjson.dumps(dump(envelope)))


def steps(start: str, end: str, value: float, device: str, offset: int = 0) -> dict[str, Any]:
    return {
        "metric": "steps",
        "value": value,
        "unit": "count",
        "start": start,
        "end": end,
        "device": device,
        "id": device,  # as Apple Health's mapper does: one device's record is not another's
        "offset": offset,
    }


@pytest_asyncio.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await open_pool(database_url)
    await apply_migrations(pool, "normalizer", files("healthmesh.normalizer") / "migrations")
    yield pool
    await pool.close()


def handler(pool: asyncpg.Pool, registry: dict[str, Mapper] = REGISTRY) -> RawHandler:
    return RawHandler(pool, Outbox("normalizer"), TOPICS, registry)


async def daily(pool: asyncpg.Pool, user: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        """SELECT metric, day::text, samples, total, raw_total, devices
           FROM normalizer.daily_rollups WHERE user_id = $1 ORDER BY metric, day""",
        user,
    )
    return [tuple(r) for r in rows]


async def hourly(pool: asyncpg.Pool, user: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        """SELECT metric, hour, total, raw_total FROM normalizer.hourly_rollups
           WHERE user_id = $1 ORDER BY metric, hour""",
        user,
    )
    return [tuple(r) for r in rows]


async def events(pool: asyncpg.Pool) -> list[tuple[str, str, int]]:
    rows = await pool.fetch("SELECT payload FROM normalizer.outbox ORDER BY id")
    return [
        (c.event, c.sample.metric, c.revision)
        for r in rows
        for c in MetricChanges.model_validate_json(r["payload"]).flat()
    ]


async def test_watch_and_phone_steps_over_the_same_hour_count_once(pool: asyncpg.Pool) -> None:
    user = uuid.uuid4()
    await handler(pool).handle(
        [
            message(
                user,
                [
                    # 10:00-11:00 both devices walked the same walk; 11:00-11:30 only the phone.
                    steps("2024-03-01T10:00:00+01:00", "2024-03-01T11:00:00+01:00", 1000, "Watch"),
                    steps("2024-03-01T10:00:00+01:00", "2024-03-01T11:00:00+01:00", 900, "iPhone"),
                    steps("2024-03-01T11:00:00+01:00", "2024-03-01T11:30:00+01:00", 500, "iPhone"),
                    # Half of this phone sample (12:00-12:20) overlaps the watch's 12:00-12:10.
                    steps("2024-03-01T12:00:00+01:00", "2024-03-01T12:20:00+01:00", 200, "iPhone"),
                    steps("2024-03-01T12:00:00+01:00", "2024-03-01T12:10:00+01:00", 150, "Watch"),
                ],
            )
        ]
    )
    # Watch 1000 + 150; phone 500 in full, 200 * (1 - 10/20) = 100, 900 * 0: 1750 (plain sum 2750).
    assert await daily(pool, user) == [("steps", "2024-03-01", 5, 1750.0, 2750.0, 2)]
    utc = UTC
    assert await hourly(pool, user) == [
        ("steps", datetime(2024, 3, 1, 9, tzinfo=utc), 1000.0, 1900.0),
        ("steps", datetime(2024, 3, 1, 10, tzinfo=utc), 500.0, 500.0),
        ("steps", datetime(2024, 3, 1, 11, tzinfo=utc), 250.0, 350.0),
    ]


async def test_one_night_recorded_by_two_devices_of_a_source_counts_once(
    pool: asyncpg.Pool,
) -> None:
    """Apple Health holds the Watch's night and a sleep app's (AutoSleep) of the same night:
    sessions, like cumulative samples, count once where devices overlap."""
    user = uuid.uuid4()

    def night(start: str, end: str, asleep_h: float, device: str) -> dict[str, Any]:
        return {
            "metric": "sleep_session",
            "value": asleep_h,
            "unit": "h",
            "start": start,
            "end": end,
            "device": device,
            "id": device,
            "offset": 3600,
        }

    await handler(pool).handle(
        [
            message(
                user,
                [
                    night("2024-03-01T23:00:00+01:00", "2024-03-02T07:00:00+01:00", 7, "Watch"),
                    # The app saw 23:30-07:30: 7.5 of its 8 h overlap the watch's night.
                    night("2024-03-01T23:30:00+01:00", "2024-03-02T07:30:00+01:00", 6, "AutoSleep"),
                ],
            )
        ]
    )
    # Watch 7 h in full; the app's 6 h * (1 - 7.5/8) = 0.375 h: 7.375 h = 26,550 s (plain 46,800).
    assert await daily(pool, user) == [("sleep_session", "2024-03-02", 2, 26_550.0, 46_800.0, 2)]


async def test_rollups_use_each_samples_local_day_and_leave_out_implausible_values(
    pool: asyncpg.Pool,
) -> None:
    user = uuid.uuid4()
    night = {
        "metric": "sleep_duration",
        "value": 7,
        "unit": "h",
        "start": "2024-03-01T23:00:00-05:00",
        "end": "2024-03-02T07:00:00-05:00",
        "offset": -18000,
    }
    await handler(pool).handle(
        [
            message(
                user,
                [
                    # 23:30 local on Mar 1 in New York is already Mar 2 in UTC: still Mar 1.
                    steps(
                        "2024-03-01T23:30:00-05:00", "2024-03-01T23:40:00-05:00", 80, "W", -18000
                    ),
                    # A heart rate of 400 is stored, flagged, and left out of the day's mean.
                    {
                        "metric": "heart_rate",
                        "value": 400,
                        "unit": "bpm",
                        "start": "2024-03-01T12:00:00+00:00",
                        "end": "2024-03-01T12:00:00+00:00",
                    },
                    {
                        "metric": "heart_rate",
                        "value": 60,
                        "unit": "bpm",
                        "start": "2024-03-01T12:01:00+00:00",
                        "end": "2024-03-01T12:01:00+00:00",
                    },
                    night,  # a night belongs to the morning it ends on
                ],
            )
        ]
    )
    assert await daily(pool, user) == [
        ("heart_rate", "2024-03-01", 1, 60.0, 60.0, 1),
        ("sleep_duration", "2024-03-02", 1, 25200.0, 25200.0, 1),
        ("steps", "2024-03-01", 1, 80.0, 80.0, 1),
    ]
    flagged = await pool.fetchval(
        "SELECT quality_reason FROM normalizer.samples WHERE user_id = $1 AND value = 400", user
    )
    assert flagged.startswith("implausible")


async def test_a_day_rollup_sums_up_its_hours(pool: asyncpg.Pool) -> None:
    # New York (-05:00) on Mar 1: 80 steps at 23:30 local (04:30 UTC on Mar 2, bit 18 + 28 = 46
    # of the day Mar 1) and 20 at 00:10 local (05:10 UTC on Mar 1, bit 18 + 5 = 23); a walk
    # longer than an hour (06:00-08:00 local) counts on the day but has no hour. Mar 2 local:
    # 7 steps at 01:00 local (06:00 UTC on Mar 2, bit 18 + 6 = 24 of the day Mar 2).
    user = uuid.uuid4()
    ny = -18000
    await handler(pool).handle(
        [
            message(
                user,
                [
                    steps("2024-03-01T23:30:00-05:00", "2024-03-01T23:40:00-05:00", 80, "W", ny),
                    steps("2024-03-01T00:10:00-05:00", "2024-03-01T00:20:00-05:00", 20, "W", ny),
                    steps("2024-03-01T06:00:00-05:00", "2024-03-01T08:00:00-05:00", 500, "P", ny),
                    steps("2024-03-02T01:00:00-05:00", "2024-03-02T01:05:00-05:00", 7, "W", ny),
                ],
            )
        ]
    )
    rows = await pool.fetch(
        """SELECT day::text, total, hour_mask, hours_samples, hours_total, hours_raw_total
           FROM normalizer.daily_rollups_v1 WHERE user_id = $1 ORDER BY day""",
        user,
    )
    assert [tuple(r) for r in rows] == [
        ("2024-03-01", 600.0, (1 << 46) | (1 << 23), 2, 100.0, 100.0),
        ("2024-03-02", 7.0, 1 << 24, 1, 7.0, 7.0),
    ]
    # The long walk's correction leaves the day's hours as they were.
    walk = steps("2024-03-01T06:00:00-05:00", "2024-03-01T08:00:00-05:00", 400, "P", ny)
    await handler(pool).handle([message(user, [walk], offset=1)])
    first = await pool.fetchrow(
        "SELECT total, hour_mask, hours_total FROM normalizer.daily_rollups_v1 "
        "WHERE user_id = $1 AND day = '2024-03-01'",
        user,
    )
    assert tuple(first) == (500.0, (1 << 46) | (1 << 23), 100.0)


async def test_a_sample_whose_offset_changes_leaves_its_old_local_day(pool: asyncpg.Pool) -> None:
    # 04:30 UTC on Mar 2 is 23:30 on Mar 1 in New York (-05:00); the provider later corrects the
    # offset to UTC, which puts the same sample (same natural key) on Mar 2.
    user = uuid.uuid4()
    walk = ("2024-03-02T04:30:00+00:00", "2024-03-02T04:40:00+00:00", 80, "W")
    await handler(pool).handle([message(user, [steps(*walk, offset=-18000)])])
    assert await daily(pool, user) == [("steps", "2024-03-01", 1, 80.0, 80.0, 1)]
    await handler(pool).handle([message(user, [steps(*walk, offset=0)], offset=1)])
    assert await daily(pool, user) == [("steps", "2024-03-02", 1, 80.0, 80.0, 1)]
    assert await events(pool) == [("created", "steps", 1), ("updated", "steps", 2)]


async def test_a_days_rollup_finds_samples_at_the_farthest_offsets_and_keeps_the_last(
    pool: asyncpg.Pool,
) -> None:
    """The rollups read a local day's samples within 18 hours of it: a weigh-in at the first
    minute of Mar 5 at +18:00 and one at its last minute at -18:00 are both that day's, the
    later one (in time) is its last value, with its offset."""

    def weigh_in(at: str, kg: float, offset: int) -> dict[str, Any]:
        return {"metric": "body_mass", "value": kg, "unit": "kg", "start": at, "end": at,
                "offset": offset}  # fmt: skip

    user = uuid.uuid4()
    await handler(pool).handle(
        [
            message(
                user,
                [
                    weigh_in("2024-03-05T23:59:00-18:00", 81.5, -64800),
                    weigh_in("2024-03-05T00:00:00+18:00", 80.0, 64800),
                    weigh_in("2024-03-05T12:00:00+00:00", 80.5, 0),
                    weigh_in("2024-03-04T23:59:00+00:00", 79.0, 0),  # the day before
                ],
            )
        ]
    )
    rows = await pool.fetch(
        """SELECT day::text, samples, minimum, maximum, last_value, utc_offset_s, devices
           FROM normalizer.daily_rollups WHERE user_id = $1 ORDER BY day""",
        user,
    )
    assert [tuple(r) for r in rows] == [
        ("2024-03-04", 1, 79.0, 79.0, 79.0, 0, 1),
        ("2024-03-05", 3, 80.0, 81.5, 81.5, -64800, 1),
    ]


async def test_new_keys_are_copied_straight_in_and_stored_ones_are_upserted(
    pool: asyncpg.Pool,
) -> None:
    user = uuid.uuid4()
    envelope = RawPayloadReceived(
        id=uuid.uuid4(), user_id=user, source="oura", resource="heartrate",
        fetched_at=datetime.now(UTC), payload={},
    )  # fmt: skip

    def beat(minute: int, bpm: float, record: str = "") -> Sample:
        at = datetime(2024, 3, 1, 8, minute, tzinfo=UTC)
        return measurement(
            envelope, metric="heart_rate", value=bpm, unit="bpm", start=at, end=at,
            utc_offset_s=0, source_field="bpm", source_record_id=record,
        )  # fmt: skip

    first = [beat(0, 60), beat(1, 61)]
    async with pool.acquire() as conn, conn.transaction():
        changed = (await db.upsert_samples(conn, first, names_one_record)).changed
    assert [(c.sample.value, c.revision, c.created) for c in changed] == [
        (60, 1, True),
        (61, 1, True),
    ]
    later = [beat(1, 62), beat(2, 63), beat(3, 64, record="doc-1")]
    async with pool.acquire() as conn, conn.transaction():
        new, staged = await db.split_by_existence(conn, later, names_one_record)
        # Minute 1 is stored; a provider record may supersede another key, so it is staged.
        assert [s.value for s in new] == [63]
        assert sorted(s.value for s in staged) == [62, 64]
        # A writer that stored a key after the check: the COPY is undone, nothing else.
        assert await db.insert_new(conn, [beat(2, 63), beat(0, 60)]) is None
        assert await conn.fetchval(
            "SELECT count(*) FROM normalizer.samples WHERE user_id = $1", user
        ) == 2  # fmt: skip
        changed = (await db.upsert_samples(conn, later, names_one_record)).changed
    assert sorted((c.sample.value, c.revision, c.created) for c in changed) == [
        (62, 2, False),
        (63, 1, True),
        (64, 1, True),
    ]


async def test_a_batch_applied_twice_changes_nothing_the_second_time(pool: asyncpg.Pool) -> None:
    user = uuid.uuid4()
    batch = [
        message(user, [steps("2024-03-01T10:00:00Z", "2024-03-01T10:10:00Z", 10, "W")], 1),
        message(user, [steps("2024-03-01T10:10:00Z", "2024-03-01T10:20:00Z", 20, "W")], 2),
    ]
    await handler(pool).handle(batch)
    before = await pool.fetch("SELECT * FROM normalizer.samples ORDER BY id")
    rollups_before = await daily(pool, user)
    archived_before = await pool.fetchval("SELECT count(*) FROM normalizer.raw_archive")
    await handler(pool).handle(batch)
    assert await pool.fetch("SELECT * FROM normalizer.samples ORDER BY id") == before
    assert await daily(pool, user) == rollups_before == [("steps", "2024-03-01", 2, 30, 30, 1)]
    assert await pool.fetchval("SELECT count(*) FROM normalizer.raw_archive") == archived_before
    assert archived_before == 2
    assert await events(pool) == [("created", "steps", 1), ("created", "steps", 1)]


async def test_a_record_whose_times_were_edited_replaces_its_old_sample(
    pool: asyncpg.Pool,
) -> None:
    """Strava's activity 7 cropped from 60 to 45 minutes: same record id, new interval."""
    user = uuid.uuid4()
    ride = {"metric": "workout", "unit": "s", "start": "2024-03-01T10:00:00Z", "id": "7"}
    first = {**ride, "value": 3600, "end": "2024-03-01T11:00:00Z"}
    cropped = {**ride, "value": 2700, "end": "2024-03-01T10:45:00Z"}
    other = {**ride, "value": 60, "end": "2024-03-01T10:01:00Z", "id": "8"}
    strava = handler(pool, {"strava": listed})
    await strava.handle([message(user, [first, other], source="strava")])
    await strava.handle([message(user, [cropped], source="strava")])
    rows = await pool.fetch(
        "SELECT source_record_id, value FROM normalizer.samples WHERE user_id = $1 ORDER BY 1",
        user,
    )
    assert [tuple(r) for r in rows] == [("7", 2700.0), ("8", 60.0)]
    assert await events(pool) == [
        ("created", "workout", 1),
        ("created", "workout", 1),
        ("created", "workout", 1),
        ("deleted", "workout", 2),
    ]
    # Both versions in one batch: the later one wins, the earlier never lands.
    await strava.handle(
        [message(user, [first], 1, "strava"), message(user, [cropped], 2, "strava")]
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM normalizer.samples WHERE user_id = $1 AND source_record_id = '7'",
            user,
        )
        == 1
    )


def apple_export(user: uuid.UUID, records: list[dict[str, Any]], offset: int = 0) -> RawMessage:
    envelope = RawPayloadReceived(
        id=uuid.uuid4(),
        user_id=user,
        source="apple_health",
        resource="export",
        fetched_at=datetime.now(UTC),
        payload={"records": records},
    )
    return RawMessage("t.raw.apple_health", 0, offset, None, orjson.dumps(dump(envelope)))


def apple_sleep(stage: str, start: str, end: str) -> dict[str, Any]:
    return {
        "kind": "record",
        "line": 9,
        "type": "HKCategoryTypeIdentifierSleepAnalysis",
        "sourceName": "Jane\u2019s Apple Watch",
        "startDate": start,
        "endDate": end,
        "value": f"HKCategoryValueSleepAnalysis{stage}",
    }


async def test_a_later_export_of_a_whole_night_replaces_the_partial_night_of_an_earlier_one(
    pool: asyncpg.Pool,
) -> None:
    """An export taken at 03:00 holds the night so far; the next one holds all of it. The
    night's session grew (a new end), and it replaces the partial one: the night counts once."""
    user = uuid.uuid4()
    d1, d2 = "2023-03-31", "2023-04-01"
    so_far = [
        apple_sleep("AsleepCore", f"{d1} 23:10:00 -0700", f"{d2} 00:40:00 -0700"),  # 5400 s
        apple_sleep("AsleepDeep", f"{d2} 00:40:00 -0700", f"{d2} 01:25:00 -0700"),  # 2700 s
        apple_sleep("AsleepCore", f"{d2} 01:25:00 -0700", f"{d2} 02:55:00 -0700"),  # 5400 s
    ]
    whole = [
        *so_far,
        apple_sleep("AsleepREM", f"{d2} 02:55:00 -0700", f"{d2} 03:35:00 -0700"),  # 2400 s
        apple_sleep("AsleepCore", f"{d2} 03:35:00 -0700", f"{d2} 06:50:00 -0700"),  # 11700 s
    ]
    apple = handler(pool, {"apple_health": apple_health.map_payload})
    await apple.handle([apple_export(user, so_far)])
    await apple.handle([apple_export(user, whole)])

    async def nights() -> list[tuple[Any, ...]]:
        rows = await pool.fetch(
            """SELECT start_at, end_at, value FROM normalizer.samples
               WHERE user_id = $1 AND metric = 'sleep_session'""",
            user,
        )
        return [tuple(r) for r in rows]

    full = (datetime(2023, 4, 1, 6, 10, tzinfo=UTC), datetime(2023, 4, 1, 13, 50, tzinfo=UTC))
    assert await nights() == [(*full, 27600.0)]  # 5400 + 2700 + 5400 + 2400 + 11700
    # Both sessions end on 1 April (local): the day holds the whole night only.
    assert await daily(pool, user) == [
        ("sleep_duration", "2023-04-01", 5, 27600.0, 27600.0, 1),  # the same 3 records once
        ("sleep_session", "2023-04-01", 1, 27600.0, 27600.0, 1),
    ]
    session_events = [e for e in await events(pool) if e[1] == "sleep_session"]
    assert session_events == [("created", "sleep_session", 1)] * 2 + [
        ("deleted", "sleep_session", 2)
    ]

    # The same export again changes nothing; both exports in one batch: the later one wins.
    stored = await pool.fetch("SELECT * FROM normalizer.samples ORDER BY id")
    await apple.handle([apple_export(user, whole)])
    assert await pool.fetch("SELECT * FROM normalizer.samples ORDER BY id") == stored
    other = uuid.uuid4()
    await apple.handle([apple_export(other, so_far, 1), apple_export(other, whole, 2)])
    other_nights = await pool.fetchval(
        "SELECT count(*) FROM normalizer.samples WHERE user_id = $1 AND metric = 'sleep_session'",
        other,
    )
    assert other_nights == 1


async def test_a_record_the_source_deleted_is_withdrawn_and_announced(
    pool: asyncpg.Pool,
) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    ride = {"metric": "workout", "unit": "s", "start": "2024-03-01T10:00:00Z", "id": "7"}
    first = {**ride, "value": 3600, "end": "2024-03-01T11:00:00Z"}
    await handler(pool).handle([message(user, [first]), message(other, [first])])
    assert await daily(pool, user) != []
    await handler(pool).handle([message(user, [], withdraw=["7", "unknown"])])
    owners = await pool.fetch("SELECT user_id FROM normalizer.samples")
    assert [r["user_id"] for r in owners] == [other]
    assert await daily(pool, user) == []
    assert (await events(pool))[-1] == ("deleted", "workout", 2)


async def test_a_payload_fetched_before_a_records_deletion_does_not_bring_it_back(
    pool: asyncpg.Pool,
) -> None:
    """A sync already under way when the deletion webhook came publishes the record as it was;
    only a fetch after the deletion may store it again."""
    user = uuid.uuid4()
    ride: dict[str, Any] = {"metric": "workout", "unit": "s", "value": 3600, "id": "7"}
    ride |= {"start": "2024-03-01T10:00:00Z", "end": "2024-03-01T11:00:00Z"}
    other_ride = {**ride, "id": "8", "start": "2024-03-02T10:00:00Z", "end": "2024-03-02T11:00:00Z"}
    t0, t1, t2, t3 = (datetime(2024, 3, 5, hour, tzinfo=UTC) for hour in (8, 9, 10, 11))
    await handler(pool).handle([message(user, [ride], fetched_at=t0)])
    await handler(pool).handle([message(user, [], withdraw=["7"], fetched_at=t2)])

    await handler(pool).handle([message(user, [ride, other_ride], fetched_at=t1)])
    stored = await pool.fetch(
        "SELECT source_record_id FROM normalizer.samples WHERE user_id = $1", user
    )
    assert [r["source_record_id"] for r in stored] == ["8"]
    assert [d[1] for d in await daily(pool, user)] == ["2024-03-02"]

    await handler(pool).handle([message(user, [ride], fetched_at=t3)])
    stored = await pool.fetch(
        "SELECT source_record_id FROM normalizer.samples WHERE user_id = $1 ORDER BY 1", user
    )
    assert [r["source_record_id"] for r in stored] == ["7", "8"]


async def test_deleting_a_sources_samples_empties_its_rollups(pool: asyncpg.Pool) -> None:
    user = uuid.uuid4()
    await handler(pool).handle(
        [message(user, [steps("2024-03-01T10:00:00Z", "2024-03-01T10:10:00Z", 10, "W")])]
    )
    assert await daily(pool, user) != []
    async with pool.acquire() as conn, conn.transaction():
        deleted = await db.delete_source_samples(conn, user, "test")
        await remove(conn, Outbox("normalizer"), TOPICS, deleted)
    assert await daily(pool, user) == []
    assert await hourly(pool, user) == []


async def test_a_users_source_is_written_by_one_transaction_at_a_time(pool: asyncpg.Pool) -> None:
    """`reprocess` beside the live normalizer, or two consumers of one partition during a
    rebalance: a batch of a (user, source) another transaction is writing waits for it to end
    (each recomputes the days it touched from what it sees); other users' batches go on."""
    user, other_user = uuid.uuid4(), uuid.uuid4()
    day = [steps("2024-03-01T10:00:00Z", "2024-03-01T10:10:00Z", 10, "W")]
    async with pool.acquire() as conn, conn.transaction():
        await db.lock_series(conn, [(user, "test")])  # as another writer of it would
        waiting = asyncio.create_task(handler(pool).handle([message(user, day)]))
        await asyncio.wait_for(handler(pool).handle([message(other_user, day, offset=1)]), 10)
        await asyncio.sleep(0.3)
        assert not waiting.done()
        assert await daily(pool, user) == []
        assert await daily(pool, other_user) != []
    assert await asyncio.wait_for(waiting, 10) == []
    assert await daily(pool, user) == [("steps", "2024-03-01", 1, 10.0, 10.0, 1)]


async def test_unmappable_events_are_archived_and_a_fixed_mapper_replays_them(
    pool: asyncpg.Pool,
) -> None:
    """A mapper bug fixed by a code change plus a replay: the misfiled samples are withdrawn
    (announced as deleted), the right ones created, and a second replay changes nothing."""
    user, other = uuid.uuid4(), uuid.uuid4()
    hrv = {
        "metric": "hrv_rmssd",
        "value": 42,
        "unit": "ms",
        "start": "2024-03-01T07:00:00Z",
        "end": "2024-03-01T07:00:00Z",
    }
    await handler(pool, {"test": buggy}).handle([message(user, [hrv]), message(other, [hrv])])
    await pool.execute("DELETE FROM normalizer.outbox")
    assert await pool.fetchval(
        "SELECT metric FROM normalizer.samples WHERE user_id = $1", user
    ) == ("hrv_sdnn")

    report = await reprocess(
        pool, Outbox("normalizer"), TOPICS, REGISTRY, db.ArchiveFilter(user_id=user)
    )
    assert (report.events, report.samples, report.changed, report.withdrawn) == (1, 1, 1, 1)
    rows = await pool.fetch(
        "SELECT user_id = $1 AS mine, metric FROM normalizer.samples ORDER BY 1", user
    )
    assert [(r["mine"], r["metric"]) for r in rows] == [(False, "hrv_sdnn"), (True, "hrv_rmssd")]
    assert sorted(await events(pool)) == [("created", "hrv_rmssd", 1), ("deleted", "hrv_sdnn", 2)]
    assert await daily(pool, user) == [("hrv_rmssd", "2024-03-01", 1, 42.0, 42.0, 1)]

    await pool.execute("DELETE FROM normalizer.outbox")
    again = await reprocess(
        pool, Outbox("normalizer"), TOPICS, REGISTRY, db.ArchiveFilter(user_id=user)
    )
    assert (again.changed, again.withdrawn) == (0, 0)
    assert await events(pool) == []


async def test_a_payload_no_mapper_can_read_is_archived_and_reported_by_reprocess(
    pool: asyncpg.Pool,
) -> None:
    user = uuid.uuid4()
    dead = await handler(pool, {}).handle([message(user, [])])
    assert [d.event.reason for d in dead] == ["no mapper for source 'test'"]
    assert await pool.fetchval("SELECT count(*) FROM normalizer.raw_archive") == 1
    report = await reprocess(pool, Outbox("normalizer"), TOPICS, {}, db.ArchiveFilter())
    assert [f["reason"] for f in report.failed] == ["no mapper for source 'test'"]


async def test_the_archive_is_pruned_past_its_retention(pool: asyncpg.Pool) -> None:
    user = uuid.uuid4()
    await handler(pool).handle([message(user, []), message(user, [])])
    await pool.execute(
        "UPDATE normalizer.raw_archive SET archived_at = now() - interval '800 days' "
        "WHERE raw_event_id = (SELECT min(raw_event_id::text)::uuid FROM normalizer.raw_archive)"
    )
    async with pool.acquire() as conn:
        cutoff = datetime.now(UTC).replace(year=datetime.now(UTC).year - 2)
        assert await db.prune_archive(conn, cutoff, limit=10) == 1
    assert await pool.fetchval("SELECT count(*) FROM normalizer.raw_archive") == 1


async def test_a_rejected_record_is_kept_with_its_reason_and_the_rest_is_stored(
    pool: asyncpg.Pool,
) -> None:
    user = uuid.uuid4()
    await handler(pool, {"csv": csv.map_rows}).handle(
        [RawMessage("t.raw.csv", 0, 0, None, orjson.dumps(dump(csv_envelope(user))))]
    )
    assert await pool.fetchval("SELECT count(*) FROM normalizer.samples WHERE user_id = $1", user)
    rows = await pool.fetch(
        "SELECT record, reason FROM normalizer.rejected_records WHERE user_id = $1", user
    )
    assert [tuple(r) for r in rows] == [("row 3", "column 'Steps': 'many' is not a number")]


def csv_envelope(user: uuid.UUID) -> RawPayloadReceived:
    return RawPayloadReceived(
        id=uuid.uuid4(),
        user_id=user,
        source="csv",
        resource="rows",
        fetched_at=datetime.now(UTC),
        payload={
            "mapping": {
                "timestamp": "Date",
                "columns": {"Steps": {"metric": "steps", "unit": "count"}},
            },
            "rows": [
                {"row": 2, "values": {"Date": "2024-03-01", "Steps": "10"}},
                {"row": 3, "values": {"Date": "2024-03-02", "Steps": "many"}},
            ],
        },
    )


async def test_a_batch_of_big_messages_is_written_in_several_transactions(
    pool: asyncpg.Pool,
) -> None:
    """Memory stays bounded: at most `max_samples` per transaction; what cannot be read still
    becomes a dead letter and the rest is stored."""
    user = uuid.uuid4()
    small = RawHandler(pool, Outbox("normalizer"), TOPICS, REGISTRY, max_samples=1)
    unreadable = RawMessage("t.raw.test", 0, 9, None, b"{not json")
    dead = await small.handle(
        [
            message(user, [steps("2024-03-01T10:00:00Z", "2024-03-01T10:10:00Z", 10, "W")], 1),
            unreadable,
            message(user, [steps("2024-03-01T11:00:00Z", "2024-03-01T11:10:00Z", 20, "W")], 2),
        ]
    )
    assert [d.event.offset for d in dead] == [9]
    assert await daily(pool, user) == [("steps", "2024-03-01", 2, 30.0, 30.0, 1)]
    commits = await pool.fetchval(
        "SELECT count(DISTINCT xmin::text) FROM normalizer.samples WHERE user_id = $1", user
    )
    assert commits == 2
