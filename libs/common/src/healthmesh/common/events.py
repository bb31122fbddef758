"""Versioned event and command contracts carried on Kafka.

Additive changes only within a version; a breaking change is a new model with a new `schema`.
Every field has a description: it becomes the AsyncAPI text other teams read.
"""

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from healthmesh.common.units import UnitError, check_unit
from healthmesh.common.vocabulary import METRICS, Category
from healthmesh.common.zones import iana_zone

ImportKind = Literal["apple_health", "csv", "cronometer", "myfitnesspal"]
WeightUnit = Literal["kg", "lb"]
"""Units of a diary export's unlabelled weight column (MyFitnessPal's `Weight`)."""


class _Contract(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class CsvColumn(_Contract):
    metric: str = Field(description="Unified metric id the column's values are, e.g. `steps`.")
    unit: str = Field(description="Unit of the column's values; converted to the canonical unit.")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}; GET /v1/metrics lists them")
        return metric


class CsvMapping(_Contract):
    """How the columns of a generic CSV file become unified samples."""

    timestamp: str = Field(description="Name of the column holding the date or date-time.")
    format: str | None = Field(
        None, description="strptime format of the timestamp column; ISO 8601 is tried first."
    )
    timezone: str | None = Field(
        None, description="IANA zone for times without an offset; offsets in the data win."
    )
    columns: dict[str, CsvColumn] = Field(
        description="Value columns by header name, each with its metric and unit.", min_length=1
    )

    @field_validator("columns")
    @classmethod
    def _units_fit_metrics(cls, columns: dict[str, CsvColumn]) -> dict[str, CsvColumn]:
        for name, column in columns.items():
            try:
                check_unit(column.metric, column.unit)
            except UnitError as exc:
                raise ValueError(f"column {name!r}: {exc}") from None
        return columns

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str | None) -> str | None:
        """Refused at upload, not later on every row."""
        if zone and iana_zone(zone) is None:
            raise ValueError(f"unknown time zone {zone!r} (an IANA name, e.g. Europe/Berlin)")
        return zone


class ImportRequested(_Contract):
    """Command to the file importers: parse an uploaded file and publish its raw batches."""

    schema_: Literal["import_request.v1"] = Field(
        "import_request.v1", alias="schema", description="Contract version."
    )
    import_id: UUID = Field(description="Id of the import, as returned by POST /v1/imports.")
    user_id: UUID = Field(description="Owner of the file and of every sample it yields.")
    kind: ImportKind = Field(description="File format.")
    path: str = Field(description="Path of the file relative to the upload store.")
    mapping: CsvMapping | None = Field(None, description="Column mapping, for kind=csv.")
    timezone: str | None = Field(
        None,
        description="IANA zone of the file's local dates and times (kind=cronometer, "
        "myfitnesspal: their exports carry no offset): the one given at upload, else the "
        "user's profile zone. Absent: UTC.",
    )
    weight_unit: WeightUnit | None = Field(
        None,
        description="Unit of the `Weight` column of MyFitnessPal's Measurement-Summary, which "
        "names none (it follows the account setting), as given at upload (kind=myfitnesspal). "
        "Absent: inferred by the importer from the export's Exercise-Summary (a `Pounds` or "
        "`Kilograms` column), else kg assumed and the samples flagged.",
    )
    requested_at: datetime = Field(description="When the upload finished.")


class TimeWindow(_Contract):
    start: datetime | None = Field(None, description="Start of the window the payload covers.")
    end: datetime | None = Field(None, description="End of the window the payload covers.")


class RawPayloadReceived(_Contract):
    """A provider payload or file batch exactly as received, in an envelope (`raw.<source>`)."""

    schema_: Literal["raw.v1"] = Field("raw.v1", alias="schema", description="Contract version.")
    id: UUID = Field(description="Deterministic: UUIDv5 over source, user, resource, natural key.")
    user_id: UUID = Field(description="Whose data this is; also the message key.")
    source: str = Field(description="Provider or file source id, e.g. `oura`, `csv`.")
    resource: str = Field(
        description="Which resource of the source, e.g. `daily_activity`, `rows`."
    )
    fetched_at: datetime = Field(description="When the payload was fetched or parsed.")
    window: TimeWindow = Field(default_factory=TimeWindow, description="Time range covered.")
    import_id: UUID | None = Field(None, description="The file import this batch belongs to.")
    payload: JsonValue = Field(description="The payload as received; for files, one batch.")


_DETAILS = (
    "What a session carries beyond its value: for `sleep_session` the stage seconds (`deep_s`, "
    "`light_s`, `rem_s`, `awake_s`), `in_bed_s` and `efficiency` (%); for `workout` the `sport` "
    "and any of `energy_kcal`, `distance_m`, `avg_heart_rate`, `max_heart_rate`; for an Apple "
    "Health `hrv_sdnn` its beat-to-beat list, `beats_bpm` and `beats_s` (each beat's seconds "
    "after the start). Absent for plain measurements."
)


class MetricSample(_Contract):
    """One unified measurement, with its provenance."""

    id: UUID = Field(description="Deterministic: UUIDv5 over the natural key.")
    user_id: UUID = Field(description="Whose sample this is.")
    metric: str = Field(description="Unified metric id (GET /v1/metrics).")
    value: float = Field(description="Value in the metric's canonical unit.")
    unit: str = Field(description="Canonical unit of the metric.")
    source: str = Field(description="Source id the value came from.")
    device: str | None = Field(None, description="Device or app that recorded it, if known.")
    start: datetime = Field(description="Start, UTC.")
    end: datetime = Field(description="End, UTC (equal to start for an instant).")
    utc_offset_s: int = Field(description="Local UTC offset in seconds when it was recorded.")
    source_record_id: str = Field("", description="The source's own id of the record, if any.")
    quality: float = Field(1.0, description="0..1; low when implausible or doubtful.")
    quality_reason: str | None = Field(None, description="Why the quality is low.")
    raw_event_id: UUID = Field(description="Id of the raw event it was mapped from (lineage).")
    details: dict[str, JsonValue] | None = Field(None, description=_DETAILS)


ChangeKind = Literal["created", "updated", "deleted"]


class MetricChange(_Contract):
    """A change of one sample, with the sample as stored after it (see `MetricChanges.flat`)."""

    event: ChangeKind = Field(description="What happened to the sample.")
    revision: int = Field(description="1 on creation, +1 on every change of the sample.")
    sample: MetricSample = Field(description="The sample as stored after the change.")


class SampleChange(_Contract):
    """One sample's change within a series; the series gives its metric, unit, source, device."""

    event: ChangeKind = Field(description="What happened to the sample.")
    revision: int = Field(description="1 on creation, +1 on every change of the sample.")
    id: UUID = Field(description="The sample's id (deterministic: UUIDv5 over the natural key).")
    value: float = Field(description="Value in the metric's canonical unit.")
    start: datetime = Field(description="Start, UTC.")
    end: datetime = Field(description="End, UTC (equal to start for an instant).")
    utc_offset_s: int = Field(description="Local UTC offset in seconds when it was recorded.")
    source_record_id: str = Field("", description="The source's own id of the record, if any.")
    quality: float = Field(1.0, description="0..1; low when implausible or doubtful.")
    quality_reason: str | None = Field(None, description="Why the quality is low.")
    details: dict[str, JsonValue] | None = Field(None, description=_DETAILS)


class SeriesChanges(_Contract):
    """Changes of samples that share their metric, unit, source and device."""

    metric: str = Field(description="Unified metric id (GET /v1/metrics).")
    unit: str = Field(description="Canonical unit of the metric.")
    source: str = Field(description="Source id the values came from.")
    device: str | None = Field(None, description="Device or app that recorded them, if known.")
    changes: list[SampleChange] = Field(description="The changes, in no particular order.")


class MetricChanges(_Contract):
    """A user's unified samples created, updated or deleted in one commit, from one raw event
    (`metrics.unified`, keyed by user id). A consumer upserts each change by its sample id,
    keeping the highest revision; a delivery may repeat (at least once), never lose a change.

    v2 carries what samples share once (user and raw event per message; metric, unit, source and
    device per series) and leaves out fields at their default: a sample takes about a third of
    v1's bytes, which matters at a heart-rate day of 1,440 samples. `flat()` gives v1's shape.
    """

    schema_: Literal["metric_batch.v2"] = Field(
        "metric_batch.v2", alias="schema", description="Contract version."
    )
    user_id: UUID = Field(description="Whose samples; also the message key.")
    raw_event_id: UUID = Field(
        description="The raw event the samples were mapped from (lineage); for deletions, the "
        "event that last wrote them."
    )
    occurred_at: datetime = Field(description="When the changes were committed.")
    series: list[SeriesChanges] = Field(
        description="The changes by series, at most 500 changes per message (a big import "
        "spans many messages)."
    )

    def flat(self) -> list[MetricChange]:
        """Each change with its whole sample, as `metric_batch.v1` carried it."""
        return [
            MetricChange(
                event=c.event,
                revision=c.revision,
                sample=MetricSample(
                    id=c.id,
                    user_id=self.user_id,
                    metric=s.metric,
                    value=c.value,
                    unit=s.unit,
                    source=s.source,
                    device=s.device,
                    start=c.start,
                    end=c.end,
                    utc_offset_s=c.utc_offset_s,
                    source_record_id=c.source_record_id,
                    quality=c.quality,
                    quality_reason=c.quality_reason,
                    raw_event_id=self.raw_event_id,
                    details=c.details,
                ),
            )
            for s in self.series
            for c in s.changes
        ]


OAuthProvider = Literal["oura", "whoop", "fitbit", "withings", "strava"]


class ConnectionChanged(_Contract):
    """A user's connection to a provider changed (`connections.changed`, keyed by user id)."""

    schema_: Literal["connection.v1"] = Field(
        "connection.v1", alias="schema", description="Contract version."
    )
    event: Literal[
        "connection.connected", "connection.disconnected", "connection.reauth_required"
    ] = Field(
        description="connected: tokens stored; disconnected: revoked and deleted; "
        "reauth_required: the provider refused the grant, the user must reconnect."
    )
    user_id: UUID = Field(description="Whose connection.")
    provider: OAuthProvider = Field(description="Which provider.")
    provider_user_id: str | None = Field(None, description="The user's id at the provider.")
    scopes: list[str] = Field(default_factory=list, description="Scopes granted.")
    delete_data: bool = Field(
        False, description="On disconnected: the user asked for this source's data to be deleted."
    )
    occurred_at: datetime = Field(description="When it happened.")


class PreferencesChanged(_Contract):
    """A user's source priority for a category, or override for a metric, was set or removed
    (`preferences.changed`, keyed by user id). Whoever keeps answers resolved from the user's
    preferences (caches, ETags, precomputed views) drops them. A delivery may repeat."""

    schema_: Literal["preferences.v1"] = Field(
        "preferences.v1", alias="schema", description="Contract version."
    )
    event: Literal[
        "preferences.priority_set",
        "preferences.priority_deleted",
        "preferences.override_set",
        "preferences.override_deleted",
    ] = Field(
        description="priority_set / priority_deleted: the user's order for `category` was "
        "stored / removed (the documented default applies again); override_set / "
        "override_deleted: the user's order for `metric` was stored / removed (its category's "
        "order applies again)."
    )
    user_id: UUID = Field(description="Whose preferences; also the message key.")
    category: Category | None = Field(
        None, description="The category, on priority events; null on override events."
    )
    metric: str | None = Field(
        None, description="The metric id, on override events; null on priority events."
    )
    sources: list[str] | None = Field(
        None,
        description="The stored source order, most preferred first, on *_set events; null on "
        "*_deleted events.",
    )
    fallback: bool | None = Field(
        None,
        description="On priority_set: whether lower sources answer when a higher one has no "
        "data. Null otherwise.",
    )
    occurred_at: datetime = Field(description="When the change was committed.")


class DeadLettered(_Contract):
    """A message that could not be processed, with why (`dlq.<topic>`, keyed like the original)."""

    schema_: Literal["dlq.v1"] = Field("dlq.v1", alias="schema", description="Contract version.")
    reason: str = Field(description="Why the message was refused, for a human.")
    topic: str = Field(description="Topic the message was read from.")
    partition: int = Field(description="Partition it was read from.")
    offset: int = Field(description="Its offset there: replay it from here once fixed.")
    original: str = Field(description="The original message value (UTF-8, invalid bytes replaced).")


def dump(event: _Contract) -> dict[str, Any]:
    """JSON-ready dict with the wire names (`schema`, not `schema_`)."""
    return event.model_dump(mode="json", by_alias=True)
