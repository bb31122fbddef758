"""Conflicts: local days on which sources disagree about a metric beyond its tolerance.

Pure functions over per-source day values (from the normalizer's daily rollups). A source whose
samples that day are all echoes of another source's (`echoes.py`) repeats that source's numbers:
it is listed with `echo_of` and left out of the comparison, so an echo is never a conflict.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import combinations
from typing import Any

from healthmesh.common.vocabulary import metric_def
from healthmesh.gateway.tolerances import conflict_tolerance


@dataclass(frozen=True)
class SourceValue:
    source: str
    value: float
    echo_of: str | None = None
    """Set when every sample of this source that day echoes that source's."""

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"source": self.source, "value": self.value}
        if self.echo_of is not None:
            answer["echo_of"] = self.echo_of
        return answer


def disagree(metric: str, values: Sequence[SourceValue]) -> bool:
    """Whether two of the sources that count (echoes do not) are further apart than allowed."""
    tolerance = conflict_tolerance(metric)
    counted = [v for v in values if v.echo_of is None]
    return any(not tolerance.agrees(a.value, b.value) for a, b in combinations(counted, 2))


def conflict(day: date, metric: str, values: Sequence[SourceValue]) -> dict[str, Any] | None:
    """The answer's entry for one day and metric, or None when its sources agree."""
    if not disagree(metric, values):
        return None
    return {
        "date": day.isoformat(),
        "metric": metric,
        "unit": metric_def(metric).unit,
        "tolerance": conflict_tolerance(metric).as_json(),
        "values": [v.as_json() for v in sorted(values, key=lambda v: v.source)],
    }
