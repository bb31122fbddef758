import pytest

from healthmesh.preferences.priorities import (
    PreferenceError,
    check_override,
    check_sources,
)

CAPABILITIES = {
    "oura": frozenset({"activity", "sleep", "heart", "recovery"}),
    "strava": frozenset({"activity"}),
    "withings": frozenset({"body", "activity", "sleep", "heart"}),
}
PROVIDES = {
    "oura": frozenset({"steps", "sleep_duration", "heart_rate"}),
    "strava": frozenset({"workout"}),
    "whoop": frozenset({"sleep_duration", "heart_rate", "total_energy", "workout"}),
}


def test_sources_that_provide_the_category_are_accepted() -> None:
    check_sources("sleep", ["oura", "withings"], CAPABILITIES)


def test_a_source_without_the_category_is_refused_by_name() -> None:
    with pytest.raises(
        PreferenceError, match="strava cannot provide sleep data; it provides activity"
    ):
        check_sources("sleep", ["oura", "strava"], CAPABILITIES)


def test_an_empty_list_is_refused() -> None:
    with pytest.raises(PreferenceError, match="at least one source"):
        check_sources("sleep", [], CAPABILITIES)


def test_duplicates_are_refused() -> None:
    with pytest.raises(PreferenceError, match="oura more than once"):
        check_sources("sleep", ["oura", "withings", "oura"], CAPABILITIES)


def test_an_unknown_source_is_refused_with_the_known_ones() -> None:
    with pytest.raises(PreferenceError, match="unknown source garmin; known sources: oura"):
        check_sources("sleep", ["garmin"], CAPABILITIES)


def test_an_override_is_checked_against_the_metrics_each_source_yields() -> None:
    check_override("steps", ["oura"], PROVIDES)
    check_override("workout", ["strava", "whoop"], PROVIDES)


def test_a_source_with_the_category_but_not_the_metric_is_refused_with_what_it_has() -> None:
    # Both have activity data; neither counts steps.
    with pytest.raises(PreferenceError) as refused:
        check_override("steps", ["oura", "strava", "whoop"], PROVIDES)
    assert str(refused.value) == (
        "strava cannot provide steps; its activity metrics are workout; "
        "whoop cannot provide steps; its activity metrics are total_energy, workout"
    )


def test_a_source_without_the_metrics_category_says_so() -> None:
    with pytest.raises(
        PreferenceError, match=r"^strava cannot provide sleep_duration: it has no sleep data$"
    ):
        check_override("sleep_duration", ["strava"], PROVIDES)


@pytest.mark.parametrize(
    ("sources", "reason"),
    [
        ([], "at least one source"),
        (["oura", "oura"], "oura more than once"),
        (["garmin"], "unknown source garmin; known sources: oura, strava, whoop"),
    ],
)
def test_an_override_list_is_checked_like_a_category_list(sources: list[str], reason: str) -> None:
    with pytest.raises(PreferenceError, match=reason):
        check_override("steps", sources, PROVIDES)


def test_an_override_of_an_unknown_metric_is_refused() -> None:
    with pytest.raises(PreferenceError, match="unknown metric 'mood'"):
        check_override("mood", ["oura"], PROVIDES)
