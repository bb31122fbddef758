"""Resolution: whose value counts per bucket, hour-level fallback, weeks and months, provenance.
Expected values are worked out by hand in the comments; the last test checks the database's
share of the hours against the same rule."""

import random
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthmesh.common.vocabulary import MetricDef, metric_def
from healthmesh.gateway import rollups
from healthmesh.gateway.resolution import (
    Cell,
    DayHours,
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
    split_hours,
)

DAY = date(2024, 3, 12)
MIDNIGHT = datetime(2024, 3, 12, tzinfo=UTC)
Share = tuple[int, float]
"""A source's share of a day falling back per hour: (hours, total)."""
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


def hourly(per_hour: Mapping[str, Mapping[int, float]], order: Sequence[str]) -> dict[str, Share]:
    """Each source's share of the day, (hours, total), when each hour (h: the hour) goes to the
    best-ranked source with data in it: the rule, written out plainly."""
    taken: set[int] = set()
    shares = {}
    for source in rank(order, per_hour):
        mine = [h for h in per_hour[source] if h not in taken]
        taken.update(mine)
        if mine:
            shares[source] = (len(mine), sum(per_hour[source][h] for h in mine))
    return shares


def resolve(
    metric: MetricDef,
    ranked: Sequence[str],
    fallback: bool,
    day: Mapping[str, Cell],
    per_hour: Mapping[str, Mapping[int, float]],
) -> Resolved | None:
    """`split_hours`, then `resolve_day` on the shares; each source's hours given as hour (bit
    h) -> value, one reading each, summed up as the day rollups do."""
    summaries = {
        s: DayHours(sum(1 << h for h in v), len(v), sum(v.values()), sum(v.values()))
        for s, v in per_hour.items()
    }
    answered = split_hours(metric, ranked, fallback, day, summaries)
    shares = None
    if answered is not None:
        shares = {}
        for source, mine in answered.items():
            values = [v for h, v in per_hour[source].items() if mine >> h & 1]
            shares[source] = HourShare(len(values), len(values), sum(values), sum(values))
    return resolve_day(metric, ranked, fallback, day, shares)


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
    answer = resolve(STEPS, ranked, True, whole_days(per_hour), per_hour)
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
    answer = resolve(STEPS, ranked, True, day, {"apple_health": WATCH})
    assert answer is not None
    assert (answer.value, answer.source, answer.fallback) == (9922, "apple_health", False)
    assert "sources" not in answer.provenance()


def test_hours_are_checked_against_the_day_within_half_a_percent() -> None:
    day = whole_days({"apple_health": WATCH, "oura": RING})
    # The ring's day says 4,200: its hours (4,157) are 43 short, 1.0% > 0.5% -> whole day.
    day["oura"] = cell("oura", 4200, 24)
    per_hour = {"apple_health": WATCH, "oura": RING}
    answer = resolve(STEPS, ["apple_health", "oura"], True, day, per_hour)
    assert answer is not None and (answer.value, answer.rule) == (9922, "highest_ranked_with_data")
    # 4,170: 13 short, 0.31% -> per hour.
    day["oura"] = cell("oura", 4170, 24)
    answer = resolve(STEPS, ["apple_health", "oura"], True, day, per_hour)
    assert answer is not None and (answer.value, answer.rule) == (12479, "per_hour")


def test_without_fallback_the_first_source_takes_the_whole_day() -> None:
    per_hour = {"apple_health": WATCH, "oura": RING}
    ranked = ["apple_health", "oura"]
    answer = resolve(STEPS, ranked, False, whole_days(per_hour), per_hour)
    assert answer is not None
    assert answer.provenance() == {"source": "apple_health", "fallback": False}
    assert answer.value == 9922
    ring_only = {"oura": RING}
    assert resolve(STEPS, ranked, False, whole_days(ring_only), ring_only) is None


def test_the_next_source_answers_a_day_the_first_has_no_data_as_a_fallback() -> None:
    ring_only = {"oura": RING}
    ranked = ["apple_health", "oura"]
    answer = resolve(STEPS, ranked, True, whole_days(ring_only), ring_only)
    assert answer is not None
    assert answer.provenance() == {"source": "oura", "fallback": True}
    assert answer.value == 4157


def test_the_ring_ranked_first_answers_every_hour_it_covers() -> None:
    # The ring has all 24 hours, so it answers the whole day: its own 4,157, no fallback.
    per_hour = {"apple_health": WATCH, "oura": RING}
    ranked = ["oura", "apple_health"]
    answer = resolve(STEPS, ranked, True, whole_days(per_hour), per_hour)
    assert answer is not None
    assert (answer.value, answer.source, answer.fallback) == (4157, "oura", False)


def test_a_mean_falls_back_per_hour_weighted_by_samples() -> None:
    # Watch: hour 10 with 60 readings adding up to 6,000 (mean 100). Ring: hour 10 (5 readings,
    # 400) and hour 11 (5 readings adding up to 300, mean 60). Per hour: the watch's hour 10 and
    # the ring's hour 11 -> (6,000 + 300) / (60 + 5) = 96.923...
    summaries = {
        "apple_health": DayHours(1 << 10, 60, 6000, 6000),
        "oura": DayHours(1 << 10 | 1 << 11, 10, 700, 700),
    }
    day = {"apple_health": cell("apple_health", 6000, 60), "oura": cell("oura", 700, 10)}
    ranked = ["apple_health", "oura"]
    assert split_hours(HEART_RATE, ranked, True, day, summaries) == {
        "apple_health": 1 << 10,
        "oura": 1 << 11,
    }
    shares = {"apple_health": HourShare(1, 60, 6000, 6000), "oura": HourShare(1, 5, 300, 300)}
    answer = resolve_day(HEART_RATE, ranked, True, day, shares)
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
    answer = resolve(BODY_MASS, ["withings", "apple_health"], True, day, {})
    assert answer is not None and (answer.value, answer.source) == (80.5, "withings")
    # Sleep counts on the day it ends, hours by when they start: never mixed per hour.
    per_hour = {"oura": {1: 3600.0, 2: 3600.0}, "apple_health": {3: 3600.0}}
    ranked = ["oura", "apple_health"]
    answer = resolve(SLEEP, ranked, True, whole_days(per_hour), per_hour)
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
    data: dict[str, tuple[dict[int, float], bool]],
) -> tuple[dict[str, Cell], dict[str, dict[int, float]]]:
    """Day cells and hours; a daily-summary-only source has a day cell and no hours."""
    day = {s: cell(s, sum(h.values()), max(1, len(h))) for s, (h, _) in data.items()}
    hours = {s: h for s, (h, summary_only) in data.items() if not summary_only}
    return day, hours


@given(day_data, st.permutations(SOURCES), st.booleans())
def test_a_resolved_sum_never_exceeds_all_sources_together(
    data: dict[str, tuple[dict[int, float], bool]], order: list[str], fallback: bool
) -> None:
    day, hours = build(data)
    answer = resolve(STEPS, rank(order, day), fallback, day, hours)
    assert answer is None or answer.value <= sum(c.total for c in day.values())


@given(day_data, st.permutations(SOURCES))
def test_a_resolved_sum_holds_at_least_the_best_sources_day(
    data: dict[str, tuple[dict[int, float], bool]], order: list[str]
) -> None:
    day, hours = build(data)
    ranked = rank(order, day)
    answer = resolve(STEPS, ranked, True, day, hours)
    assert answer is not None and answer.value >= day[ranked[0]].total


@given(one_source_data, st.sampled_from(SOURCES), st.permutations(SOURCES), st.booleans())
def test_with_one_source_the_day_is_that_sources(
    data: tuple[dict[int, float], bool], source: str, order: list[str], fallback: bool
) -> None:
    day, hours = build({source: data})
    for metric in (STEPS, HEART_RATE, BODY_MASS):
        answer = resolve(metric, rank(order, day), fallback, day, hours)
        assert answer is not None
        assert answer.value == single(metric.aggregation, day[source]).value
        assert answer.provenance() == {"source": source, "fallback": False}


@given(day_data, st.permutations(SOURCES))
def test_without_fallback_only_the_first_ranked_source_appears(
    data: dict[str, tuple[dict[int, float], bool]], order: list[str]
) -> None:
    day, hours = build(data)
    ranked = [s for s in order if s in day or s == order[0]]  # the first may have no data
    answer = resolve(STEPS, ranked, False, day, hours)
    if order[0] not in day:
        assert answer is None
    else:
        assert answer is not None
        assert [c.source for c in answer.contributions] == [order[0]]
        assert answer.value == day[order[0]].total and not answer.fallback


# --- the shares read from the database against the rule written out above -------------------


@pytest.mark.integration
@pytest.mark.usefixtures("normalizer_tables")
@pytest.mark.parametrize("tz", [None, "Europe/Berlin"])
async def test_the_shares_read_from_the_database_follow_the_rule(
    pool: asyncpg.Pool, tz: str | None
) -> None:
    """Random days of hour rollups (sources with different recorded offsets, some unranked,
    around Berlin's 23-hour DST day) and the day rollups summing them up as the normalizer does:
    `rollups.load_days` shares each day's hours as `hourly` does, source by source and day by
    day, by the day rows' hour masks, or in a zone by the hours themselves."""
    rng = random.Random(7)
    zone = ZoneInfo(tz) if tz else None
    origin = datetime(2024, 3, 29, 12, tzinfo=UTC)
    first, end = date(2024, 3, 30), date(2024, 4, 1)
    for _ in range(25):
        user = uuid4()
        sources = rng.sample(["apple_health", "oura", "fitbit", "csv"], rng.randint(1, 4))
        order = rng.sample([*sources, "whoop"], rng.randint(0, len(sources)))
        hours: list[tuple[Any, ...]] = []
        by_day: dict[tuple[date, str], tuple[int, float]] = {}
        per_day: dict[date, dict[str, dict[int, float]]] = {}
        for source in sources:
            offset = rng.choice([-5 * 3600, 0, 2 * 3600])
            for index in rng.sample(range(72), rng.randint(1, 60)):
                value = float(rng.randint(0, 900))
                hour = origin + timedelta(hours=index)
                hours.append((user, "steps", source, hour, 1, value, value, value, value, value,
                              hour, offset, 1))  # fmt: skip
                by_offset = (hour + timedelta(seconds=offset)).date()
                bit = 18 + (hour - datetime.combine(by_offset, time(), UTC)) // timedelta(hours=1)
                mask, total = by_day.get((by_offset, source), (0, 0.0))
                by_day[(by_offset, source)] = (mask | 1 << bit, total + value)
                local = hour.astimezone(zone).date() if zone else by_offset
                per_day.setdefault(local, {}).setdefault(source, {})[index] = value
        days = [
            (user, "steps", source, day, mask.bit_count(), total, total, 0.0, 0.0, 0.0,
             datetime.combine(day, time(12), UTC), 0, 1, mask, mask.bit_count(), total, total)
            for (day, source), (mask, total) in by_day.items()
        ]  # fmt: skip
        await pool.executemany(
            """INSERT INTO normalizer.hourly_rollups (user_id, metric, source, hour, samples,
                   total, raw_total, minimum, maximum, last_value, last_at, utc_offset_s, devices)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)""",
            hours,
        )
        await pool.executemany(
            """INSERT INTO normalizer.daily_rollups (user_id, metric, source, day, samples,
                   total, raw_total, minimum, maximum, last_value, last_at, utc_offset_s, devices,
                   hour_mask, hours_samples, hours_total, hours_raw_total)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                       $17)""",
            days,
        )
        expected = {
            day: hourly(per_hour, order)
            for day, per_hour in per_day.items()
            if first <= day < end and len(per_hour) > 1
        }
        cells = await rollups.load_days(
            pool,
            user_id=user,
            metrics=[STEPS],
            first=first,
            end=end,
            tz=tz,
            source=None,
            preferences={"steps": Preference(tuple(order), True, "category:activity")},
        )
        shares = cells["steps"].shares
        assert {
            day: {s: (share.hours, share.total) for s, share in by.items()}
            for day, by in shares.items()
        } == expected
