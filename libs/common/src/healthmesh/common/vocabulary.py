"""The unified metric vocabulary: canonical units, categories, how each metric aggregates."""

from dataclasses import dataclass
from typing import Literal

Aggregation = Literal["sum", "mean", "last", "session"]
DayOf = Literal["start", "end"]
Category = Literal["activity", "sleep", "body", "heart", "recovery", "nutrition"]


@dataclass(frozen=True)
class MetricDef:
    metric: str
    unit: str
    """Canonical unit as served (UCUM-style)."""
    pint_unit: str
    """The same unit as pint spells it, used for conversion."""
    category: Category
    aggregation: Aggregation
    plausible: tuple[float, float]
    """Values outside [low, high] are stored flagged and left out of aggregates."""
    day_of: DayOf = "start"
    """Which end of a sample decides its local day: a night's sleep belongs to the morning
    it ends on, everything else to when it started."""


_DEFS = (
    MetricDef("steps", "count", "count", "activity", "sum", (0, 200_000)),
    MetricDef("distance", "m", "meter", "activity", "sum", (0, 1_000_000)),
    MetricDef("active_energy", "kcal", "kilocalorie", "activity", "sum", (0, 20_000)),
    MetricDef("floors", "count", "count", "activity", "sum", (0, 2_000)),
    MetricDef("active_minutes", "min", "minute", "activity", "sum", (0, 1_440)),
    MetricDef("basal_energy", "kcal", "kilocalorie", "activity", "sum", (0, 10_000)),
    MetricDef("total_energy", "kcal", "kilocalorie", "activity", "sum", (0, 25_000)),
    MetricDef("workout", "s", "second", "activity", "session", (0, 7 * 86_400)),
    MetricDef("sleep_session", "s", "second", "sleep", "session", (0, 86_400), "end"),
    MetricDef("sleep_duration", "s", "second", "sleep", "sum", (0, 86_400), "end"),
    MetricDef("body_mass", "kg", "kilogram", "body", "last", (2, 650)),
    MetricDef("body_fat", "%", "percent", "body", "last", (1, 75)),
    MetricDef("bmi", "kg/m2", "kilogram / meter ** 2", "body", "last", (8, 120)),
    MetricDef("lean_mass", "kg", "kilogram", "body", "last", (1, 300)),
    MetricDef("muscle_mass", "kg", "kilogram", "body", "last", (1, 300)),
    MetricDef("bone_mass", "kg", "kilogram", "body", "last", (0.1, 20)),
    MetricDef("body_temperature", "Cel", "degree_Celsius", "body", "last", (30, 45)),
    MetricDef("skin_temperature", "Cel", "degree_Celsius", "body", "mean", (15, 45)),
    MetricDef("heart_rate", "bpm", "1 / minute", "heart", "mean", (20, 250)),
    MetricDef("resting_heart_rate", "bpm", "1 / minute", "heart", "mean", (20, 200)),
    MetricDef("hrv_rmssd", "ms", "millisecond", "heart", "mean", (1, 500)),
    MetricDef("hrv_sdnn", "ms", "millisecond", "heart", "mean", (1, 500)),
    MetricDef("spo2", "%", "percent", "heart", "mean", (50, 100)),
    MetricDef("respiratory_rate", "/min", "1 / minute", "heart", "mean", (3, 80)),
    MetricDef("bp_systolic", "mmHg", "mmHg", "heart", "mean", (50, 300)),
    MetricDef("bp_diastolic", "mmHg", "mmHg", "heart", "mean", (20, 200)),
    MetricDef("vo2max", "mL/kg/min", "milliliter / kilogram / minute", "heart", "last", (5, 100)),
    MetricDef("readiness", "score", "count", "recovery", "mean", (0, 100)),
    MetricDef("recovery", "score", "count", "recovery", "mean", (0, 100)),
    MetricDef("strain", "score", "count", "recovery", "mean", (0, 21)),
    MetricDef("energy_intake", "kcal", "kilocalorie", "nutrition", "sum", (0, 30_000)),
    MetricDef("protein", "g", "gram", "nutrition", "sum", (0, 2_000)),
    MetricDef("carbohydrate", "g", "gram", "nutrition", "sum", (0, 5_000)),
    MetricDef("fat", "g", "gram", "nutrition", "sum", (0, 2_000)),
    MetricDef("fiber", "g", "gram", "nutrition", "sum", (0, 1_000)),
    MetricDef("sugar", "g", "gram", "nutrition", "sum", (0, 5_000)),
    MetricDef("sodium", "mg", "milligram", "nutrition", "sum", (0, 100_000)),
    MetricDef("water", "mL", "milliliter", "nutrition", "sum", (0, 20_000)),
)

METRICS: dict[str, MetricDef] = {d.metric: d for d in _DEFS}


def metric_def(metric: str) -> MetricDef:
    """The definition of a metric; KeyError names the metric when it is unknown."""
    try:
        return METRICS[metric]
    except KeyError:
        raise KeyError(f"unknown metric {metric!r}") from None
