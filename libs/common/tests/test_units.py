import pytest

from healthmesh.common.units import UnitError, check_unit, to_canonical
from healthmesh.common.vocabulary import METRICS


@pytest.mark.parametrize(
    ("metric", "value", "unit", "expected"),
    [
        ("body_mass", 150.0, "lb", 68.0388555),
        ("body_mass", 150.0, "lbs", 68.0388555),
        ("body_mass", 72.5, "kg", 72.5),
        ("body_mass", 72_500.0, "g", 72.5),
        ("distance", 1.0, "mi", 1609.344),
        ("distance", 5.0, "km", 5000.0),
        ("distance", 100.0, "ft", 30.48),
        ("energy_intake", 250.0, "Cal", 250.0),
        ("energy_intake", 250.0, "kcal", 250.0),
        ("energy_intake", 418.4, "kJ", 100.0),
        ("active_energy", 320.0, "Cal", 320.0),
        ("water", 1.5, "L", 1500.0),
        ("water", 250.0, "mL", 250.0),
        ("water", 250.0, "ml", 250.0),
        ("body_fat", 23.5, "%", 23.5),
        ("spo2", 97.0, "percent", 97.0),
        ("heart_rate", 62.0, "bpm", 62.0),
        ("heart_rate", 62.0, "count/min", 62.0),
        ("heart_rate", 1.0, "Hz", 60.0),
        ("respiratory_rate", 14.0, "/min", 14.0),
        ("sleep_duration", 7.5, "h", 27_000.0),
        ("sleep_duration", 450.0, "min", 27_000.0),
        ("hrv_rmssd", 0.045, "s", 45.0),
        ("sodium", 2.3, "g", 2300.0),
        ("bp_systolic", 120.0, "mmHg", 120.0),
        ("steps", 8042.0, "count", 8042.0),
        ("readiness", 81.0, "score", 81.0),
    ],
)
def test_to_canonical_converts_to_the_metric_unit(
    metric: str, value: float, unit: str, expected: float
) -> None:
    assert to_canonical(metric, value, unit) == pytest.approx(expected, rel=1e-9)


def test_nutrition_calories_are_kilocalories_not_small_calories() -> None:
    # A food label's "Calories" are kcal; a factor of 1000 here would ruin every nutrition total.
    assert to_canonical("energy_intake", 2000.0, "Cal") == pytest.approx(2000.0)
    assert to_canonical("energy_intake", 2000.0, "cal") == pytest.approx(2000.0)


def test_unit_spelling_tolerates_surrounding_whitespace() -> None:
    assert to_canonical("body_mass", 10.0, " lb ") == pytest.approx(4.5359237)


@pytest.mark.parametrize("metric", sorted(METRICS))
def test_every_metric_accepts_its_own_canonical_unit(metric: str) -> None:
    check_unit(metric, METRICS[metric].unit)
    assert to_canonical(metric, 42.0, METRICS[metric].unit) == pytest.approx(42.0)


@pytest.mark.parametrize(
    ("metric", "unit"),
    [
        ("steps", "kg"),
        ("steps", "bpm"),
        ("body_mass", "m"),
        ("distance", "kcal"),
        ("heart_rate", "min"),
        ("water", "g"),
        ("sleep_duration", "m"),
    ],
)
def test_check_unit_refuses_a_unit_that_measures_something_else(metric: str, unit: str) -> None:
    with pytest.raises(UnitError, match=rf"unit '{unit}' does not measure {metric}\b"):
        check_unit(metric, unit)


def test_refusal_names_the_canonical_unit() -> None:
    with pytest.raises(UnitError) as caught:
        check_unit("steps", "kg")
    assert "'count'" in str(caught.value)


@pytest.mark.parametrize("unit", ["bananas", "LB", "stepz", "2 kg"])
def test_check_unit_refuses_unknown_units_by_name(unit: str) -> None:
    with pytest.raises(UnitError, match=r"unknown unit") as caught:
        check_unit("steps", unit)
    assert repr(unit) in str(caught.value)


def test_to_canonical_refuses_what_check_unit_refuses() -> None:
    with pytest.raises(UnitError, match="does not measure steps"):
        to_canonical("steps", 10.0, "kg")
    with pytest.raises(UnitError, match="unknown unit 'bananas'"):
        to_canonical("body_mass", 10.0, "bananas")


def test_unit_error_is_a_value_error() -> None:
    # Pydantic validators turn ValueErrors into validation errors; CsvMapping relies on it.
    assert issubclass(UnitError, ValueError)


def test_unknown_metric_is_a_key_error_naming_it() -> None:
    with pytest.raises(KeyError, match="stepz"):
        check_unit("stepz", "count")


@pytest.mark.parametrize(
    ("metric", "unit"),
    [("steps", "%"), ("readiness", "%"), ("body_fat", "count"), ("body_fat", "score")],
)
def test_check_unit_refuses_percent_for_counts_and_counts_for_percent(
    metric: str, unit: str
) -> None:
    with pytest.raises(UnitError):
        check_unit(metric, unit)


@pytest.mark.parametrize("metric", ["steps", "body_fat"])
def test_check_unit_refuses_an_empty_unit(metric: str) -> None:
    with pytest.raises(UnitError):
        check_unit(metric, "")


@pytest.mark.parametrize("unit", ["kg/", "m^", "(kg", "kg)"])
def test_check_unit_refuses_malformed_units_with_unit_error(unit: str) -> None:
    with pytest.raises(UnitError, match="unknown unit"):
        check_unit("body_mass", unit)
