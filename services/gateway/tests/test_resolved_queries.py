"""Resolved metric series and the daily summary over the real gateway app and a real PostgreSQL
holding the normalizer's schema (its migrations applied by path) with rollup rows inserted as the
normalizer writes them. The preferences service is a fake answering `GET /v1/preferences` per
caller. Expected values are worked out by hand in the comments."""

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from healthmesh.normalizer.rollups import sum_up_hours

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("normalizer_tables")]

CATEGORIES = ("activity", "sleep", "body", "heart", "recovery", "nutrition")


def preferences(**chosen: list[str]) -> dict[str, Any]:
    """A `GET /v1/preferences` answer: the given order per category, fallback on."""
    return {
        "categories": {c: {"sources": chosen.get(c, []), "fallback": True} for c in CATEGORIES},
        "overrides": {},
    }


# --- rollup rows as the normalizer writes them ------------------------------------------------


def row(
    user: UUID,
    metric: str,
    source: str,
    key: date | datetime,
    total: float,
    *,
    samples: int = 1,
    raw_total: float | None = None,
    last_at: datetime | None = None,
    offset: int = 0,
    devices: int = 1,
) -> tuple[Any, ...]:
    moment = last_at or (
        key if isinstance(key, datetime) else datetime(key.year, key.month, key.day, 12, tzinfo=UTC)
    )
    raw = total if raw_total is None else raw_total
    return (
        user,
        metric,
        source,
        key,
        samples,
        total,
        raw,
        total,
        total,
        total,
        moment,
        offset,
        devices,
    )


async def insert(pool: asyncpg.Pool, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
    """Rollup rows, then each day row's summary of its hours, as the normalizer keeps it."""
    key = "day" if table == "daily_rollups" else "hour"
    rows = list(rows)
    await pool.executemany(
        f"""INSERT INTO normalizer.{table} (user_id, metric, source, {key}, samples, total,
                raw_total, minimum, maximum, last_value, last_at, utc_offset_s, devices)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        rows,
    )
    days = await pool.fetch(
        "SELECT user_id, metric, source, day FROM normalizer.daily_rollups "
        "WHERE user_id = ANY($1::uuid[])",
        list({r[0] for r in rows}),
    )
    await sum_up_hours(pool, [tuple(d) for d in days])


async def insert_sample(
    pool: asyncpg.Pool,
    user: UUID,
    metric: str,
    source: str,
    start: datetime,
    end: datetime,
    value: float,
    offset: int = 0,
) -> None:
    await pool.execute(
        """INSERT INTO normalizer.samples (user_id, metric, source, start_at, end_at, id, value,
               unit, utc_offset_s, quality, raw_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, 's', $8, 1.0, $9)""",
        user,
        metric,
        source,
        start,
        end,
        uuid4(),
        value,
        offset,
        uuid4(),
    )


DAY = date(2024, 3, 12)
MIDNIGHT = datetime(2024, 3, 12, tzinfo=UTC)

# Apple Health, one source with two devices: the phone carried 08:00-13:00 (500 steps an hour)
# and the watch worn 14:00-22:00 (7 hours of 1,240 and one of 1,242 = 9,922). In 14:00-17:00 the
# phone also counted 300 an hour, which the overlap-free `total` leaves out (`raw_total` has it).
APPLE_HOURS = {h: 500.0 for h in range(8, 13)} | {h: 1240.0 for h in range(14, 21)} | {21: 1242.0}
APPLE_RAW = {h: v + (300 if h in (14, 15, 16) else 0) for h, v in APPLE_HOURS.items()}
# The ring all day: 0 in 0-6, 300 in 7-13 (2,100), 200 in 14-21 (1,600), 228.5 in 22-23 (457)
# = 4,157.
RING_HOURS = {h: 0.0 for h in range(7)} | {h: 300.0 for h in range(7, 14)}
RING_HOURS |= {h: 200.0 for h in range(14, 22)} | {22: 228.5, 23: 228.5}


async def watch_phone_and_ring_day(pool: asyncpg.Pool, user: UUID) -> None:
    # Apple Health's day: 2,500 + 9,922 = 12,422 overlap-free, 12,422 + 900 = 13,322 raw.
    await insert(
        pool,
        "daily_rollups",
        [
            row(user, "steps", "apple_health", DAY, 12422, samples=13, raw_total=13322, devices=2),
            row(user, "steps", "oura", DAY, 4157, samples=24),
        ],
    )
    await insert(
        pool,
        "hourly_rollups",
        [
            row(
                user,
                "steps",
                "apple_health",
                MIDNIGHT + timedelta(hours=h),
                v,
                raw_total=APPLE_RAW[h],
            )
            for h, v in APPLE_HOURS.items()
        ]
        + [
            row(user, "steps", "oura", MIDNIGHT + timedelta(hours=h), v)
            for h, v in RING_HOURS.items()
        ],
    )


async def steps(
    client: httpx.AsyncClient, auth: dict[str, str], **query: str
) -> list[dict[str, Any]]:
    """The caller's steps points for 12 March 2024, or for the `start` and `end` in `query`."""
    answer = await client.get(
        "/v1/metrics/steps",
        params={"start": "2024-03-12", "end": "2024-03-12", **query},
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    points: list[dict[str, Any]] = answer.json()["points"]
    return points


async def test_a_watch_phone_and_ring_day_falls_back_per_hour(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    ada: dict[str, str],
    ada_id: UUID,
    preferences_by_token: dict[str, dict[str, Any]],
) -> None:
    await watch_phone_and_ring_day(pool, ada_id)
    preferences_by_token[ada["Authorization"]] = preferences(activity=["apple_health", "oura"])
    # Apple Health's 13 hours (2,500 + 9,922 = 12,422, its overlap-free totals, not the raw
    # 13,322), the ring's other 11: hours 0-6 (0), 7 (300), 13 (300), 22-23 (457) = 1,057.
    # 12,422 + 1,057 = 13,479.
    [day] = await steps(client, ada)
    assert [day] == [
        {
            "start": "2024-03-12T00:00:00+00:00",
            "end": "2024-03-13T00:00:00+00:00",
            "value": 13479.0,
            "source": "apple_health",
            "fallback": True,
            "date": "2024-03-12",
            "sources": [
                {"source": "apple_health", "value": 12422.0, "hours": 13},
                {"source": "oura", "value": 1057.0, "hours": 11},
            ],
        }
    ]
    # The same day rebuilt in a zone at +00:00 that day: the same answer.
    [london] = await steps(client, ada, tz="Europe/London")
    assert (london["value"], london["sources"]) == (13479.0, day["sources"])
    hours = await steps(client, ada, resolution="hour")
    assert len(hours) == 24
    assert hours[7] == {
        "start": "2024-03-12T07:00:00+00:00",
        "end": "2024-03-12T08:00:00+00:00",
        "value": 300.0,
        "source": "oura",
        "fallback": True,
    }
    assert (hours[14]["value"], hours[14]["source"], hours[14]["fallback"]) == (
        1240.0,
        "apple_health",
        False,
    )


async def test_with_fallback_off_only_the_first_source_answers(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    ada: dict[str, str],
    ada_id: UUID,
    preferences_by_token: dict[str, dict[str, Any]],
) -> None:
    await watch_phone_and_ring_day(pool, ada_id)
    chosen = preferences(activity=["apple_health", "oura"])
    chosen["categories"]["activity"]["fallback"] = False
    preferences_by_token[ada["Authorization"]] = chosen
    [day] = await steps(client, ada)
    assert (day["value"], day["source"], day["fallback"]) == (12422.0, "apple_health", False)
    assert "sources" not in day
    # An override for steps puts the ring first: its whole day, 4,157.
    chosen["overrides"] = {"steps": ["oura", "apple_health"]}
    [day] = await steps(client, ada)
    assert (day["value"], day["source"], day["fallback"]) == (4157.0, "oura", False)


async def test_every_sources_own_series_and_one_source(
    client: httpx.AsyncClient, pool: asyncpg.Pool, ada: dict[str, str], ada_id: UUID
) -> None:
    await watch_phone_and_ring_day(pool, ada_id)
    answer = await client.get(
        "/v1/metrics/steps",
        params={"start": "2024-03-12", "end": "2024-03-12", "source": "all"},
        headers=ada,
    )
    series = {s["source"]: [p["value"] for p in s["points"]] for s in answer.json()["series"]}
    assert series == {"apple_health": [12422.0], "oura": [4157.0]}
    assert all(not p["fallback"] for p in answer.json()["points"])
    [ring] = await steps(client, ada, source="oura")
    assert (ring["value"], ring["source"], ring["fallback"]) == (4157.0, "oura", False)


async def test_a_user_with_a_single_source_gets_its_values(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    ada: dict[str, str],
    ada_id: UUID,
    preferences_by_token: dict[str, dict[str, Any]],
) -> None:
    # Only the ring, ranked last: it is the only source with data, so never a fallback.
    await insert(pool, "daily_rollups", [row(ada_id, "steps", "oura", DAY, 4157, samples=24)])
    await insert(
        pool,
        "hourly_rollups",
        [
            row(ada_id, "steps", "oura", MIDNIGHT + timedelta(hours=h), v)
            for h, v in RING_HOURS.items()
        ],
    )
    preferences_by_token[ada["Authorization"]] = preferences(
        activity=["apple_health", "fitbit", "oura"]
    )
    [day] = await steps(client, ada)
    assert (day["value"], day["source"], day["fallback"]) == (4157.0, "oura", False)
    assert "sources" not in day


async def test_weeks_and_months_sum_the_resolved_days(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    ada: dict[str, str],
    ada_id: UUID,
    preferences_by_token: dict[str, dict[str, Any]],
) -> None:
    # Apple Health every day of 4-31 March but the 10th, d x 100 steps on day d; the ring on the
    # 10th only (5,000, a fallback); Apple Health 100 on 1 April.
    rows = [
        row(ada_id, "steps", "apple_health", date(2024, 3, d), d * 100.0)
        for d in range(4, 32)
        if d != 10
    ]
    rows += [
        row(ada_id, "steps", "oura", date(2024, 3, 10), 5000.0),
        row(ada_id, "steps", "apple_health", date(2024, 4, 1), 100.0),
    ]
    await insert(pool, "daily_rollups", rows)
    preferences_by_token[ada["Authorization"]] = preferences(activity=["apple_health", "oura"])
    window = {"start": "2024-03-01", "end": "2024-04-30"}
    weeks = await steps(client, ada, **window, resolution="week")
    # Mon 4 - Sun 10: (4+5+6+7+8+9) x 100 = 3,900 + the ring's 5,000 = 8,900, mostly the ring's.
    # 11-17: 98 x 100; 18-24: 147 x 100; 25-31: 196 x 100; 1-7 April: 100.
    assert [(w["date"], w["value"], w["source"], w["fallback"]) for w in weeks] == [
        ("2024-03-04", 8900.0, "oura", True),
        ("2024-03-11", 9800.0, "apple_health", False),
        ("2024-03-18", 14700.0, "apple_health", False),
        ("2024-03-25", 19600.0, "apple_health", False),
        ("2024-04-01", 100.0, "apple_health", False),
    ]
    assert weeks[0]["sources"] == [
        {"source": "apple_health", "value": 3900.0},
        {"source": "oura", "value": 5000.0},
    ]
    assert (weeks[0]["start"], weeks[0]["end"]) == (
        "2024-03-04T00:00:00+00:00",
        "2024-03-11T00:00:00+00:00",
    )
    months = await steps(client, ada, **window, resolution="month")
    # March: 4+...+31 = (4+31) x 28 / 2 = 490, less the 10th = 480 -> 48,000 + 5,000 = 53,000.
    assert [(m["date"], m["value"], m["source"], m["fallback"]) for m in months] == [
        ("2024-03-01", 53000.0, "apple_health", True),
        ("2024-04-01", 100.0, "apple_health", False),
    ]


async def test_a_zone_rebuckets_days_and_a_23_hour_day_is_one_day(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    ada: dict[str, str],
    ada_id: UUID,
    preferences_by_token: dict[str, dict[str, Any]],
) -> None:
    # A device recording in UTC: 1 step every hour from 30 March 00:00 to 1 April 23:59 UTC,
    # and its day rollups by that offset (24 a day). A night's sleep 22:30-05:00 UTC (6.5 h =
    # 23,400 s) ending on 31 March.
    start = datetime(2024, 3, 30, tzinfo=UTC)
    await insert(
        pool,
        "hourly_rollups",
        [row(ada_id, "steps", "fitbit", start + timedelta(hours=h), 1.0) for h in range(72)],
    )
    await insert(
        pool,
        "daily_rollups",
        [row(ada_id, "steps", "fitbit", date(2024, 3, d), 24.0, samples=24) for d in (30, 31)]
        + [row(ada_id, "steps", "fitbit", date(2024, 4, 1), 24.0, samples=24)],
    )
    night = (datetime(2024, 3, 30, 22, 30, tzinfo=UTC), datetime(2024, 3, 31, 5, tzinfo=UTC))
    await insert_sample(pool, ada_id, "sleep_duration", "fitbit", *night, 23400.0)
    preferences_by_token[ada["Authorization"]] = preferences(activity=["fitbit"])
    window = {"start": "2024-03-30", "end": "2024-04-01"}
    assert [p["value"] for p in await steps(client, ada, **window)] == [24.0, 24.0, 24.0]
    berlin = {**window, "tz": "Europe/Berlin"}
    points = await steps(client, ada, **berlin)
    # Berlin's 30 March (+01:00) starts at 29 March 23:00 UTC: the 23 hours from 00:00 UTC.
    # 31 March starts at 30 March 23:00 UTC and, clocks jumping at 02:00, ends at 31 March
    # 22:00 UTC (+02:00): 23 hours. 1 April: 31 March 22:00 - 1 April 22:00 UTC, 24 hours.
    assert [(p["date"], p["value"], p["start"], p["end"]) for p in points] == [
        ("2024-03-30", 23.0, "2024-03-30T00:00:00+01:00", "2024-03-31T00:00:00+01:00"),
        ("2024-03-31", 23.0, "2024-03-31T00:00:00+01:00", "2024-04-01T00:00:00+02:00"),
        ("2024-04-01", 24.0, "2024-04-01T00:00:00+02:00", "2024-04-02T00:00:00+02:00"),
    ]
    answer = await client.get("/v1/metrics/sleep_duration", params=berlin, headers=ada)
    # It ends at 07:00 in Berlin on 31 March.
    assert [(p["date"], p["value"]) for p in answer.json()["points"]] == [("2024-03-31", 23400.0)]


def summary_rows(user: UUID) -> list[tuple[Any, ...]]:
    return [
        row(user, "steps", "apple_health", DAY, 9000.0),
        row(user, "sleep_duration", "oura", DAY, 27000.0),
        row(user, "sleep_duration", "apple_health", DAY, 25000.0),
        row(user, "body_mass", "withings", DAY, 80.5),
        # 100 readings adding up to 7,200 bpm: a mean of 72.
        row(user, "heart_rate", "apple_health", DAY, 7200.0, samples=100),
        row(user, "readiness", "oura", DAY, 85.0),
        row(user, "energy_intake", "cronometer", DAY, 2100.0),
        row(user, "steps", "oura", DAY - timedelta(days=1), 4000.0),
    ]


async def test_the_daily_summary_resolves_every_category_with_provenance(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    ada: dict[str, str],
    ada_id: UUID,
    preferences_by_token: dict[str, dict[str, Any]],
) -> None:
    await insert(pool, "daily_rollups", summary_rows(ada_id))
    preferences_by_token[ada["Authorization"]] = preferences(
        activity=["apple_health", "oura"], sleep=["oura", "apple_health"], body=["withings"]
    )
    answer = await client.get(
        "/v1/summary/daily",
        params={"start": "2024-03-10", "end": "2024-03-13"},
        headers=ada,
    )
    assert answer.status_code == 200, answer.text
    empty: dict[str, Any] = {c: {} for c in CATEGORIES}
    assert answer.json() == {
        "days": [
            {
                **empty,
                "date": "2024-03-11",
                # Apple Health has steps in the window, just not this day: the ring falls back.
                "activity": {
                    "steps": {"value": 4000.0, "unit": "count", "source": "oura", "fallback": True}
                },
            },
            {
                "date": "2024-03-12",
                "activity": {
                    "steps": {
                        "value": 9000.0,
                        "unit": "count",
                        "source": "apple_health",
                        "fallback": False,
                    }
                },
                "sleep": {
                    "sleep_duration": {
                        "value": 27000.0,
                        "unit": "s",
                        "source": "oura",
                        "fallback": False,
                    }
                },
                "body": {
                    "body_mass": {
                        "value": 80.5,
                        "unit": "kg",
                        "source": "withings",
                        "fallback": False,
                    }
                },
                "heart": {
                    "heart_rate": {
                        "value": 72.0,
                        "unit": "bpm",
                        "source": "apple_health",
                        "fallback": False,
                    }
                },
                "recovery": {
                    "readiness": {
                        "value": 85.0,
                        "unit": "score",
                        "source": "oura",
                        "fallback": False,
                    }
                },
                "nutrition": {
                    "energy_intake": {
                        "value": 2100.0,
                        "unit": "kcal",
                        "source": "cronometer",
                        "fallback": False,
                    }
                },
            },
        ]
    }


async def test_an_unchanged_summary_is_304_and_a_changed_one_a_new_etag(
    client: httpx.AsyncClient, pool: asyncpg.Pool, ada: dict[str, str], ada_id: UUID
) -> None:
    await insert(pool, "daily_rollups", summary_rows(ada_id))
    window = {"start": "2024-03-10", "end": "2024-03-13"}
    first = await client.get("/v1/summary/daily", params=window, headers=ada)
    etag = first.headers["etag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = await client.get(
        "/v1/summary/daily", params=window, headers={**ada, "If-None-Match": etag}
    )
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    other = await client.get(
        "/v1/summary/daily", params=window, headers={**ada, "If-None-Match": '"nope"'}
    )
    assert other.status_code == 200 and other.content == first.content
    await insert(pool, "daily_rollups", [row(ada_id, "floors", "apple_health", DAY, 12.0)])
    changed = await client.get(
        "/v1/summary/daily", params=window, headers={**ada, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["days"][1]["activity"]["floors"]["value"] == 12.0


async def test_bad_summary_and_metric_queries_are_422(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    for path, params in [
        ("/v1/summary/daily", {"tz": "Mars/Olympus"}),
        ("/v1/summary/daily", {"start": "2020-01-01", "end": "2024-01-01"}),
        ("/v1/summary/daily", {"start": "2024-03-05", "end": "2024-03-01"}),
        ("/v1/metrics/steps", {"start": "soon"}),
    ]:
        answer = await client.get(path, params=params, headers=ada)
        assert answer.status_code == 422, (path, params, answer.text)
        assert answer.json()["error"]["message"]


async def test_another_users_token_never_sees_the_data(
    client: httpx.AsyncClient,
    pool: asyncpg.Pool,
    ada: dict[str, str],
    ada_id: UUID,
    bob: dict[str, str],
) -> None:
    await watch_phone_and_ring_day(pool, ada_id)
    await insert(pool, "daily_rollups", summary_rows(ada_id)[1:])
    await insert_sample(
        pool, ada_id, "steps", "oura", MIDNIGHT, MIDNIGHT + timedelta(days=1), 4157.0
    )
    window = {"start": "2024-03-10", "end": "2024-03-13"}
    for query in (
        {},
        {"source": "all"},
        {"source": "oura"},
        {"resolution": "hour"},
        {"resolution": "week"},
        {"resolution": "raw", "source": "all"},
        {"tz": "Europe/Berlin"},
    ):
        mine = await client.get("/v1/metrics/steps", params={**window, **query}, headers=ada)
        assert mine.json()["points"], query
        theirs = await client.get("/v1/metrics/steps", params={**window, **query}, headers=bob)
        assert theirs.status_code == 200 and theirs.json()["points"] == [], query
    summary = await client.get("/v1/summary/daily", params=window, headers=bob)
    assert summary.json() == {"days": []}
    assert (await client.get("/v1/summary/daily", params=window)).status_code == 401
