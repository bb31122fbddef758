"""Echoes: one provider re-exporting another's data, counted once with a pointer to the copy.

Withings copies Apple Health workouts and writes its weigh-ins into Apple Health; Strava and Oura
write what they also serve by API into Apple Health. The same workout or weigh-in then arrives
twice, once from each source. Pure functions over one user's samples of one metric on one day;
they apply to sessions and body-style measures (`ECHO_METRICS`: aggregations `session` and
`last`), where one sample is one event that a copy reproduces.

The rule. Two samples of different sources are one event when
- they start within 2 minutes of each other and last as long, within 2 minutes or 5%
  (`tolerances.ECHO_TIMES`), and
- their values agree within the metric's echo tolerance (`tolerances.ECHO_VALUES`: 0.1 kg for a
  weight, 2 minutes or 5% for a session; 1% otherwise).
A device or app name on one of them that names the other source (Apple Health's "Withings" or
"Strava" app, Withings' "HealthKit ... tracker") strengthens the match: those tolerances are
doubled, and such pairs are matched first. Events are built from the closest pairs, never two
samples of one source in one event (a chain Strava -> Apple Health -> Withings is one event).

Which copy is the original: the source the others' device names point at (the data came from it
by API; in a chain, the one that names no other); otherwise the highest-ranked source (the
user's order for the metric, unranked sources last in name order). The others are echoes of it:
left out of counts, kept with a pointer.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from healthmesh.common.vocabulary import METRICS
from healthmesh.gateway.tolerances import ECHO_TIMES, echo_value_tolerance

ECHO_METRICS = frozenset(m for m, d in METRICS.items() if d.aggregation in ("session", "last"))

NAMED_FACTOR = 2.0
"""How much wider the tolerances are when one sample's device names the other's source."""

APP_NAMES: dict[str, tuple[str, ...]] = {
    "apple_health": ("healthkit", "apple health", "apple watch"),
    "withings": ("withings", "health mate"),
    "strava": ("strava",),
    "oura": ("oura",),
    "whoop": ("whoop",),
    "fitbit": ("fitbit",),
    "google_health": ("google fit", "googlefit", "health connect"),
    "cronometer": ("cronometer",),
    "myfitnesspal": ("myfitnesspal", "my fitness pal"),
}
"""How each source's app or device shows up as another source's device name (lower case)."""


@dataclass(frozen=True)
class Observed:
    """One stored sample, as far as echo detection needs it."""

    id: UUID
    source: str
    device: str | None
    start: datetime
    end: datetime
    value: float


def from_row(row: Mapping[str, Any]) -> Observed:
    """A `normalizer.samples_v1` row (`db.samples_of_days`)."""
    return Observed(
        id=row["id"],
        source=row["source"],
        device=row["device"],
        start=row["start_at"],
        end=row["end_at"],
        value=row["value"],
    )


@dataclass(frozen=True)
class Echo:
    echo: Observed
    """The copy: not counted."""
    original: Observed
    """The sample counted in its place."""
    named: bool
    """A device name on one of the two named the other's source."""

    def pointer(self) -> dict[str, Any]:
        return {
            "id": str(self.echo.id),
            "source": self.echo.source,
            "device": self.echo.device,
            "echo_of": {"id": str(self.original.id), "source": self.original.source},
            "named": self.named,
        }


def names(device: str | None, source: str, own_source: str) -> bool:
    """Whether a sample of `own_source` with this device was written by `source`'s app. A
    device naming its own source too ("Strava iPhone App" in Strava) names nothing else."""
    text = (device or "").lower()
    if not text or source == own_source:
        return False
    if any(name in text for name in APP_NAMES.get(own_source, ())):
        return False
    return any(name in text for name in APP_NAMES.get(source, ()))


def named_pair(a: Observed, b: Observed) -> bool:
    return names(a.device, b.source, a.source) or names(b.device, a.source, b.source)


def same_event(metric: str, a: Observed, b: Observed) -> bool:
    """The rule in the module docstring, for two samples of different sources."""
    if a.source == b.source:
        return False
    factor = NAMED_FACTOR if named_pair(a, b) else 1.0
    times = ECHO_TIMES.widened(factor)
    start_gap = abs((a.start - b.start).total_seconds())
    if start_gap > times.absolute:
        return False
    length_a = (a.end - a.start).total_seconds()
    length_b = (b.end - b.start).total_seconds()
    if not times.agrees(length_a, length_b):
        return False
    return echo_value_tolerance(metric).widened(factor).agrees(a.value, b.value)


def rank_of(ranked: Sequence[str]) -> dict[str, int]:
    return {source: index for index, source in enumerate(ranked)}


def _order(source: str, ranks: dict[str, int]) -> tuple[int, str]:
    return (ranks.get(source, len(ranks)), source)


def find_echoes(metric: str, samples: Sequence[Observed], ranked: Sequence[str]) -> list[Echo]:
    """The echoes among one day's samples of `metric`, each with the original it copies.

    `ranked`: the user's sources for the metric, most preferred first. Samples of metrics
    outside `ECHO_METRICS` never echo (their day values are sums or means of many samples)."""
    if metric not in ECHO_METRICS:
        return []
    pairs: list[tuple[bool, float, float, int, int]] = []
    for i, a in enumerate(samples):
        for j in range(i + 1, len(samples)):
            b = samples[j]
            if same_event(metric, a, b):
                gap = abs((a.start - b.start).total_seconds())
                pairs.append((not named_pair(a, b), gap, abs(a.value - b.value), i, j))
    events: dict[int, list[int]] = {i: [i] for i in range(len(samples))}
    event_of = list(range(len(samples)))
    for *_, i, j in sorted(pairs):
        first, second = event_of[i], event_of[j]
        if first == second:
            continue
        sources = {samples[k].source for k in events[first]}
        if any(samples[k].source in sources for k in events[second]):
            continue
        for k in events.pop(second):
            event_of[k] = first
            events[first].append(k)
    ranks = rank_of(ranked)
    echoes: list[Echo] = []
    for members in events.values():
        if len(members) < 2:
            continue
        group = [samples[k] for k in members]
        original = _original(group, ranks)
        echoes.extend(
            Echo(echo=s, original=original, named=named_pair(s, original))
            for s in sorted(group, key=lambda s: _order(s.source, ranks))
            if s is not original
        )
    return sorted(echoes, key=lambda e: (e.original.start, e.echo.source))


def _original(group: list[Observed], ranks: dict[str, int]) -> Observed:
    """The sample another member's device names and whose own device names no other member
    (the head of a chain of copies); else one named at all; else the highest-ranked one."""

    def named_by_others(s: Observed) -> bool:
        return any(names(o.device, s.source, o.source) for o in group if o is not s)

    def names_another(s: Observed) -> bool:
        return any(names(s.device, o.source, s.source) for o in group if o is not s)

    named = [s for s in group if named_by_others(s)]
    heads = [s for s in named if not names_another(s)]
    return min(heads or named or group, key=lambda s: _order(s.source, ranks))


def echoed_sources(samples: Sequence[Observed], echoes: Sequence[Echo]) -> dict[str, str]:
    """Sources whose every sample here is an echo, each with the source it echoes (the one
    whose sample is the original of its first echo): such a source adds nothing of its own."""
    echoed_ids = {e.echo.id: e.original.source for e in echoes}
    by_source: dict[str, list[Observed]] = {}
    for s in samples:
        by_source.setdefault(s.source, []).append(s)
    return {
        source: echoed_ids[mine[0].id]
        for source, mine in sorted(by_source.items())
        if all(s.id in echoed_ids for s in mine)
    }
