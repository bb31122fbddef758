"""Echoes (one provider re-exporting another's data), the tolerances, and conflicts: pure rules."""

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from healthmesh.common.vocabulary import METRICS
from healthmesh.gateway.conflicts import SourceValue, conflict, disagree
from healthmesh.gateway.echoes import Observed, echoed_sources, find_echoes, names
from healthmesh.gateway.tolerances import Tolerance, conflict_tolerance

MORNING = datetime(2024, 3, 11, 6, 30, tzinfo=UTC)


def sample(
    source: str,
    value: float,
    *,
    device: str | None = None,
    start: datetime = MORNING,
    seconds: float = 0.0,
    ident: UUID | None = None,
) -> Observed:
    return Observed(
        id=ident or uuid4(),
        source=source,
        device=device,
        start=start,
        end=start + timedelta(seconds=seconds),
        value=value,
    )


# --- names ---------------------------------------------------------------------------------


def test_an_apple_health_device_names_the_app_that_wrote_it() -> None:
    assert names("Withings", "withings", "apple_health")
    assert names("Health Mate", "withings", "apple_health")
    assert names("Strava", "strava", "apple_health")
    assert names("HealthKit other step tracker", "apple_health", "withings")
    assert not names("Ada's Apple Watch", "withings", "apple_health")
    assert not names(None, "withings", "apple_health")


def test_a_device_naming_its_own_source_names_nothing_else() -> None:
    assert not names("Strava Apple Watch App", "apple_health", "strava")
    assert not names("Withings", "withings", "withings")


# --- detection -----------------------------------------------------------------------------


def test_a_withings_weigh_in_copied_into_apple_health_is_one_weigh_in() -> None:
    # 176.4 lb read back from Apple Health = 80.0145 kg: 0.0145 kg from Withings' 80.0 (< 0.1).
    withings = sample("withings", 80.0, device="Body+")
    copy = sample("apple_health", 80.0145, device="Withings")
    # The user ranks Apple Health first; the device name still says where the data came from.
    (echo,) = find_echoes("body_mass", [copy, withings], ["apple_health", "withings"])
    assert (echo.echo, echo.original, echo.named) == (copy, withings, True)
    assert echo.pointer()["echo_of"] == {"id": str(withings.id), "source": "withings"}


def test_a_strava_run_written_into_apple_health_is_one_run() -> None:
    run = sample("strava", 3600, device="Garmin Forerunner 255", seconds=3600)
    # Apple stores the moving time: 3,540 s, 60 s short (within 2 minutes).
    copy = sample("apple_health", 3540, device="Strava", seconds=3600)
    (echo,) = find_echoes("workout", [run, copy], ["apple_health", "strava"])
    assert (echo.echo.source, echo.original.source) == ("apple_health", "strava")


def test_withings_copying_an_apple_workout_points_back_at_apple_health() -> None:
    walk = sample("apple_health", 1800, device="Ada's Apple Watch", seconds=1800)
    copy = sample("withings", 1800, device="HealthKit other step tracker", seconds=1800)
    (echo,) = find_echoes("workout", [copy, walk], ["withings", "apple_health"])
    assert (echo.echo.source, echo.original.source) == ("withings", "apple_health")


def test_without_a_name_the_higher_ranked_source_is_the_original() -> None:
    fitbit = sample("fitbit", 72.3, device="Aria")
    withings = sample("withings", 72.3, device="Body+")
    (echo,) = find_echoes("body_mass", [fitbit, withings], ["withings", "fitbit"])
    assert (echo.original, echo.echo, echo.named) == (withings, fitbit, False)
    (echo,) = find_echoes("body_mass", [fitbit, withings], ["fitbit", "withings"])
    assert echo.original == fitbit


def test_unranked_sources_rank_last_by_name() -> None:
    fitbit = sample("fitbit", 72.3)
    withings = sample("withings", 72.3)
    (echo,) = find_echoes("body_mass", [withings, fitbit], [])
    assert echo.original == fitbit  # "fitbit" < "withings"


def test_three_minutes_apart_is_an_echo_only_when_named() -> None:
    # 180 s apart: beyond the 120 s window, within the doubled 240 s of a named pair.
    first = sample("withings", 80.0)
    later = MORNING + timedelta(minutes=3)
    assert find_echoes("body_mass", [first, sample("apple_health", 80.0, start=later)], []) == []
    named = sample("apple_health", 80.0, device="Withings", start=later)
    assert len(find_echoes("body_mass", [first, named], [])) == 1


def test_different_values_or_lengths_are_different_events() -> None:
    # 80.0 vs 80.3 kg: 0.3 > 0.2 (0.1 doubled for a named pair).
    weigh_in = sample("withings", 80.0)
    assert (
        find_echoes("body_mass", [weigh_in, sample("apple_health", 80.3, device="Withings")], [])
        == []
    )
    # 3,600 s vs 2,700 s long: 900 s > max(240 s, 10% of 3,600 s = 360 s).
    run = sample("strava", 3600, seconds=3600)
    short = sample("apple_health", 3600, device="Strava", seconds=2700)
    assert find_echoes("workout", [run, short], []) == []


def test_one_source_never_echoes_itself() -> None:
    watch = sample("apple_health", 3600, device="Ada's Apple Watch", seconds=3600)
    phone = sample("apple_health", 3600, device="Strava", seconds=3600)
    assert find_echoes("workout", [watch, phone], []) == []


def test_sums_and_means_have_no_echoes() -> None:
    assert find_echoes("steps", [sample("oura", 100.0), sample("apple_health", 100.0)], []) == []
    assert find_echoes("heart_rate", [sample("oura", 60.0), sample("whoop", 60.0)], []) == []


def test_a_chain_of_copies_is_one_event_with_one_original() -> None:
    run = sample("strava", 3600, seconds=3600)
    apple = sample("apple_health", 3600, device="Strava", seconds=3600)
    withings = sample("withings", 3600, device="HealthKit other step tracker", seconds=3600)
    echoes = find_echoes("workout", [withings, apple, run], ["withings", "apple_health"])
    assert {(e.echo.source, e.original.source) for e in echoes} == {
        ("apple_health", "strava"),
        ("withings", "strava"),
    }


def test_a_named_copy_is_matched_before_a_look_alike() -> None:
    # Apple Health holds the Watch's own recording of the run and Strava's copy of it (device
    # "Strava"); Strava's run pairs with its copy, the Watch's stays Apple's own.
    run = sample("strava", 3600, seconds=3600)
    watch = sample("apple_health", 3600, device="Ada's Apple Watch", seconds=3600)
    copy = sample("apple_health", 3590, device="Strava", start=MORNING + timedelta(seconds=20),
                  seconds=3590)  # fmt: skip
    (echo,) = find_echoes("workout", [run, watch, copy], ["apple_health", "strava"])
    assert (echo.echo, echo.original) == (copy, run)


def test_a_source_is_echoed_only_when_all_its_samples_are_copies() -> None:
    weigh_in = sample("withings", 80.0)
    copy = sample("apple_health", 80.0, device="Withings")
    own = sample("apple_health", 81.0, start=MORNING + timedelta(hours=12))
    only_copies = [weigh_in, copy]
    assert echoed_sources(only_copies, find_echoes("body_mass", only_copies, [])) == {
        "apple_health": "withings"
    }
    with_own = [weigh_in, copy, own]
    assert echoed_sources(with_own, find_echoes("body_mass", with_own, [])) == {}


# --- tolerances and conflicts ----------------------------------------------------------------


def test_every_metric_has_a_conflict_tolerance() -> None:
    for metric in METRICS:
        assert conflict_tolerance(metric).absolute >= 0


@pytest.mark.parametrize(
    ("metric", "a", "b", "agree"),
    [
        ("steps", 10_000, 11_000, True),  # 1,000 <= 10% of 11,000 = 1,100
        ("steps", 10_000, 12_500, False),  # 2,500 > 1,250
        ("steps", 100, 250, True),  # 150 <= the 200-step floor
        ("heart_rate", 62, 67, True),  # 5 bpm
        ("heart_rate", 62, 67.5, False),
        ("body_mass", 80.0, 80.5, True),  # 0.5 kg
        ("body_mass", 80.0, 80.6, False),
        ("sleep_duration", 7 * 3600, 7 * 3600 + 1800, True),  # 30 min
        ("sleep_duration", 7 * 3600, 7 * 3600 + 1801, False),
    ],
)
def test_tolerances(metric: str, a: float, b: float, agree: bool) -> None:
    assert conflict_tolerance(metric).agrees(a, b) is agree
    assert conflict_tolerance(metric).agrees(b, a) is agree


def test_a_tolerance_takes_the_larger_of_its_parts() -> None:
    both = Tolerance(absolute=5, relative=0.1)
    assert both.agrees(10, 15) and not both.agrees(10, 15.1)  # 5 absolute beats 10% of 15
    assert both.agrees(100, 111) and not both.agrees(100, 112)  # 11.1 relative beats 5


def test_a_conflict_lists_every_source_and_the_tolerance() -> None:
    # Oura 10,000 vs Apple 12,500 steps: 20% apart (2,500 > 10% of 12,500 = 1,250).
    values = [SourceValue("oura", 10_000), SourceValue("apple_health", 12_500)]
    assert conflict(date(2024, 3, 11), "steps", values) == {
        "date": "2024-03-11",
        "metric": "steps",
        "unit": "count",
        "tolerance": {"absolute": 200, "relative": 0.10},
        "values": [
            {"source": "apple_health", "value": 12_500},
            {"source": "oura", "value": 10_000},
        ],
    }


def test_an_echo_is_no_conflict() -> None:
    # Apple Health has only the 07:00 copy (80.0); Withings weighed again at 21:00 (81.0 last).
    values = [SourceValue("withings", 81.0), SourceValue("apple_health", 80.0, "withings")]
    assert not disagree("body_mass", values)
    assert conflict(date(2024, 3, 11), "body_mass", values) is None
