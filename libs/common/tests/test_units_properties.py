"""Unit conversions as properties (hypothesis): every unit a source may send round-trips through
the canonical unit, and a unit of the wrong family is always refused."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthmesh.common.units import UnitError, check_unit, from_canonical, to_canonical

UNITS_BY_METRIC = {
    "steps": ["count"],
    "distance": ["m", "km", "mi", "ft", "yd", "mm"],
    "active_energy": ["kcal", "Cal", "kJ", "J"],
    "body_mass": ["kg", "g", "lb", "lbs", "st", "oz"],
    "body_fat": ["%", "percent", "fraction"],
    "spo2": ["%", "fraction"],
    "heart_rate": ["bpm", "count/min", "Hz"],
    "hrv_rmssd": ["ms", "s"],
    "sleep_duration": ["s", "min", "h"],
    "body_temperature": ["degC", "degF", "Cel", "K"],
    "water": ["mL", "L", "fl_oz_us"],
    "sodium": ["mg", "g"],
    "vo2max": ["mL/kg/min", "mL/min·kg"],
    "bp_systolic": ["mmHg", "kPa"],
}
FAMILY = {
    "steps": "count",
    "distance": "length",
    "active_energy": "energy",
    "body_mass": "mass",
    "body_fat": "share",
    "spo2": "share",
    "heart_rate": "frequency",
    "hrv_rmssd": "time",
    "sleep_duration": "time",
    "body_temperature": "temperature",
    "water": "volume",
    "sodium": "mass",
    "vo2max": "volume per mass and time",
    "bp_systolic": "pressure",
}
"""Written out by hand: what each metric measures."""
PAIRS = [(metric, unit) for metric, units in UNITS_BY_METRIC.items() for unit in units]
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(pair=st.sampled_from(PAIRS), value=finite)
def test_every_unit_round_trips_through_the_canonical_unit(
    pair: tuple[str, str], value: float
) -> None:
    metric, unit = pair
    back = from_canonical(metric, to_canonical(metric, value, unit), unit)
    assert math.isclose(back, value, rel_tol=1e-9, abs_tol=1e-6)


@given(pair=st.sampled_from(PAIRS), a=finite, b=finite)
def test_conversion_keeps_order(pair: tuple[str, str], a: float, b: float) -> None:
    """A larger reading stays larger (no unit of ours is inverted)."""
    metric, unit = pair
    if a < b:
        assert to_canonical(metric, a, unit) <= to_canonical(metric, b, unit)


@given(
    metric=st.sampled_from(sorted(UNITS_BY_METRIC)),
    other=st.sampled_from(sorted(UNITS_BY_METRIC)),
)
def test_a_unit_of_another_family_is_refused(metric: str, other: str) -> None:
    for unit in UNITS_BY_METRIC[other]:
        if FAMILY[metric] == FAMILY[other]:
            check_unit(metric, unit)
        else:
            with pytest.raises(UnitError):
                check_unit(metric, unit)
