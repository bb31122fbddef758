"""Conflicts, echoes and explanations over the real gateway app and a real PostgreSQL holding the
normalizer's tables (its migrations applied by path, rows inserted as the normalizer writes them:
samples plus their day and hour rollups, worked out by hand). The preferences service is a fake
answering its documented `GET /v1/preferences` per caller."""

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

pytestmark = pytest.mark.usefixtures("normalizer_tables")

HOUR = 3600


# --- rows as the normalizer writes them ---------------------------------------------------------


async def sample(
    pool: asyncpg.Pool,
    user_id: UUID,
    metric: str,
    source: str,
    start: datetime,
    seconds: int,
    value: float,
    *,
    unit: str,
    device: str | None = None,
    utc_offset_s: int = HOUR,
    quality: float = 1.0,
    quality_reason: str | None = None,
) -> UUID:
    ident = uuid4()
    await pool.execute(
        """INSERT INTO normalizer.samples (user_id, metric, source, start_at, end_at,
               source_record_id, id, value, unit, utc_offset_s, device, quality, quality_reason,
               raw_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)""",
        user_id,
        metric,
        source,
        start,
        start + timedelta(seconds=seconds),
        device or "",
        ident,
        value,
        unit,
        utc_offset_s,
        device,
        quality,
        quality_reason,
        uuid4(),
    )
    return ident


async def rollup(
    pool: asyncpg.Pool,
    table: str,
    key: date | datetime,
    user_id: UUID,
    metric: str,
    source: str,
    *,
    samples: int,
    total: float,
    raw_total: float | None = None,
    minimum: float,
    maximum: float,
    last_value: float,
    last_at: datetime,
    devices: int = 1,
    utc_offset_s: int = HOUR,
) -> None:
    column = "day" if table == "daily_rollups" else "hour"
    await pool.execute(
        f"""INSERT INTO normalizer.{table} (user_id, metric, source, {column}, samples, total,
               raw_total, minimum, maximum, last_value, last_at, utc_offset_s, devices)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
        user_id,
        metric,
        source,
        key,
        samples,
        total,
        total if raw_total is None else raw_total,
        minimum,
        maximum,
        last_value,
        last_at,
        utc_offset_s,
        devices,
    )


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


# --- echoes ---------------------------------------------------------------------------------


@pytest.mark.integration
async def test_a_withings_weigh_in_echoed_in_apple_health_counts_once(
    pool: asyncpg.Pool, client: httpx.AsyncClient, ada: dict[str, str], ada_id: UUID
) -> None:
    # 2024-03-11 in Berlin (+01:00). Withings: 07:00 80.0 kg and 21:00 81.0 kg. Apple Health got
    # only the morning one, written by the Withings app (read back from lb: 80.0145 kg).
    morning = await sample(
        pool, ada_id, "body_mass", "withings", at(11, 6), 0, 80.0, unit="kg", device="Body+"
    )
    await sample(
        pool, ada_id, "body_mass", "withings", at(11, 20), 0, 81.0, unit="kg", device="Body+"
    )
    copy = await sample(
        pool, ada_id, "body_mass", "apple_health", at(11, 6), 0, 80.0145, unit="kg",
        device="Withings",
    )  # fmt: skip
    # Day rollups: Withings 2 readings (80.0 + 81.0 = 161.0), last 81.0; Apple 1 reading.
    await rollup(
        pool, "daily_rollups", date(2024, 3, 11), ada_id, "body_mass", "withings",
        samples=2, total=161.0, minimum=80.0, maximum=81.0, last_value=81.0, last_at=at(11, 20),
    )  # fmt: skip
    await rollup(
        pool, "daily_rollups", date(2024, 3, 11), ada_id, "body_mass", "apple_health",
        samples=1, total=80.0145, minimum=80.0145, maximum=80.0145, last_value=80.0145,
        last_at=at(11, 6),
    )  # fmt: skip

    # Last values 81.0 vs 80.0145 are 0.9855 kg apart (> 0.5), but Apple's only reading is a
    # copy of Withings' morning one: no conflict.
    answer = await client.get(
        "/v1/conflicts", params={"start": "2024-03-11", "end": "2024-03-11"}, headers=ada
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"conflicts": []}

    explained = await client.get(
        "/v1/metrics/body_mass/explain", params={"date": "2024-03-11"}, headers=ada
    )
    assert explained.status_code == 200, explained.text
    body = explained.json()
    assert (body["value"], body["source"], body["fallback"]) == (81.0, "withings", False)
    assert body["dropped"]["echoes"] == [
        {
            "id": str(copy),
            "source": "apple_health",
            "device": "Withings",
            "echo_of": {"id": str(morning), "source": "withings"},
            "named": True,
        }
    ]
    copied = next(s for s in body["samples"] if s["id"] == str(copy))
    assert copied["echo_of"] == {"id": str(morning), "source": "withings"}
    assert body["decision"]["preference"] == {
        "decided_by": "category:body",
        "default": True,
        "sources": [
            "withings",
            "fitbit",
            "apple_health",
            "whoop",
            "cronometer",
            "myfitnesspal",
            "csv",
        ],
        "fallback": True,
    }


@pytest.mark.integration
async def test_a_strava_run_echoed_in_apple_health_is_no_conflict(
    pool: asyncpg.Pool, client: httpx.AsyncClient, ada: dict[str, str], ada_id: UUID
) -> None:
    # Strava: a 07:00-08:00 run (3,600 s) and an 18:00-18:30 one (1,800 s). Apple Health has the
    # morning run as written by the Strava app, with Strava's moving time (3,540 s).
    run = await sample(pool, ada_id, "workout", "strava", at(12, 6), 3600, 3600.0, unit="s")
    await sample(pool, ada_id, "workout", "strava", at(12, 17), 1800, 1800.0, unit="s")
    copy = await sample(
        pool, ada_id, "workout", "apple_health", at(12, 6), 3600, 3540.0, unit="s",
        device="Strava",
    )  # fmt: skip
    await rollup(
        pool, "daily_rollups", date(2024, 3, 12), ada_id, "workout", "strava",
        samples=2, total=5400.0, minimum=1800.0, maximum=3600.0, last_value=1800.0,
        last_at=at(12, 17),
    )  # fmt: skip
    await rollup(
        pool, "daily_rollups", date(2024, 3, 12), ada_id, "workout", "apple_health",
        samples=1, total=3540.0, minimum=3540.0, maximum=3540.0, last_value=3540.0,
        last_at=at(12, 6),
    )  # fmt: skip

    # 5,400 vs 3,540 s: 1,860 s apart (> max(600 s, 10% of 5,400 = 540 s)), yet Apple's one
    # workout is Strava's run: no conflict.
    answer = await client.get(
        "/v1/conflicts",
        params={"start": "2024-03-12", "end": "2024-03-12", "metric": "workout"},
        headers=ada,
    )
    assert answer.json() == {"conflicts": []}
    explained = (
        await client.get("/v1/metrics/workout/explain", params={"date": "2024-03-12"}, headers=ada)
    ).json()
    assert [(e["id"], e["echo_of"]) for e in explained["dropped"]["echoes"]] == [
        (str(copy), {"id": str(run), "source": "strava"})
    ]


# --- conflicts ------------------------------------------------------------------------------


async def steps_day(pool: asyncpg.Pool, user_id: UUID, day: int, oura: float, apple: float) -> None:
    for source, steps in (("oura", oura), ("apple_health", apple)):
        await rollup(
            pool, "daily_rollups", date(2024, 3, day), user_id, "steps", source,
            samples=1, total=steps, minimum=steps, maximum=steps, last_value=steps,
            last_at=at(day - 1, 23),
        )  # fmt: skip


@pytest.mark.integration
async def test_sources_far_apart_are_a_conflict_and_close_ones_are_not(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    ada_id: UUID,
    bob: dict[str, str],
) -> None:
    # 13 March: Oura 10,000 vs Apple 12,500 steps, 2,500 apart (> 10% of 12,500 = 1,250).
    # 14 March: 10,000 vs 10,500, 500 apart (<= 1,050).
    await steps_day(pool, ada_id, 13, 10_000, 12_500)
    await steps_day(pool, ada_id, 14, 10_000, 10_500)
    window = {"start": "2024-03-13", "end": "2024-03-14"}
    answer = await client.get("/v1/conflicts", params=window, headers=ada)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "conflicts": [
            {
                "date": "2024-03-13",
                "metric": "steps",
                "unit": "count",
                "tolerance": {"absolute": 200, "relative": 0.1},
                "values": [
                    {"source": "apple_health", "value": 12_500},
                    {"source": "oura", "value": 10_000},
                ],
            }
        ]
    }
    only_heart = await client.get(
        "/v1/conflicts", params={**window, "metric": "heart_rate"}, headers=ada
    )
    assert only_heart.json() == {"conflicts": []}
    assert (await client.get("/v1/conflicts", params=window, headers=bob)).json() == {
        "conflicts": []
    }


@pytest.mark.integration
@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"metric": "stepz"}, "metric"),
        ({"start": "2024-03-13T00:00:00Z"}, "start"),
        ({"start": "2024-03-14", "end": "2024-03-13"}, "start"),
        ({"start": "2023-01-01", "end": "2024-03-13"}, "366"),
    ],
)
async def test_bad_conflict_queries_are_refused_with_the_reason(
    client: httpx.AsyncClient, ada: dict[str, str], params: dict[str, str], reason: str
) -> None:
    answer = await client.get("/v1/conflicts", params=params, headers=ada)
    assert answer.status_code == 422
    assert reason in answer.json()["error"]["message"]


# --- explanations ---------------------------------------------------------------------------


async def watch_and_phone_day(pool: asyncpg.Pool, user_id: UUID) -> dict[str, UUID]:
    """15 March in Berlin (+01:00): Apple Health's Watch and iPhone both counted 09:00-10:00
    (3,000 and 2,800 steps), the iPhone alone 13:00-14:00 (1,000), plus an implausible iPhone
    reading (250,000) the normalizer flagged; Oura's day summary says 3,900."""
    ids = {
        "watch": await sample(
            pool, user_id, "steps", "apple_health", at(15, 8), HOUR, 3000, unit="count",
            device="Ada's Apple Watch",
        ),
        "phone_overlap": await sample(
            pool, user_id, "steps", "apple_health", at(15, 8), HOUR, 2800, unit="count",
            device="Ada's iPhone",
        ),
        "phone_alone": await sample(
            pool, user_id, "steps", "apple_health", at(15, 12), HOUR, 1000, unit="count",
            device="Ada's iPhone",
        ),
        "implausible": await sample(
            pool, user_id, "steps", "apple_health", at(15, 15), 60, 250_000, unit="count",
            device="Ada's iPhone", quality=0.0,
            quality_reason="implausible: 250000 outside [0, 200000] count",
        ),
        "oura": await sample(
            pool, user_id, "steps", "oura", at(14, 23), 24 * HOUR, 3900, unit="count",
        ),
    }  # fmt: skip
    # Overlap-free total: the Watch's 3,000 in full, the iPhone's 09:00 sample not at all (the
    # Watch covered its whole hour), its 13:00 one in full: 3,000 + 0 + 1,000 = 4,000; the plain
    # sum is 3,000 + 2,800 + 1,000 = 6,800. The flagged reading is in no rollup.
    await rollup(
        pool,
        "daily_rollups",
        date(2024, 3, 15),
        user_id,
        "steps",
        "apple_health",
        samples=3,
        total=4000,
        raw_total=6800,
        minimum=1000,
        maximum=3000,
        last_value=1000,
        last_at=at(15, 12),
        devices=2,
    )
    await rollup(
        pool,
        "hourly_rollups",
        at(15, 8),
        user_id,
        "steps",
        "apple_health",
        samples=2,
        total=3000,
        raw_total=5800,
        minimum=2800,
        maximum=3000,
        last_value=3000,
        last_at=at(15, 8),
        devices=2,
    )
    await rollup(
        pool,
        "hourly_rollups",
        at(15, 12),
        user_id,
        "steps",
        "apple_health",
        samples=1,
        total=1000,
        minimum=1000,
        maximum=1000,
        last_value=1000,
        last_at=at(15, 12),
    )
    await rollup(
        pool, "daily_rollups", date(2024, 3, 15), user_id, "steps", "oura",
        samples=1, total=3900, minimum=3900, maximum=3900, last_value=3900, last_at=at(14, 23),
    )  # fmt: skip
    return ids


@pytest.mark.integration
@pytest.mark.parametrize("tz", [None, "Europe/Berlin"])
async def test_explain_shows_the_overlap_dropped_and_the_preference_that_decided(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    ada_id: UUID,
    tz: str | None,
) -> None:
    ids = await watch_and_phone_day(pool, ada_id)
    params = {"date": "2024-03-15", **({"tz": tz} if tz else {})}
    answer = await client.get("/v1/metrics/steps/explain", params=params, headers=ada)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    # Activity's default order puts Apple Health before Oura; Oura's day is one long sample
    # (no hours), so the day goes whole to Apple Health.
    assert (body["value"], body["source"], body["fallback"]) == (4000, "apple_health", False)
    assert body["aggregation"] == "sum"
    assert body["decision"]["rule"] == "highest_ranked_with_data"
    assert body["decision"]["ranked"] == ["apple_health", "oura"]
    assert body["decision"]["preference"]["decided_by"] == "category:activity"
    assert body["decision"]["preference"]["default"] is True
    assert [(s["source"], s["value"], s["counted"]) for s in body["by_source"]] == [
        ("apple_health", 4000, True),
        ("oura", 3900, False),
    ]
    assert body["dropped"]["duplicates"] == [
        {
            "source": "apple_health",
            "value": 2800,  # 6,800 - 4,000: the iPhone's steps the Watch also counted
            "raw_total": 6800,
            "total": 4000,
            "devices": ["Ada's Apple Watch", "Ada's iPhone"],
        }
    ]
    assert body["dropped"]["implausible"] == [
        {
            "id": str(ids["implausible"]),
            "source": "apple_health",
            "device": "Ada's iPhone",
            "value": 250_000,
            "quality": 0.0,
            "reason": "implausible: 250000 outside [0, 200000] count",
        }
    ]
    assert body["dropped"]["echoes"] == []
    assert [s["id"] for s in body["samples"]] == [
        str(ids["oura"]),
        *sorted([str(ids["watch"]), str(ids["phone_overlap"])]),
        str(ids["phone_alone"]),
        str(ids["implausible"]),
    ]
    assert body["samples"][0]["start"] == "2024-03-15T00:00:00+01:00"


@pytest.mark.integration
async def test_an_override_decides_and_says_so(
    pool: asyncpg.Pool,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    ada_id: UUID,
    default_preferences: dict[str, Any],
    preferences_by_token: dict[str, dict[str, Any]],
) -> None:
    await watch_and_phone_day(pool, ada_id)
    chosen = {**default_preferences, "overrides": {"steps": ["oura", "apple_health"]}}
    preferences_by_token[ada["Authorization"]] = chosen
    body = (
        await client.get("/v1/metrics/steps/explain", params={"date": "2024-03-15"}, headers=ada)
    ).json()
    assert (body["value"], body["source"], body["fallback"]) == (3900, "oura", False)
    assert body["decision"]["preference"] == {
        "decided_by": "override",
        "default": False,
        "sources": ["oura", "apple_health"],
        "fallback": True,
    }


@pytest.mark.integration
async def test_another_users_explanations_and_conflicts_are_not_seen(
    pool: asyncpg.Pool, client: httpx.AsyncClient, ada_id: UUID, bob: dict[str, str]
) -> None:
    await watch_and_phone_day(pool, ada_id)
    await steps_day(pool, ada_id, 13, 10_000, 12_500)
    explained = await client.get(
        "/v1/metrics/steps/explain", params={"date": "2024-03-15"}, headers=bob
    )
    assert explained.status_code == 404
    assert set(explained.json()) == {"error"}
    conflicts = await client.get(
        "/v1/conflicts", params={"start": "2024-03-01", "end": "2024-03-31"}, headers=bob
    )
    assert conflicts.json() == {"conflicts": []}


@pytest.mark.integration
async def test_explain_refuses_unknown_metrics_dates_and_zones(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    unknown = await client.get(
        "/v1/metrics/stepz/explain", params={"date": "2024-03-15"}, headers=ada
    )
    assert unknown.status_code == 404
    for params in ({"date": "15/03/2024"}, {"date": "2024-03-15", "tz": "Mars/Olympus"}, {}):
        answer = await client.get("/v1/metrics/steps/explain", params=params, headers=ada)
        assert answer.status_code == 422, params
