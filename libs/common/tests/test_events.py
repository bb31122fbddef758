import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from healthmesh.common.events import (
    CsvMapping,
    DeadLettered,
    ImportRequested,
    MetricChange,
    MetricChanges,
    MetricSample,
    PreferencesChanged,
    RawPayloadReceived,
    SampleChange,
    SeriesChanges,
    TimeWindow,
    dump,
)
from healthmesh.common.ids import raw_event_id

USER = uuid.UUID("0b7f3a52-1c1e-4d55-9a43-7f0e0f3e2a10")
AT = datetime(2024, 3, 10, 6, 30, 15, 123_000, tzinfo=UTC)


def _mapping(columns: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": "Date", "columns": columns}


def _validation_message(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        CsvMapping.model_validate(data)
    return str(caught.value)


def test_csv_mapping_accepts_known_metrics_with_fitting_units() -> None:
    mapping = CsvMapping.model_validate(
        _mapping(
            {
                "Weight (lb)": {"metric": "body_mass", "unit": "lb"},
                "Steps": {"metric": "steps", "unit": "count"},
                "Water": {"metric": "water", "unit": "L"},
            }
        )
        | {"format": "%d/%m/%Y", "timezone": "Europe/Paris"}
    )

    assert mapping.columns["Weight (lb)"].metric == "body_mass"
    assert mapping.columns["Water"].unit == "L"
    assert (mapping.format, mapping.timezone) == ("%d/%m/%Y", "Europe/Paris")


def test_csv_mapping_rejects_an_unknown_metric_and_says_so() -> None:
    message = _validation_message(_mapping({"Steps": {"metric": "stepz", "unit": "count"}}))

    assert "unknown metric 'stepz'" in message
    assert "GET /v1/metrics" in message


def test_csv_mapping_rejects_a_unit_that_does_not_fit_the_metric() -> None:
    message = _validation_message(_mapping({"Steps": {"metric": "steps", "unit": "kg"}}))

    assert "column 'Steps'" in message
    assert "unit 'kg' does not measure steps" in message
    assert "canonical unit 'count'" in message


def test_csv_mapping_rejects_an_unknown_unit_and_names_the_column() -> None:
    message = _validation_message(
        _mapping(
            {
                "Steps": {"metric": "steps", "unit": "count"},
                "Weight": {"metric": "body_mass", "unit": "stone-ish"},
            }
        )
    )

    assert "column 'Weight'" in message
    assert "unknown unit 'stone-ish'" in message
    assert "column 'Steps'" not in message


def test_csv_mapping_needs_at_least_one_column() -> None:
    message = _validation_message(_mapping({}))

    assert "columns" in message


def test_csv_mapping_needs_a_timestamp_column() -> None:
    with pytest.raises(ValidationError, match="timestamp"):
        CsvMapping.model_validate({"columns": {"Steps": {"metric": "steps", "unit": "count"}}})


def test_csv_mapping_rejects_a_malformed_unit_as_a_validation_error() -> None:
    message = _validation_message(_mapping({"Weight": {"metric": "body_mass", "unit": "(kg"}}))

    assert "column 'Weight'" in message


def _raw() -> RawPayloadReceived:
    return RawPayloadReceived(
        id=raw_event_id("csv", USER, "rows", "abc123"),
        user_id=USER,
        source="csv",
        resource="rows",
        fetched_at=AT,
        window=TimeWindow(start=AT - timedelta(days=1), end=AT),
        import_id=uuid.UUID("9d6d9a39-54f8-4d2d-8f1f-0a4a0b5d2c11"),
        payload={"rows": [{"row": 2, "values": {"Steps": "8042", "note": None}}], "n": 1.5},
    )


def _sample() -> MetricSample:
    return MetricSample(
        id=uuid.uuid4(),
        user_id=USER,
        metric="steps",
        value=8042.0,
        unit="count",
        source="csv",
        start=AT,
        end=AT,
        utc_offset_s=3600,
        raw_event_id=uuid.uuid4(),
    )


def test_a_metric_batch_gives_back_each_whole_sample() -> None:
    """v2 carries the user, raw event, metric, unit, source and device once; `flat` puts them
    back on every sample, and fields left out take the contract's defaults."""
    sample = _sample()
    wire = {
        "schema": "metric_batch.v2",
        "user_id": str(USER),
        "raw_event_id": str(sample.raw_event_id),
        "occurred_at": AT.isoformat(),
        "series": [
            {
                "metric": "steps",
                "unit": "count",
                "source": "csv",
                "changes": [
                    {
                        "event": "created",
                        "revision": 1,
                        "id": str(sample.id),
                        "value": 8042.0,
                        "start": AT.isoformat(),
                        "end": AT.isoformat(),
                        "utc_offset_s": 3600,
                    }
                ],
            }
        ],
    }

    batch = MetricChanges.model_validate(wire)

    assert batch.flat() == [MetricChange(event="created", revision=1, sample=sample)]
    assert batch.series == [
        SeriesChanges(
            metric="steps",
            unit="count",
            source="csv",
            changes=[
                SampleChange(
                    event="created",
                    revision=1,
                    id=sample.id,
                    value=8042.0,
                    start=AT,
                    end=AT,
                    utc_offset_s=3600,
                )
            ],
        )
    ]


@pytest.mark.parametrize(
    ("event", "schema"),
    [
        (_raw(), "raw.v1"),
        (
            ImportRequested(
                import_id=uuid.uuid4(), user_id=USER, kind="csv", path="a.csv", requested_at=AT
            ),
            "import_request.v1",
        ),
        (
            MetricChanges(user_id=USER, raw_event_id=uuid.uuid4(), occurred_at=AT, series=[]),
            "metric_batch.v2",
        ),
        (
            DeadLettered(reason="bad", topic="raw.csv", partition=0, offset=7, original="{"),
            "dlq.v1",
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseModel) else str(v),
)
def test_dump_uses_the_wire_name_schema(event: Any, schema: str) -> None:
    wire = dump(event)

    assert wire["schema"] == schema
    assert "schema_" not in wire


def test_dump_is_json_ready() -> None:
    wire = dump(_raw())

    assert wire["id"] == str(_raw().id)
    assert wire["fetched_at"] == "2024-03-10T06:30:15.123000Z"
    assert orjson.loads(orjson.dumps(wire)) == wire


def test_raw_payload_received_round_trips_through_json() -> None:
    event = _raw()

    back = RawPayloadReceived.model_validate_json(orjson.dumps(dump(event)))

    assert back == event
    assert back.fetched_at.utcoffset() == timedelta(0)
    assert back.payload == {
        "rows": [{"row": 2, "values": {"Steps": "8042", "note": None}}],
        "n": 1.5,
    }


def test_raw_payload_received_keeps_the_instant_of_a_non_utc_time() -> None:
    local = AT.astimezone(timezone(timedelta(hours=-7)))
    event = _raw().model_copy(update={"fetched_at": local})

    back = RawPayloadReceived.model_validate_json(event.model_dump_json(by_alias=True))

    assert back.fetched_at == AT
    assert back.fetched_at.utcoffset() == timedelta(hours=-7)


def test_a_newer_consumer_ignores_fields_added_later_within_the_version() -> None:
    wire = dump(_raw()) | {"added_in_a_later_release": {"x": 1}}

    assert RawPayloadReceived.model_validate(wire) == _raw()


def test_another_schema_version_is_refused() -> None:
    wire = dump(_raw()) | {"schema": "raw.v2"}

    with pytest.raises(ValidationError, match=r"raw\.v1"):
        RawPayloadReceived.model_validate(wire)


def test_contracts_are_immutable() -> None:
    event = _raw()

    with pytest.raises(ValidationError, match="frozen"):
        event.source = "oura"  # type: ignore[misc]


def test_preferences_changed_round_trips_and_describes_every_field() -> None:
    change = PreferencesChanged(
        event="preferences.priority_set",
        user_id=USER,
        category="sleep",
        sources=["oura", "apple_health"],
        fallback=True,
        occurred_at=AT,
    )
    wire = orjson.loads(orjson.dumps(dump(change)))
    assert wire["schema"] == "preferences.v1"
    assert wire["metric"] is None
    assert PreferencesChanged.model_validate(wire) == change
    undescribed = [n for n, f in PreferencesChanged.model_fields.items() if not f.description]
    assert undescribed == []
    with pytest.raises(ValidationError, match="category"):
        PreferencesChanged.model_validate(wire | {"category": "mood"})
