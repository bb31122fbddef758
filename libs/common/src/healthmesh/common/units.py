"""Unit conversion to each metric's canonical unit, through pint rather than factor tables."""

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
}


class UnitError(ValueError):
    """A unit that is unknown or does not measure what the metric measures."""


@cache
def _registry() -> pint.UnitRegistry:  # type: ignore[type-arg]
    registry: pint.UnitRegistry = pint.UnitRegistry()  # type: ignore[type-arg]
    return registry


def _parse(unit: str) -> pint.Unit:
    name = _ALIASES.get(unit.strip().lower(), unit.strip())
    try:
        return _registry().parse_units(name)
    except (pint.errors.UndefinedUnitError, AttributeError, ValueError, TypeError) as exc:
        raise UnitError(f"unknown unit {unit!r}") from exc


def check_unit(metric: str, unit: str) -> None:
    """Raise UnitError when `unit` cannot express `metric` (e.g. kg for steps)."""
    canonical = _parse(metric_def(metric).pint_unit)
    if _parse(unit).dimensionality != canonical.dimensionality:
        raise UnitError(
            f"unit {unit!r} does not measure {metric} (canonical unit {metric_def(metric).unit!r})"
        )


def to_canonical(metric: str, value: float, unit: str) -> float:
    """Convert `value` in `unit` to the metric's canonical unit."""
    check_unit(metric, unit)
    quantity = _registry().Quantity(value, _parse(unit))
    return float(quantity.to(_parse(metric_def(metric).pint_unit)).magnitude)
