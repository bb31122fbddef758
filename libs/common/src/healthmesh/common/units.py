"""Unit conversion to each metric's canonical unit, through pint rather than factor tables."""

from collections.abc import Callable
from functools import cache

import pint

from healthmesh.common.vocabulary import metric_def

# Spellings seen in exports and mappings that pint does not know, mapped to pint's names.
_ALIASES = {
    "count": "count",
    "bpm": "1 / minute",
    "count/min": "1 / minute",
    "/min": "1 / minute",
    "%": "percent",
    "kg/m2": "kilogram / meter ** 2",
    "kg/m^2": "kilogram / meter ** 2",
    "mmhg": "mmHg",
    "cal": "kilocalorie",  # nutrition labels' "Calories" are kilocalories
    "kcal": "kilocalorie",
    "ml": "milliliter",
    "score": "count",
    "lbs": "pound",
    "cel": "degree_Celsius",
    "degc": "degree_Celsius",
    "celsius": "degree_Celsius",
    "degf": "degree_Fahrenheit",
    "fahrenheit": "degree_Fahrenheit",
    "ml/kg/min": "milliliter / kilogram / minute",
    "ml/(kg*min)": "milliliter / kilogram / minute",
    "ml/(kg·min)": "milliliter / kilogram / minute",
    "kj": "kilojoule",
    "fraction": "dimensionless",
    # Apple Health's HKUnit strings (export.xml `unit` attributes)
    "ml/min·kg": "milliliter / kilogram / minute",  # VO2Max, with a non-ASCII middle dot
    "st": "stone",
    "fl_oz_us": "US_fluid_ounce",
    "fl_oz_imp": "imperial_fluid_ounce",
}


class UnitError(ValueError):
    """A unit that is unknown or does not measure what the metric measures."""


@cache
def _registry() -> pint.UnitRegistry:  # type: ignore[type-arg]
    registry: pint.UnitRegistry = pint.UnitRegistry()  # type: ignore[type-arg]
    return registry


def load_units() -> None:
    """Read pint's unit definitions now (about a second of CPU), e.g. while a service starts,
    rather than in the first conversion (the first batch of an import waited for it)."""
    _registry()


def _parse(unit: str) -> pint.Unit:
    if not unit.strip():
        raise UnitError("the unit is empty")
    name = _ALIASES.get(unit.strip().lower(), unit.strip())
    try:
        return _registry().parse_units(name)
    except Exception as exc:  # pint's parser raises many kinds (tokenize, assertion, ...)
        raise UnitError(f"unknown unit {unit!r}") from exc


def _base_factor(unit: pint.Unit) -> float:
    return float(_registry().Quantity(1, unit).to_base_units().magnitude)


def check_unit(metric: str, unit: str) -> None:
    """Raise UnitError when `unit` cannot express `metric` (e.g. kg for steps).

    Dimensionless units must also agree in scale: counts and scores are not percentages, so
    `%` for steps or `count` for body fat is refused rather than silently scaled by 100. A
    percentage given as a fraction of one must say so with the unit `fraction`.
    """
    canonical = _parse(metric_def(metric).pint_unit)
    given = _parse(unit)
    fraction = unit.strip().lower() == "fraction"
    if fraction and metric_def(metric).unit == "%":
        return  # declared as a fraction of one (Apple Health's 0.25 for 25 %): scaled by 100
    same_dimension = given.dimensionality == canonical.dimensionality
    if (
        fraction
        or not same_dimension
        or (canonical.dimensionless and _base_factor(given) != _base_factor(canonical))
    ):
        raise UnitError(
            f"unit {unit!r} does not measure {metric} (canonical unit {metric_def(metric).unit!r})"
        )


def to_canonical(metric: str, value: float, unit: str) -> float:
    """Convert `value` in `unit` to the metric's canonical unit."""
    return _converter(metric, unit, towards_canonical=True)(value)


def converter(metric: str, unit: str) -> Callable[[float], float]:
    """`to_canonical` for one (metric, unit) as a function, for a series of values in one unit;
    raises `UnitError` at once for a unit of another family."""
    return _converter(metric, unit, towards_canonical=True)


def from_canonical(metric: str, value: float, unit: str) -> float:
    """Express `value`, in the metric's canonical unit, in `unit` (for display: lb, mi, degF)."""
    return _converter(metric, unit, towards_canonical=False)(value)


@cache
def _converter(metric: str, unit: str, towards_canonical: bool) -> Callable[[float], float]:
    """The conversion between `unit` and the metric's canonical unit, checked and worked out by
    pint once per (metric, unit): parsing units costs ~100 us, and a minute-level heart-rate
    day has 1,440 values in the same unit. Multiplicative units become one factor (the one pint
    gives); units with an offset (degF) go through pint every time."""
    check_unit(metric, unit)
    given, canonical = _parse(unit), _parse(metric_def(metric).pint_unit)
    source, target = (given, canonical) if towards_canonical else (canonical, given)

    def by_pint(value: float) -> float:
        return float(_registry().Quantity(value, source).to(target).magnitude)

    if by_pint(0.0) != 0.0:
        return by_pint
    factor = by_pint(1.0)
    if factor == 1.0:
        return float
    return lambda value: value * factor
