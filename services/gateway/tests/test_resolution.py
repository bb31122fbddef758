"""Resolution: whose value counts per bucket, hour-level fallback, weeks and months, provenance.
Expected values are worked out by hand in the comments; the last test checks the database's
share of the hours against the same rule."""

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthmesh.common.vocabulary import metric_def
from healthmesh.gateway import db
from healthmesh.gateway.resolution import (
    Cell,
    HourShare,
    Preference,
    Resolved,
    combine_days,
    merge_cells,
    periods,
    preference_for,
    rank,
    resolve_bucket,
    resolve_day,
    resolve_days,
    single,
)

DAY = date(2024, 3, 12)
MIDNIGHT = datetime(2024, 3, 12, tzinfo=UTC)
STEPS = metric_def("steps")
HEART_RATE = metric_def("heart_rate")
BODY_MASS = metric_def("body_mass")
SLEEP = metric_def("sleep_duration")


def cell(source: str, value: float, samples: int = 1, hour: int = 23, offset: int = 0) -> Cell:
    """A rollup whose readings add up to `value` (a sum's total, or a mean's raw total)."""
    return Cell(
        source=source,
        samples=samples,
        total=value,
        raw_total=value,
        minimum=value,
        maximum=value,
        last_value=value,
        last_at=MIDNIGHT + timedelta(hours=hour),
        utc_offset_s=offset,
    )


def hourly(
    per_hour: Mapping[str, Mapping[int, float]], order: Sequence[str]
) -> dict[str, HourShare]:
    """Each source's hours of the day (hour h, UTC, holding the given value, one reading each)
    and its share when each hour goes to the best-ranked source with data in it: the rule the
    database applies (db.hourly_rollups_by_day), written out plainly."""
    taken: set[int] = set()
    shares = {}
    for source in rank(order, per_hour):
        values = per_hour[source]
        mine = [h for h in values if h not in taken]
        taken.update(mine)
        share = sum(values[h] for h in mine)
        total = sum(values.values())
        shares[source] = HourShare(total, total, len(mine), len(mine), share, share)
    return shares


def whole_days(per_hour: Mapping[str, Mapping[int, float]]) -> dict[str, Cell]:
    return {s: cell(s, sum(v.values()), len(v)) for s, v in per_hour.items()}


# The watch (Apple Health) worn 14:00-22:00: 7 hours of 1,240 and one of 1,242 = 9,922 steps.
WATCH = {h: 1240.0 for h in range(14, 21)} | {21: 1242.0}
# The ring (Oura) all day: 0 in hours 0-6, 300 in 7-13 (2,100), 200 in 14-21 (1,600, it
# undercounts while the watch is worn), 228.5 in 22-23 (457): 2,100 + 1,600 + 457 = 4,157.
RING = {h: 0.0 for h in range(7)} | {h: 300.0 for h in range(7, 14)}
RING |= {h: 200.0 for h in range(14, 22)} | {22: 228.5, 23: 228.5}


def test_the_ring_and_watch_day_is_resolved_per_hour() -> None:
    per_hour = {"apple_health": WATCH, "oura": RING}
    assert sum(WATCH.values()) == 9922 and sum(RING.values()) == 4157
    ranked = ["apple_health", "oura"]
    answer = resolve_day(STEPS, ranked, True, whole_days(per_hour), hourly(per_hour, ranked))
    assert answer is not None
    # The watch's 8 hours (9,922) + the ring's other 16: 0 + 2,100 + 457 = 2,557 -> 12,479.
    assert answer.value == 12479
    assert answer.rule == "per_hour"
    assert answer.provenance() == {
        "source": "apple_health",
        "fallback": True,
        "sources": [
            {"source": "apple_health", "value": 9922.0, "hours": 8},
            {"source": "oura", "value": 2557.0, "hours": 16},
        ],
    }


def test_a_source_with_a_daily_total_only_takes_the_whole_day() -> None:
    # Oura's day as one summary sample: no hour rollups, so hours cannot stand in for the day.
    day = {"apple_health": cell("apple_health", 9922, 8), "oura": cell("oura", 4157)}
    ranked = ["apple_health", "oura"]
    answer = resolve_day(STEPS, ranked, True, day, hourly({"apple_health": WATCH}, ranked))
    assert answer is not None
    assert (answer.value, answer.source, answer.fallback) == (9922, "apple_health", False)
    assert "sources" not in answer.provenance()


def test_hours_are_checked_against_the_day_within_half_a_percent() -> None:
    day = whole_days({"apple_health": WATCH, "oura": RING})
    # The ring's day says 4,200: its hours (4,157) are 43 short, 1.0% > 0.5% -> whole day.
    day["oura"] = cell("oura", 4200, 24)
    per_hour = hourly({"apple_health": WATCH, "oura": RING}, ["apple_health", "oura"])
    answer = resolve_day(STEPS, ["apple_health", "oura"], True, day, per_hour)
    assert answer is not None and (answer.value, answer.rule) == (9922, "highest_ranked_with_data")
    # 4,170: 13 short, 0.31% -> per hour.
    day["oura"] = cell("oura", 4170, 24)
    answer = resolve_day(STEPS, ["apple_health", "oura"], True, day, per_hour)
    assert answer is not None and (answer.value, answer.rule) == (12479, "per_hour")


def test_without_fallback_the_first_source_takes_the_whole_day() -> None:
    per_hour = {"apple_health": WATCH, "oura": RING}
    ranked = ["apple_health", "oura"]
    answer = resolve_day(STEPS, ranked, False, whole_days(per_hour), hourly(per_hour, ranked))
    assert answer is not None
    assert answer.provenance() == {"source": "apple_health", "fallback": False}
    assert answer.value == 9922
    ring_only = {"oura": RING}
    hours = hourly(ring_only, ranked)
    assert resolve_day(STEPS, ranked, False, whole_days(ring_only), hours) is None


def test_the_next_source_answers_a_day_the_first_has_no_data_as_a_fallback() -> None:
    ring_only = {"oura": RING}
    ranked = ["apple_health", "oura"]
    answer = resolve_day(STEPS, ranked, True, whole_days(ring_only), hourly(ring_only, ranked))
    assert answer is not None
    assert answer.provenance() == {"source": "oura", "fallback": True}
    assert answer.value == 4157


def test_the_ring_ranked_first_answers_every_hour_it_covers() -> None:
    # The ring has all 24 hours, so it answers the whole day: its own 4,157, no fallback.
    per_hour = {"apple_health": WATCH, "oura": RING}
    ranked = ["oura", "apple_health"]
    answer = resolve_day(STEPS, ranked, True, whole_days(per_hour), hourly(per_hour, ranked))
    assert answer is not None
    assert (answer.value, answer.source, answer.fallback) == (4157, "oura", False)


def test_a_mean_falls_back_per_hour_weighted_by_samples() -> None:
    # Watch: hour 10 with 60 readings adding up to 6,000 (mean 100). Ring: hour 10 (5 readings,
    # 400) and hour 11 (5 readings adding up to 300, mean 60). Per hour: the watch's hour 10 and
    # the ring's hour 11 -> (6,000 + 300) / (60 + 5) = 96.923...
    hours = {
        "apple_health": HourShare(
            6000, 6000, hours=1, samples=60, share_total=6000, share_raw_total=6000
        ),
        "oura": HourShare(700, 700, hours=1, samples=5, share_total=300, share_raw_total=300),
    }
    day = {"apple_health": cell("apple_health", 6000, 60), "oura": cell("oura", 700, 10)}
    answer = resolve_day(HEART_RATE, ["apple_health", "oura"], True, day, hours)
    assert answer is not None
    assert answer.value == pytest.approx(6300 / 65)
    assert answer.provenance() == {
        "source": "apple_health",
        "fallback": True,
        "sources": [
            {"source": "apple_health", "value": 100.0, "hours": 1},
            {"source": "oura", "value": 60.0, "hours": 1},
        ],
    }


def test_last_and_sleep_metrics_take_the_whole_day() -> None:
    day = {"withings": cell("withings", 80.5, 1, 7), "apple_health": cell("apple_health", 81, 3)}
    answer = resolve_day(BODY_MASS, ["withings", "apple_health"], True, day, {})
    assert answer is not None and (answer.value, answer.source) == (80.5, "withings")
    # Sleep counts on the day it ends, hours by when they start: never mixed per hour.
    per_hour = {"oura": {1: 3600.0, 2: 3600.0}, "apple_health": {3: 3600.0}}
    ranked = ["oura", "apple_health"]
    answer = resolve_day(SLEEP, ranked, True, whole_days(per_hour), hourly(per_hour, ranked))
    assert answer is not None and (answer.value, answer.rule) == (7200, "highest_ranked_with_data")


def test_ranking_keeps_sources_with_data_then_unranked_ones_by_name() -> None:
    assert rank(["apple_health", "oura", "fitbit"], {"oura", "whoop", "csv"}) == [
        "oura",
        "csv",
        "whoop",
    ]


def test_a_lone_source_ranked_last_is_not_a_fallback() -> None:
    days = {DAY: {"csv": cell("csv", 8123)}}
    preference = Preference(("apple_health", "oura", "csv"), True, "category:activity")
    resolved = resolve_days(STEPS, preference, days, {})
    assert resolved[DAY].provenance() == {"source": "csv", "fallback": False}
    assert resolved[DAY].value == 8123


def test_the_whole_bucket_goes_to_the_best_source_with_data() -> None:
    cells = {"oura": cell("oura", 5), "whoop": cell("whoop", 7)}
    answer = resolve_bucket("sum", ["apple_health", "oura", "whoop"], True, cells)
    assert answer is not None and (answer.source, answer.fallback) == ("oura", True)
    assert resolve_bucket("sum", ["apple_health", "oura"], False, cells) is None


def test_an_override_decides_before_the_category() -> None:
    preferences = {
        "categories": {"activity": {"sources": ["oura", "apple_health"], "fallback": False}},
        "overrides": {"steps": ["apple_health"]},
    }
    assert preference_for(preferences, "steps") == Preference(("apple_health",), False, "override")
    assert preference_for(preferences, "distance") == Preference(
        ("oura", "apple_health"), False, "category:activity"
    )


def resolved_days(values: dict[date, dict[str, float]]) -> dict[date, Resolved]:
    preference = Preference(("apple_health", "oura"), True, "category:activity")
    days = {d: {s: cell(s, v) for s, v in by.items()} for d, by in values.items()}
    return resolve_days(STEPS, preference, days, {})


def test_weeks_and_months_sum_resolved_days() -> None:
    # Mon 11 and Tue 12 March (the watch, 9,000 + the ring as a fallback, 4,000) and Mon 18.
    days = resolved_days(
        {
            date(2024, 3, 11): {"apple_health": 9000},
            date(2024, 3, 12): {"oura": 4000},
            date(2024, 3, 18): {"apple_health": 7000, "oura": 1},
        }
    )
    weeks = periods("sum", days, "week")
    assert list(weeks) == [date(2024, 3, 11), date(2024, 3, 18)]
    first = weeks[date(2024, 3, 11)]
    assert (first.value, first.source, first.fallback) == (13000, "apple_health", True)
    assert first.provenance()["sources"] == [
        {"source": "apple_health", "value": 9000.0},
        {"source": "oura", "value": 4000.0},
    ]
    second = weeks[date(2024, 3, 18)]
    assert (second.value, second.fallback) == (7000, False)
    month = periods("sum", days, "month")[date(2024, 3, 1)]
    assert month.value == 9000 + 4000 + 7000


def test_a_months_mean_is_weighted_by_samples_and_last_takes_the_last_day() -> None:
    first = single("mean", cell("oura", 60 * 10, 10))  # mean 60 over 10 readings
    second = single("mean", cell("oura", 90 * 30, 30))  # mean 90 over 30 readings
    # (600 + 2,700) / 40 = 82.5
    assert combine_days("mean", [first, second]).value == 82.5
    weights = [single("last", cell("withings", 80)), single("last", cell("withings", 79.5))]
    assert combine_days("last", weights).value == 79.5


def test_merging_keeps_the_latest_reading_and_offset() -> None:
    merged = merge_cells([cell("oura", 3, 1, 5, 3600), cell("oura", 4, 2, 9, 7200)])
    assert (merged.total, merged.samples, merged.last_value, merged.utc_offset_s) == (7, 3, 4, 7200)


# --- properties -----------------------------------------------------------------------------

SOURCES = ("apple_health", "oura", "fitbit")
hour_values = st.dictionaries(st.integers(0, 23), st.integers(0, 5000).map(float), max_size=24)
one_source_data = st.tuples(hour_values, st.booleans())  # (hours, daily summary only?)
day_data = st.dictionaries(st.sampled_from(SOURCES), one_source_data, min_size=1)


def build(
    data: dict[str, tuple[dict[int, float], bool]], order: Sequence[str]
) -> tuple[dict[str, Cell], dict[str, HourShare]]:
    """Day cells and hours; a daily-summary-only source has a day cell and no hours."""
    day = {s: cell(s, sum(h.values()), max(1, len(h))) for s, (h, _) in data.items()}
    hours = hourly({s: h for s, (h, summary_only) in data.items() if not summary_only}, order)
    return day, hours


@given(day_data, st.permutations(SOURCES), st.booleans())
def test_a_resolved_sum_never_exceeds_all_sources_together(
    data: dict[str, tuple[dict[int, float], bool]], order: list[str], fallback: bool
) -> None:
    day, hours = build(data, order)
    answer = resolve_day(STEPS, rank(order, day), fallback, day, hours)
    assert answer is None or answer.value <= sum(c.total for c in day.values())


@given(day_data, st.permutations(SOURCES))
def test_a_resolved_sum_holds_at_least_the_best_sources_day(
    data: dict[str, tuple[dict[int, float], bool]], order: list[str]
) -> None:
    day, hours = build(data, order)
    ranked = rank(order, day)
    answer = resolve_day(STEPS, ranked, True, day, hours)
    assert answer is not None and answer.value >= day[ranked[0]].total


@given(one_source_data, st.sampled_from(SOURCES), st.permutations(SOURCES), st.booleans())
def test_with_one_source_the_day_is_that_sources(
    data: tuple[dict[int, float], bool], source: str, order: list[str], fallback: bool
) -> None:
    day, hours = build({source: data}, order)
    for metric in (STEPS, HEART_RATE, BODY_MASS):
        answer = resolve_day(metric, rank(order, day), fallback, day, hours)
        assert answer is not None
        assert answer.value == single(metric.aggregation, day[source]).value
        assert answer.provenance() == {"source": source, "fallback": False}


@given(day_data, st.permutations(SOURCES))
def test_without_fallback_only_the_first_ranked_source_appears(
    data: dict[str, tuple[dict[int, float], bool]], order: list[str]
) -> None:
    day, hours = build(data, order)
    ranked = [s for s in order if s in day or s == order[0]]  # the first may have no data
    answer = resolve_day(STEPS, ranked, False, day, hours)
    if order[0] not in day:
        assert answer is None
    else:
        assert answer is not None
        assert [c.source for c in answer.contributions] == [order[0]]
        assert answer.value == day[order[0]].total and not answer.fallback


# --- the database's share of the hours against the rule written out above --------------------


@pytest.mark.integration
@pytest.mark.usefixtures("normalizer_tables")
@pytest.mark.parametrize("tz", [None, "Europe/Berlin"])
async def test_the_databases_hour_shares_follow_the_rule(
    pool: asyncpg.Pool, tz: str | None
) -> None:
    """Random days of hour rollups (sources with different recorded offsets, some unranked,
    around Berlin's 23-hour DST day): `db.hourly_rollups_by_day` places each hour on its local
    day and shares the hours as `hourly` does, source by source and day by day."""
    rng = random.Random(7)
    zone = ZoneInfo(tz) if tz else None
    origin = datetime(2024, 3, 29, 12, tzinfo=UTC)
    first, end = date(2024, 3, 30), date(2024, 4, 1)
    for _ in range(25):
        user = uuid4()
        sources = rng.sample(["apple_health", "oura", "fitbit", "csv"], rng.randint(1, 4))
        order = rng.sample([*sources, "whoop"], rng.randint(0, len(sources)))
        rows = []
        for source in sources:
            offset = rng.choice([-5 * 3600, 0, 2 * 3600])
            for index in rng.sample(range(72), rng.randint(1, 60)):
                value = float(rng.randint(0, 900))
                hour = origin + timedelta(hours=index)
                rows.append((user, "steps", source, hour, 1, value, value, value, value, value,
                             hour, offset, 1))  # fmt: skip
        await pool.executemany(
            """INSERT INTO normalizer.hourly_rollups (user_id, metric, source, hour, samples,
                   total, raw_total, minimum, maximum, last_value, last_at, utc_offset_s, devices)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
            rows,
        )
        per_day: dict[date, dict[str, dict[int, float]]] = {}
        for _, _, source, hour, _, value, *_, offset, _ in rows:
            local = hour.astimezone(zone) if zone else hour + timedelta(seconds=offset)
            if first <= local.date() < end:
                by_source = per_day.setdefault(local.date(), {}).setdefault(source, {})
                by_source[int(hour.timestamp()) // 3600] = value
        expected = {
            (day, source): (share.hours, share.share_total, share.total)
            for day, per_hour in per_day.items()
            for source, share in hourly(per_hour, order).items()
        }
        answer = await db.hourly_rollups_by_day(
            pool,
            user_id=user,
            metrics=["steps"],
            orders={"steps": order},
            tz=tz,
            first=first,
            end=end,
            source=None,
        )
        assert {
            (r["day"], r["source"]): (r["hours"], r["share_total"], r["total"]) for r in answer
        } == expected
