"""Source priorities: which sources answer a category or a metric, in what order.

Pure rules; the capabilities and defaults they check against are rows in the database.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from healthmesh.common.vocabulary import METRICS

Capabilities = Mapping[str, frozenset[str]]
"""Source id -> the categories of data it can provide."""
MetricCapabilities = Mapping[str, frozenset[str]]
"""Source id -> the metrics it can provide (what its mapper emits)."""


class PreferenceError(ValueError):
    """A preference that cannot be stored; the message says why."""


@dataclass(frozen=True)
class Priority:
    sources: list[str]
    """Source ids, most preferred first."""
    fallback: bool
    """Whether a lower source may answer when a higher one has no data."""


def check_sources(category: str, sources: Sequence[str], capabilities: Capabilities) -> None:
    """Refuse an empty list, duplicates, unknown sources, and sources without `category` data."""
    _check_list(sources, capabilities)
    unable = [source for source in sources if category not in capabilities[source]]
    if unable:
        raise PreferenceError(
            "; ".join(
                f"{source} cannot provide {category} data; it provides "
                + ", ".join(sorted(capabilities[source]))
                for source in unable
            )
        )


def check_override(metric: str, sources: Sequence[str], provides: MetricCapabilities) -> None:
    """Refuse an unknown metric, and sources that never yield `metric` (Strava has workouts but
    no steps), naming what each refused source gives in the metric's category instead."""
    definition = METRICS.get(metric)
    if definition is None:
        raise PreferenceError(f"unknown metric {metric!r}; GET /v1/metrics lists them")
    _check_list(sources, provides)
    unable = [source for source in sources if metric not in provides[source]]
    if unable:
        raise PreferenceError(
            "; ".join(
                _cannot(source, metric, definition.category, provides[source]) for source in unable
            )
        )


def _cannot(source: str, metric: str, category: str, provided: frozenset[str]) -> str:
    alike = sorted(m for m in provided if m in METRICS and METRICS[m].category == category)
    if alike:
        return f"{source} cannot provide {metric}; its {category} metrics are {', '.join(alike)}"
    return f"{source} cannot provide {metric}: it has no {category} data"


def _check_list(sources: Sequence[str], known: Mapping[str, frozenset[str]]) -> None:
    """Refuse an empty list, a source named twice, and a source nobody knows."""
    if not sources:
        raise PreferenceError("sources must name at least one source")
    repeated = sorted({source for source in sources if sources.count(source) > 1})
    if repeated:
        raise PreferenceError(f"sources lists {', '.join(repeated)} more than once")
    unknown = [source for source in sources if source not in known]
    if unknown:
        raise PreferenceError(
            f"unknown source {', '.join(unknown)}; known sources: {', '.join(sorted(known))}"
        )
