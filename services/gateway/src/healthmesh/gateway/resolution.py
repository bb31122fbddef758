"""Resolution: whose value counts in each bucket, and where every number came from.

Pure functions over the normalizer's rollups (one `Cell` per source and bucket); the SQL lives in
db.py, the routes only shape answers. The rules, in one place so that every endpoint (metric
series, daily summary, explanations) answers alike:

- Ranking: the user's sources for a metric (the metric's override, else its category's order),
  keeping only sources with data in the window, then any unranked source with data, by name. A
  lone source therefore always ranks first and is never a fallback.
- A bucket is answered by the highest-ranked source with data in it; a lower-ranked one only when
  fallback is on (it is then a fallback). Without fallback, only the first-ranked source answers.
- Days of sum and mean metrics fall back per UTC hour when two or more sources have data that day
  and every one of them is fully hourly that day (its hour rollups add up to its day rollup within
  0.5%): each hour from the highest-ranked source with data in that hour. So a watch worn in the
  afternoon gives those hours and a ring the rest, rather than one of them the whole day. Other
  days, and last/session metrics and metrics counted by their end (sleep), go whole to one source.
- Weeks and months are built from resolved days: sum of days for sum and session metrics, the mean
  weighted by samples for mean ones, the last day's value for last ones.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal, NamedTuple

from healthmesh.common.vocabulary import Aggregation, MetricDef, metric_def

HOURLY_TOLERANCE = 0.005
"""How closely a source's hour rollups must add up to its day rollup for hour-level fallback."""

Rule = Literal["first_ranked", "highest_ranked_with_data", "per_hour", "from_days"]
"""How a value was chosen: only the first-ranked source (fallback off); the whole bucket from the
highest-ranked source with data; per UTC hour within the day; or built from resolved days."""


class Cell(NamedTuple):
    """One source's rollup of one bucket (a local day or a UTC hour): the columns of
    `normalizer.daily_rollups_v1` / `hourly_rollups_v1` that resolution needs. A NamedTuple: a
    year's query makes a thousand of them, and a frozen dataclass cost three times as much."""

    source: str
    samples: int
    total: float
    """Sum free of overlaps between devices of the source (sum and session metrics)."""
    raw_total: float
    """Plain sum of the readings (mean = raw_total / samples)."""
    minimum: float
    maximum: float
    last_value: float
    last_at: datetime
    utc_offset_s: int


def cell_value(aggregation: Aggregation, cell: Cell) -> float:
    """A bucket's value from one source's rollup, as the metric aggregates."""
    if aggregation == "mean":
        return cell.raw_total / cell.samples if cell.samples else 0.0
    if aggregation == "last":
        return cell.last_value
    return cell.total


def merge_cells(cells: Iterable[Cell]) -> Cell:
    """One source's cells of several buckets as one (hours and long samples into a day in a
    requested zone). The offset and last value are the latest cell's."""
    ordered = sorted(cells, key=lambda c: c.last_at)
    if not ordered:
        raise ValueError("merge_cells needs at least one cell")
    last = ordered[-1]
    return Cell(
        source=last.source,
        samples=sum(c.samples for c in ordered),
        total=sum(c.total for c in ordered),
        raw_total=sum(c.raw_total for c in ordered),
        minimum=min(c.minimum for c in ordered),
        maximum=max(c.maximum for c in ordered),
        last_value=last.last_value,
        last_at=last.last_at,
        utc_offset_s=last.utc_offset_s,
    )


class DayHours(NamedTuple):
    """One source's hour rollups on one local day, summed up (the day rollup's `hour_mask`,
    `hours_samples`, `hours_total`, `hours_raw_total`)."""

    mask: int
    """Bit i: the UTC hour starting i - 18 hours after the local date's midnight read as UTC."""
    samples: int
    total: float
    raw_total: float


class HourShare(NamedTuple):
    """The hours of a day one source answers when the day falls back per hour, summed up."""

    hours: int
    samples: int
    total: float
    raw_total: float


@dataclass(frozen=True)
class Preference:
    """The caller's choice for one metric, as the preferences service states it."""

    sources: tuple[str, ...]
    fallback: bool
    decided_by: str
    """`override` (a per-metric override) or `category:<category>` (the category's order)."""


def preference_for(preferences: Mapping[str, Any], metric: str) -> Preference:
    """The preference that decides `metric`, from a `GET /v1/preferences` answer: the metric's
    override if any (with its category's fallback switch), else its category's order."""
    category = metric_def(metric).category
    chosen = preferences.get("categories", {}).get(category, {"sources": [], "fallback": True})
    override = preferences.get("overrides", {}).get(metric)
    fallback = bool(chosen.get("fallback", True))
    if override:
        return Preference(tuple(override), fallback, "override")
    return Preference(tuple(chosen.get("sources", [])), fallback, f"category:{category}")


def rank(priority: Sequence[str], present: Iterable[str]) -> list[str]:
    """The sources with data in the window, best first: the user's order, then the sources the
    user never ranked, by name."""
    have = set(present)
    ranked = [s for s in dict.fromkeys(priority) if s in have]
    return ranked + sorted(have - set(ranked))


class Contribution(NamedTuple):
    """One source's part of a resolved value."""

    source: str
    value: float
    """Its part in the metric's terms: a sum's share, or the mean over the hours it answered."""
    samples: int
    hours: int | None = None
    """UTC hours it answered, when the day was resolved per hour."""

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"source": self.source, "value": self.value}
        if self.hours is not None:
            answer["hours"] = self.hours
        return answer


class Resolved(NamedTuple):
    """A bucket's value with its provenance. NamedTuples, like `Cell`: a year's series makes a
    thousand of these and of `Contribution`."""

    value: float
    samples: int
    source: str
    """The source that gave most of the value (most samples, for a mean)."""
    fallback: bool
    """True when any part came from a source ranked below the first."""
    rule: Rule
    contributions: tuple[Contribution, ...]
    """Every source that contributed, in rank order (one, unless a day fell back per hour)."""
    utc_offset_s: int
    last_at: datetime
    ranked: tuple[str, ...] = ()
    """The ranking the choice was made from (for explanations)."""

    def provenance(self) -> dict[str, Any]:
        """`source`, `fallback`, and `sources` (the addition to the API) when several sources
        contributed."""
        answer: dict[str, Any] = {"source": self.source, "fallback": self.fallback}
        if len(self.contributions) > 1:
            answer["sources"] = [c.as_json() for c in self.contributions]
        return answer


def single(
    aggregation: Aggregation, cell: Cell, rule: Rule = "highest_ranked_with_data"
) -> Resolved:
    """One source's own value for a bucket (source=all or source=<id>; never a fallback)."""
    value = cell_value(aggregation, cell)
    return Resolved(
        value=value,
        samples=cell.samples,
        source=cell.source,
        fallback=False,
        rule=rule,
        contributions=(Contribution(cell.source, value, cell.samples),),
        utc_offset_s=cell.utc_offset_s,
        last_at=cell.last_at,
        ranked=(cell.source,),
    )


def resolve_bucket(
    aggregation: Aggregation, ranked: Sequence[str], fallback: bool, cells: Mapping[str, Cell]
) -> Resolved | None:
    """The whole bucket from the highest-ranked source with data (only the first-ranked one
    without fallback); None when nobody may answer."""
    if not ranked:
        return None
    candidates = [s for s in ranked if s in cells] if fallback else ranked[:1]
    for source in candidates:
        if source in cells:
            chosen = single(
                aggregation,
                cells[source],
                "highest_ranked_with_data" if fallback else "first_ranked",
            )
            return chosen._replace(fallback=source != ranked[0], ranked=tuple(ranked))
    return None


def fully_hourly(aggregation: Aggregation, day: Cell, hours: DayHours) -> bool:
    """Whether one source's hour rollups add up to its day rollup within 0.5%: then none of its
    samples that day were longer than an hour and the hours can stand in for the day."""
    if aggregation == "sum":
        measure, whole = hours.total, day.total
    else:
        measure, whole = hours.raw_total, day.raw_total
    return abs(measure - whole) <= HOURLY_TOLERANCE * abs(whole)


def split_hours(
    metric: MetricDef,
    ranked: Sequence[str],
    fallback: bool,
    day: Mapping[str, Cell],
    hours: Mapping[str, DayHours],
) -> dict[str, int] | None:
    """The hours (as `DayHours.mask` bits) each source answers when the day falls back per UTC
    hour, each hour going to the best-ranked source with data in it; None when the day goes
    whole to one source (see the module's rules). `day` maps source -> its day rollup, `hours`
    source -> its hours that day."""
    candidates = [s for s in ranked if s in day]
    none = DayHours(0, 0, 0.0, 0.0)
    if not (
        fallback
        and metric.aggregation in ("sum", "mean")
        and metric.day_of == "start"
        and len(candidates) > 1
        and all(fully_hourly(metric.aggregation, day[s], hours.get(s, none)) for s in candidates)
    ):
        return None
    taken = 0
    answered = {}
    for source in candidates:
        mask = hours.get(source, none).mask
        if mine := mask & ~taken:
            answered[source] = mine
        taken |= mask
    return answered


def resolve_day(
    metric: MetricDef,
    ranked: Sequence[str],
    fallback: bool,
    day: Mapping[str, Cell],
    shares: Mapping[str, HourShare] | None,
) -> Resolved | None:
    """One local day: per UTC hour when `split_hours` split it (`shares`: source -> the hours it
    answers, summed up, in rank order), else the whole day from one source. `day` maps source ->
    its day rollup."""
    aggregation = metric.aggregation
    picked = list(shares or {})
    if len(picked) <= 1:
        # Not per hour, or one source answered every hour: a day rollup is the exact answer.
        return resolve_bucket(aggregation, ranked, fallback, {s: day[s] for s in picked} or day)
    assert shares is not None
    contributions = []
    for source in picked:
        share = shares[source]
        if aggregation == "sum":
            value = share.total
        else:
            value = share.raw_total / share.samples if share.samples else 0.0
        contributions.append(Contribution(source, value, share.samples, hours=share.hours))
    samples = sum(c.samples for c in contributions)
    if aggregation == "sum":
        value = sum(c.value for c in contributions)
        weight = {c.source: abs(c.value) for c in contributions}
    else:
        value = sum(c.value * c.samples for c in contributions) / samples if samples else 0.0
        weight = {c.source: float(c.samples) for c in contributions}
    main = max(contributions, key=lambda c: weight[c.source])  # first of equals: the better rank
    latest = max((day[s] for s in picked), key=lambda c: c.last_at)
    return Resolved(
        value=value,
        samples=samples,
        source=main.source,
        fallback=any(s != ranked[0] for s in picked),
        rule="per_hour",
        contributions=tuple(contributions),
        utc_offset_s=day[main.source].utc_offset_s,
        last_at=latest.last_at,
        ranked=tuple(ranked),
    )


def combine_days(aggregation: Aggregation, days: Sequence[Resolved]) -> Resolved:
    """A week or month from its resolved days, in date order: sum of days (sum, session), mean
    weighted by samples (mean), the last day's value (last)."""
    if not days:
        raise ValueError("combine_days needs at least one day")
    if aggregation == "last":
        return days[-1]._replace(rule="from_days")
    merged: dict[str, tuple[float, int, int | None]] = {}
    order: list[str] = []
    for d in days:
        for c in d.contributions:
            if c.source not in merged:
                order.append(c.source)
                merged[c.source] = (0.0, 0, None)
            value, samples, hours = merged[c.source]
            part = c.value if aggregation != "mean" else c.value * c.samples
            if c.hours is not None or hours is not None:
                hours = (hours or 0) + (c.hours or 0)
            merged[c.source] = (value + part, samples + c.samples, hours)
    samples = sum(d.samples for d in days)
    contributions = []
    for source in order:
        value, n, hours = merged[source]
        if aggregation == "mean":
            value = value / n if n else 0.0
        contributions.append(Contribution(source, value, n, hours))
    if aggregation == "mean":
        total = sum(c.value * c.samples for c in contributions)
        value = total / samples if samples else 0.0
        main = max(contributions, key=lambda c: c.samples)
    else:
        value = sum(d.value for d in days)
        main = max(contributions, key=lambda c: abs(c.value))
    ranked = days[0].ranked
    if ranked:
        contributions.sort(key=lambda c: ranked.index(c.source) if c.source in ranked else 1 << 30)
    return Resolved(
        value=value,
        samples=samples,
        source=main.source,
        fallback=any(d.fallback for d in days),
        rule="from_days",
        contributions=tuple(contributions),
        utc_offset_s=days[0].utc_offset_s,
        last_at=max(d.last_at for d in days),
        ranked=ranked,
    )


def window_ranking(preference: Preference, days: Mapping[date, Mapping[str, Cell]]) -> list[str]:
    """The ranking a window's days are resolved by: the sources with data in any of them."""
    return rank(preference.sources, {s for cells in days.values() for s in cells})


def resolve_days(
    metric: MetricDef,
    preference: Preference,
    days: Mapping[date, Mapping[str, Cell]],
    shares: Mapping[date, Mapping[str, HourShare]],
) -> dict[date, Resolved]:
    """Every local day of a window resolved, ranking the sources with data in the window. `days`
    maps day -> source -> day rollup; `shares` the days that fall back per hour -> source -> the
    hours it answers (`split_hours`)."""
    ranked = window_ranking(preference, days)
    resolved = {}
    for day in sorted(days):
        answer = resolve_day(metric, ranked, preference.fallback, days[day], shares.get(day))
        if answer is not None:
            resolved[day] = answer
    return resolved


def period_start(day: date, unit: Literal["day", "week", "month"]) -> date:
    """The first day of the week (Monday) or month a day falls in."""
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def periods(
    aggregation: Aggregation, days: Mapping[date, Resolved], unit: Literal["week", "month"]
) -> dict[date, Resolved]:
    """Resolved days grouped into weeks or months, keyed by each period's first day."""
    grouped: dict[date, list[Resolved]] = {}
    for day in sorted(days):
        grouped.setdefault(period_start(day, unit), []).append(days[day])
    return {start: combine_days(aggregation, group) for start, group in grouped.items()}
