import pytest

from healthmesh.preferences.priorities import (
    PreferenceError,
    Priority,
    check_override,
    check_sources,
    effective_priorities,
)

CAPABILITIES = {
    "oura": frozenset({"activity", "sleep", "heart", "recovery"}),
    "strava": frozenset({"activity"}),
    "withings": frozenset({"body", "activity", "sleep", "heart"}),
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


def test_an_override_is_checked_against_its_metrics_category() -> None:
    check_override("steps", ["strava", "oura"], CAPABILITIES)
    with pytest.raises(PreferenceError, match=r"strava cannot provide sleep_duration \(a sleep"):
        check_override("sleep_duration", ["strava"], CAPABILITIES)


def test_an_override_of_an_unknown_metric_is_refused() -> None:
    with pytest.raises(PreferenceError, match="unknown metric 'mood'"):
        check_override("mood", ["oura"], CAPABILITIES)


def test_the_users_choice_wins_and_defaults_fill_the_rest() -> None:
    defaults = {"sleep": Priority(["oura"], True), "body": Priority(["withings"], True)}
    chosen = {"sleep": Priority(["withings", "oura"], False)}
    assert effective_priorities(defaults, chosen) == {
        "sleep": Priority(["withings", "oura"], False),
        "body": Priority(["withings"], True),
    }


def test_a_stored_choice_for_a_category_without_default_is_not_shown() -> None:
    assert effective_priorities({}, {"mood": Priority(["oura"], True)}) == {}
