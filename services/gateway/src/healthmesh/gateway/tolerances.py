"""How far apart two sources' numbers may be: the one table of tolerances.

Two values `a` and `b` agree when `|a - b| <= max(absolute, relative * max(|a|, |b|))`: the
absolute part keeps small numbers (a 40-step morning) from being flagged over a few steps, the
relative part scales with big ones (a 20,000-step day).

- `CONFLICTS`: a day on which two sources' day values (from the rollups) do not agree is a
  conflict (`GET /v1/conflicts`). Metrics without an entry use their aggregation's default.
  The numbers are what two healthy devices on one person commonly differ by (wrist vs ring
  steps ~10%, optical heart rate a few bpm, two scales half a kilo, sleep trackers half an hour),
  so what is left is worth a look.
- `ECHO_VALUES`: how close a copied value must be to its original to be taken for one
  (`echoes.py`): copies are the same number, give or take a unit conversion or a rounding
  (80.0 kg written by Withings and read back from Apple Health in lb to one decimal:
  0.1 lb = 0.045 kg).
"""

from dataclasses import dataclass

from healthmesh.common.vocabulary import Aggregation, metric_def


@dataclass(frozen=True)
class Tolerance:
    absolute: float
    """In the metric's canonical unit."""
    relative: float = 0.0
    """A fraction of the larger of the two values (0.1 = 10%)."""

    def agrees(self, a: float, b: float) -> bool:
        allowed = max(self.absolute, self.relative * max(abs(a), abs(b)))
        return abs(a - b) <= allowed + 1e-9

    def widened(self, factor: float) -> "Tolerance":
        return Tolerance(self.absolute * factor, self.relative * factor)

    def as_json(self) -> dict[str, float]:
        return {"absolute": self.absolute, "relative": self.relative}


_CONFLICT_BY_AGGREGATION: dict[Aggregation, Tolerance] = {
    "sum": Tolerance(0.0, 0.10),
    "mean": Tolerance(0.0, 0.05),
    "last": Tolerance(0.0, 0.02),
    "session": Tolerance(1800.0, 0.10),
}

CONFLICTS: dict[str, Tolerance] = {
    # activity: cumulative counts, 10% (energy estimates 15%) with a floor for quiet days
    "steps": Tolerance(200, 0.10),
    "distance": Tolerance(150, 0.10),
    "active_energy": Tolerance(50, 0.15),
    "basal_energy": Tolerance(50, 0.10),
    "total_energy": Tolerance(100, 0.10),
    "floors": Tolerance(3, 0.20),
    "active_minutes": Tolerance(10, 0.20),
    "workout": Tolerance(600, 0.10),  # 10 min
    # sleep: half an hour
    "sleep_session": Tolerance(1800),
    "sleep_duration": Tolerance(1800),
    # body: two scales, the same morning
    "body_mass": Tolerance(0.5),
    "lean_mass": Tolerance(1.0),
    "muscle_mass": Tolerance(1.0),
    "bone_mass": Tolerance(0.2),
    "body_fat": Tolerance(2.0),  # percentage points
    "bmi": Tolerance(0.3),
    "body_temperature": Tolerance(0.3),
    "skin_temperature": Tolerance(0.5),
    # heart
    "heart_rate": Tolerance(5),
    "resting_heart_rate": Tolerance(3),
    "hrv_rmssd": Tolerance(5, 0.15),
    "hrv_sdnn": Tolerance(5, 0.15),
    "spo2": Tolerance(2),
    "respiratory_rate": Tolerance(1.5),
    "bp_systolic": Tolerance(8),
    "bp_diastolic": Tolerance(6),
    "vo2max": Tolerance(2),
    # recovery scores (0-100; strain 0-21)
    "readiness": Tolerance(10),
    "recovery": Tolerance(10),
    "strain": Tolerance(2),
    # nutrition: two diaries of the same meals
    "energy_intake": Tolerance(100, 0.10),
    "protein": Tolerance(5, 0.10),
    "carbohydrate": Tolerance(10, 0.10),
    "fat": Tolerance(5, 0.10),
    "fiber": Tolerance(3, 0.10),
    "sugar": Tolerance(5, 0.10),
    "sodium": Tolerance(200, 0.10),
    "water": Tolerance(250, 0.10),
}


def conflict_tolerance(metric: str) -> Tolerance:
    return CONFLICTS.get(metric) or _CONFLICT_BY_AGGREGATION[metric_def(metric).aggregation]


ECHO_TIMES = Tolerance(120.0, 0.05)
"""A copy starts within 2 minutes of its original and lasts as long, within 2 minutes or 5%."""

ECHO_VALUES: dict[str, Tolerance] = {
    "workout": Tolerance(120, 0.05),
    "sleep_session": Tolerance(120, 0.05),
    "body_mass": Tolerance(0.1),
    "lean_mass": Tolerance(0.1),
    "muscle_mass": Tolerance(0.1),
    "bone_mass": Tolerance(0.05),
    "body_fat": Tolerance(0.2),
    "bmi": Tolerance(0.1),
    "body_temperature": Tolerance(0.1),
    "vo2max": Tolerance(0.5),
}
_ECHO_DEFAULT = Tolerance(0.0, 0.01)


def echo_value_tolerance(metric: str) -> Tolerance:
    return ECHO_VALUES.get(metric, _ECHO_DEFAULT)
