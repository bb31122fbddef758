"""Source priorities: which sources answer a category or a metric, in what order.

Pure rules; the capabilities and defaults they check against are rows in the database.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from healthmesh.common.vocabulary import METRICS

Capabilities = Mapping[str, frozenset[str]]
"""Source id -> the categories of data it can provide."""


class PreferenceError(ValueError):
    """A preference that cannot be stored; the message says why."""


@dataclass(frozen=True)
class Priority:
    sources: list[str]
    """Source ids, most preferred first."""
    fallback: bool
    """Whether a lower source may answer when a higher one has no data."""


def check_sources(
    category: str, sources: Sequence[str], capabilities: Capabilities, *, subject: str = ""
) -> None:
    """Refuse an empty list, duplicates, unknown sources, and sources without `category` data."""
    subject = subject or f"{category} data"
    if not sources:
        raise PreferenceError("sources must name at least one source")
    repeated = sorted({source for source in sources if sources.count(source) > 1})
    if repeated:
        raise PreferenceError(f"sources lists {', '.join(repeated)} more than once")
    unknown = [source for source in sources if source not in capabilities]
    if unknown:
        raise PreferenceError(
            f"unknown source {', '.join(unknown)}; known sources: {', '.join(sorted(capabilities))}"
        )
    unable = [source for source in sources if category not in capabilities[source]]
    if unable:
        raise PreferenceError(
            "; ".join(
                f"{source} cannot provide {subject}; it provides "
                + ", ".join(sorted(capabilities[source]))
                for source in unable
            )
        )


def check_override(metric: str, sources: Sequence[str], capabilities: Capabilities) -> None:
    """Refuse an unknown metric, or sources that cannot provide the metric's category."""
    definition = METRICS.get(metric)
    if definition is None:
        raise PreferenceError(f"unknown metric {metric!r}; GET /v1/metrics lists them")
    check_sources(
        definition.category,
        sources,
        capabilities,
        subject=f"{metric} (a {definition.category} metric)",
    )


def effective_priorities(
    defaults: Mapping[str, Priority], chosen: Mapping[str, Priority]
) -> dict[str, Priority]:
    """Every category with a default: the user's choice where there is one, else the default."""
    return {category: chosen.get(category, default) for category, default in defaults.items()}
