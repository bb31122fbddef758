"""Plausibility: implausible values are kept, flagged with quality 0 and a reason, and left out
of aggregates; they stay visible with source=all."""

from healthmesh.common.vocabulary import metric_def


def assess(metric: str, value: float) -> tuple[float, str | None]:
    low, high = metric_def(metric).plausible
    if value < low or value > high:
        return 0.0, f"implausible: {value:g} outside [{low:g}, {high:g}] {metric_def(metric).unit}"
    return 1.0, None
