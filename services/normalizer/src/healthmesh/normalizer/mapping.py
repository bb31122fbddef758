"""From one raw payload to unified samples: the mapper per source, and what every mapper returns.

Mappers are pure functions, one module per source under `sources/`, each keeping its source's
quirks to itself. A mapper that meets a bad record rejects that record (with where and why) and
maps the rest; a payload it cannot read at all raises `UnmappablePayload` and goes to the DLQ.

Every value goes through `measurement`, which converts it to the canonical unit with pint
(refusing a unit of the wrong family), checks the source field really is the metric it is filed
as (`check_identity`), and flags implausible values. That is where the leading open-source peer's
two data migrations (body fat 100x off, HRV filed as SDNN instead of RMSSD) are refused up front.
"""

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from functools import cache
from typing import Any
from uuid import UUID

from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.ids import SampleIds, fast_uuid, sample_ids
from healthmesh.common.units import converter
from healthmesh.common.vocabulary import metric_def
from healthmesh.normalizer.quality import assess


class UnmappablePayload(ValueError):
    """The payload as a whole cannot be mapped; the reason goes with it to the DLQ."""


class BadRecord(ValueError):
    """One record of a payload cannot be mapped; it is rejected alone, with this reason."""


class IdentityMismatch(Exception):
    """A mapper filed a source field under a metric it is not (a mapper bug, never data)."""


@dataclass(slots=True, kw_only=True)
class Sample:
    """One unified sample: the fields of the `MetricSample` contract, in its order.

    A plain slotted dataclass rather than the pydantic contract, because the normalizer makes one
    per data point (a heart-rate day is 1,440) and building a model costs more than the rest of
    the mapping. It is announced as the contract's JSON (`handlers.metric_changes`, checked by a
    property test). Treat it as immutable: it is stored and announced as built.
    """

    id: UUID
    user_id: UUID
    metric: str
    value: float
    unit: str
    source: str
    device: str | None
    start: datetime
    end: datetime
    utc_offset_s: int
    source_record_id: str
    quality: float
    quality_reason: str | None
    raw_event_id: UUID
    details: dict[str, JsonValue] | None


@dataclass(frozen=True)
class Rejection:
    where: str
    reason: str


@dataclass(frozen=True)
class Withdrawal:
    """A record the source says it deleted: every sample of the envelope's user and source
    with this record id goes (and is announced as deleted)."""

    source_record_id: str


@dataclass
class MappingResult:
    samples: list[Sample] = field(default_factory=list)
    records_seen: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)

    @property
    def records_rejected(self) -> int:
        return len(self.rejections)

    @property
    def records_imported(self) -> int:
        return self.records_seen - self.records_rejected


Mapper = Callable[[RawPayloadReceived], MappingResult]


def mappers() -> dict[str, Mapper]:
    """Mapper per source id; a source without one sends its payloads to the DLQ."""
    from healthmesh.normalizer.sources import (
        apple_health,
        cronometer,
        csv,
        fitbit,
        myfitnesspal,
        oura,
        strava,
        whoop,
        withings,
    )

    return {
        "csv": csv.map_rows,
        "apple_health": apple_health.map_payload,
        "cronometer": cronometer.map_payload,
        "myfitnesspal": myfitnesspal.map_payload,
        "oura": oura.map_payload,
        "whoop": whoop.map_payload,
        "fitbit": fitbit.map_payload,
        "withings": withings.map_payload,
        "strava": strava.map_payload,
    }


RECORD_ID_SOURCES = frozenset(("oura", "whoop", "fitbit", "withings", "strava"))
"""Sources whose `source_record_id` names exactly one record per metric (a provider's own id):
a newer sample of the same record with other times replaces the older one. Elsewhere the id
only tells devices apart (Apple Health's source name) or is empty."""
RECORD_ID_METRICS: dict[str, frozenset[str]] = {"apple_health": frozenset(("sleep_session",))}
"""Metrics of other sources whose mapper gives each sample a record id of its own: Apple Health's
night (device and bedtime, `sources.apple_health`), whose end grows from an export taken during
the night to the next export."""


def names_one_record(sample: Sample) -> bool:
    """Whether the sample's `source_record_id` names one record of its metric, so that a newer
    sample of it with other times replaces the stored one (RECORD_ID_SOURCES, RECORD_ID_METRICS)."""
    source = sample.source
    return bool(sample.source_record_id) and (
        source in RECORD_ID_SOURCES or sample.metric in RECORD_ID_METRICS.get(source, ())
    )


def tombstone(envelope: RawPayloadReceived, resources: Collection[str]) -> MappingResult:
    """A record the source deleted (resource `deleted`, published by the connectors from a
    verified deletion webhook): `{"resource", "id", "event"}` withdraws that record's samples."""
    payload = envelope.payload
    source = envelope.source
    if not isinstance(payload, dict):
        raise UnmappablePayload(f"{source} deleted: payload is not an object")
    resource, record_id = payload.get("resource"), payload.get("id")
    if not isinstance(resource, str) or resource not in resources:
        raise UnmappablePayload(f"{source} deleted: no records of resource {resource!r}")
    if not isinstance(record_id, str) or not record_id.strip():
        raise UnmappablePayload(f"{source} deleted {resource}: no record id")
    return MappingResult(records_seen=1, withdrawals=[Withdrawal(record_id)])


def map_payload(envelope: RawPayloadReceived, registry: dict[str, Mapper]) -> MappingResult:
    mapper = registry.get(envelope.source)
    if mapper is None:
        raise UnmappablePayload(f"no mapper for source {envelope.source!r}")
    return mapper(envelope)


def map_records(
    records: Iterable[tuple[str, Any]], map_one: Callable[[Any], list[Sample]]
) -> MappingResult:
    """Map each (where, record) on its own: a `BadRecord` rejects that record with its reason
    and the others go through."""
    result = MappingResult()
    for where, record in records:
        result.records_seen += 1
        try:
            result.samples.extend(map_one(record))
        except BadRecord as exc:
            result.rejections.append(Rejection(where, str(exc)))
    return result


# --- building samples ----------------------------------------------------------------------------

_IDENTITY_MARKERS: dict[str, tuple[str, ...]] = {
    "hrv_rmssd": ("rmssd",),
    "hrv_sdnn": ("sdnn",),
    "resting_heart_rate": ("resting",),
    "body_fat": ("body_fat", "bodyfat", "fat_ratio", "fatratio", "fat_percent"),
    "fat": ("fat", "lipid"),  # dietary fat in grams; a fat MASS (kg) is neither metric
    "lean_mass": ("lean", "fat_free", "fatfree"),
    "muscle_mass": ("muscle",),
    "bone_mass": ("bone",),
    "bp_systolic": ("systolic",),
    "bp_diastolic": ("diastolic",),
    "skin_temperature": ("skin",),
}
"""Words in a source's field name that say which metric it is. A field naming another metric's
marker (an SDNN field filed as RMSSD, a fat-mass field filed as body fat %) is refused."""


@cache
def check_identity(metric: str, source_field: str) -> None:
    """Refuse a source field whose name marks it as a different metric than `metric` (cached:
    a mapper asks the same question for every point of a series)."""
    name = source_field.lower().replace("-", "_").replace(" ", "_")
    own = _IDENTITY_MARKERS.get(metric, ())
    if any(marker in name for marker in own):
        return
    for other, markers in _IDENTITY_MARKERS.items():
        if other != metric and any(marker in name for marker in markers):
            raise IdentityMismatch(f"source field {source_field!r} is {other}, not {metric}")


MAX_UTC_OFFSET_S = 18 * 3600
"""No real UTC offset is larger (ISO 8601 allows ±18 h); the database refuses larger ones, and
the rollups read a local day's samples within that distance of the day."""


def measurement(
    envelope: RawPayloadReceived,
    *,
    metric: str,
    value: float,
    unit: str,
    start: datetime,
    end: datetime,
    utc_offset_s: int,
    source_field: str,
    source_record_id: str = "",
    device: str | None = None,
    details: dict[str, JsonValue] | None = None,
    quality: float = 1.0,
    quality_reason: str | None = None,
) -> Sample:
    """One unified sample of `envelope`'s user and source, in the metric's canonical unit.

    `source_field` names where the value came from (e.g. `score.hrv_rmssd_milli`); `quality`
    below 1 with a reason marks a doubtful value, and an implausible one gets 0 whatever it was.
    """
    return series(
        envelope,
        metric=metric,
        unit=unit,
        source_field=source_field,
        device=device,
        quality=quality,
        quality_reason=quality_reason,
    ).point(value, start, end, utc_offset_s, source_record_id, details)


def series(
    envelope: RawPayloadReceived,
    *,
    metric: str,
    unit: str,
    source_field: str,
    device: str | None = None,
    quality: float = 1.0,
    quality_reason: str | None = None,
) -> "Series":
    """The samples of one metric from one source field, unit and device: `measurement` for many
    points, with the metric's identity, unit conversion and bounds worked out once."""
    check_identity(metric, source_field)
    definition = metric_def(metric)
    return Series(
        envelope=envelope,
        user_id=fast_uuid(envelope.user_id),
        raw_event_id=fast_uuid(envelope.id),
        metric=metric,
        unit=definition.unit,
        source_field=source_field,
        device=device,
        quality=quality,
        quality_reason=quality_reason,
        to_canonical=converter(metric, unit),
        plausible=definition.plausible,
        ids=sample_ids(envelope.user_id, metric, envelope.source),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Series:
    """What the points of a series share (a heart-rate day is 1,440 of them); made by `series`."""

    envelope: RawPayloadReceived
    user_id: UUID
    raw_event_id: UUID
    """The envelope's, as asyncpg's C UUIDs: every sample carries them, and written that way
    they cost nothing per row (see `ids.fast_uuid`)."""
    metric: str
    unit: str
    source_field: str
    device: str | None
    quality: float
    quality_reason: str | None
    to_canonical: Callable[[float], float]
    plausible: tuple[float, float]
    ids: SampleIds

    def point(
        self,
        value: float,
        start: datetime,
        end: datetime,
        utc_offset_s: int,
        source_record_id: str = "",
        details: dict[str, JsonValue] | None = None,
    ) -> Sample:
        """One sample of the series; a bad time rejects the record (`BadRecord`)."""
        if start.tzinfo is None or end.tzinfo is None:
            raise BadRecord(f"{self.source_field}: time without a UTC offset")
        if end < start:
            raise BadRecord(f"{self.source_field}: ends before it starts ({start} > {end})")
        if not -MAX_UTC_OFFSET_S <= utc_offset_s <= MAX_UTC_OFFSET_S:
            raise BadRecord(f"{self.source_field}: UTC offset {utc_offset_s} s is beyond ±18 h")
        canonical = self.to_canonical(value)
        quality, quality_reason = self.quality, self.quality_reason
        low, high = self.plausible
        if not low <= canonical <= high:
            plausible, implausible_reason = assess(self.metric, canonical)
            if plausible < quality:
                quality, quality_reason = plausible, implausible_reason
        utc_start = start if start.tzinfo is UTC else start.astimezone(UTC)
        utc_end = end if end.tzinfo is UTC else end.astimezone(UTC)
        source = self.envelope.source
        return Sample(
            id=self.ids(utc_start, utc_end, source_record_id),
            user_id=self.user_id,
            metric=self.metric,
            value=canonical,
            unit=self.unit,
            source=source,
            device=self.device,
            start=utc_start,
            end=utc_end,
            utc_offset_s=utc_offset_s,
            source_record_id=source_record_id,
            quality=quality,
            quality_reason=quality_reason,
            raw_event_id=self.raw_event_id,
            details=details,
        )


def local_day(day: date, utc_offset_s: int) -> tuple[datetime, datetime]:
    """The local calendar day `day` at a fixed offset, as an aware [start, end)."""
    zone = timezone(timedelta(seconds=utc_offset_s))
    start = datetime.combine(day, time(), zone)
    return start, start + timedelta(days=1)


def offset_seconds(moment: datetime) -> int:
    """The UTC offset an aware moment was written with, in seconds."""
    offset = moment.utcoffset()
    if offset is None:
        raise BadRecord(f"time {moment.isoformat()} has no UTC offset")
    return int(offset.total_seconds())
