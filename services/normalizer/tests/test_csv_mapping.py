"""The CSV mapper, a pure function: rows in, samples and per-row rejections out."""

import uuid
from datetime import UTC, datetime

import pytest

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import UnmappablePayload
from healthmesh.normalizer.sources.csv import map_rows

USER = uuid.UUID("00000000-0000-0000-0000-000000000001")


def envelope(rows: list[dict[str, object]], **mapping: object) -> RawPayloadReceived:
    full_mapping: dict[str, object] = {
        "timestamp": "Date",
        "columns": {"Steps": {"metric": "steps", "unit": "count"}},
    }
    full_mapping.update(mapping)
    return RawPayloadReceived(
        id=uuid.uuid4(),
        user_id=USER,
        source="csv",
        resource="rows",
        fetched_at=datetime.now(UTC),
        payload={"mapping": full_mapping, "rows": rows},
    )


def test_a_date_row_covers_the_local_day_of_the_mapping_timezone() -> None:
    result = map_rows(
        envelope(
            [{"row": 2, "values": {"Date": "2024-03-12", "Steps": "8123"}}],
            timezone="Europe/Berlin",
        )
    )
    [sample] = result.samples
    assert sample.value == 8123
    assert sample.start == datetime(2024, 3, 11, 23, 0, tzinfo=UTC)
    assert sample.end == datetime(2024, 3, 12, 23, 0, tzinfo=UTC)
    assert sample.utc_offset_s == 3600
    assert sample.source == "csv" and sample.unit == "count"


def test_a_dst_day_is_23_hours_long_and_still_one_sample() -> None:
    result = map_rows(
        envelope(
            [{"row": 2, "values": {"Date": "2024-03-31", "Steps": "10"}}], timezone="Europe/Berlin"
        )
    )
    [sample] = result.samples
    assert (sample.end - sample.start).total_seconds() == 23 * 3600


def test_units_are_converted_to_the_canonical_unit() -> None:
    result = map_rows(
        envelope(
            [{"row": 2, "values": {"Date": "2024-03-12", "Weight": "180"}}],
            columns={"Weight": {"metric": "body_mass", "unit": "lb"}},
        )
    )
    assert result.samples[0].value == pytest.approx(81.6466266)
    assert result.samples[0].unit == "kg"


def test_bad_rows_are_rejected_one_by_one_and_the_rest_imported() -> None:
    result = map_rows(
        envelope(
            [
                {"row": 2, "values": {"Date": "2024-03-12", "Steps": "100"}},
                {"row": 3, "values": {"Date": "2024-03-13", "Steps": "lots"}},
                {"row": 4, "values": {"Date": "yesterday", "Steps": "5"}},
                {"row": 5, "values": {"Date": "2024-03-15", "Steps": "nan"}},
                {"row": 6, "values": {"Date": "2024-03-16", "Steps": "300"}},
            ]
        )
    )
    assert [s.value for s in result.samples] == [100, 300]
    assert result.records_seen == 5 and result.records_imported == 2
    assert [r.where for r in result.rejections] == ["row 3", "row 4", "row 5"]
    assert "'lots' is not a number" in result.rejections[0].reason


def test_offsets_in_the_data_win_over_the_mapping_timezone() -> None:
    result = map_rows(
        envelope(
            [{"row": 2, "values": {"Date": "2024-03-12T07:15:00-07:00", "Steps": "1"}}],
            timezone="Europe/Berlin",
        )
    )
    [sample] = result.samples
    assert sample.start == datetime(2024, 3, 12, 14, 15, tzinfo=UTC)
    assert sample.utc_offset_s == -7 * 3600


def test_a_custom_format_parses_dates() -> None:
    result = map_rows(
        envelope([{"row": 2, "values": {"Date": "12/03/2024", "Steps": "7"}}], format="%d/%m/%Y")
    )
    assert result.samples[0].start == datetime(2024, 3, 12, tzinfo=UTC)


def test_implausible_values_are_kept_but_flagged() -> None:
    result = map_rows(
        envelope(
            [{"row": 2, "values": {"Date": "2024-03-12", "HR": "400"}}],
            columns={"HR": {"metric": "heart_rate", "unit": "bpm"}},
        )
    )
    [sample] = result.samples
    assert sample.quality == 0.0
    assert sample.quality_reason is not None and "implausible" in sample.quality_reason


def test_the_same_row_maps_to_the_same_sample_id() -> None:
    rows = [{"row": 2, "values": {"Date": "2024-03-12", "Steps": "1"}}]
    assert map_rows(envelope(rows)).samples[0].id == map_rows(envelope(rows)).samples[0].id


def test_a_payload_without_rows_is_unmappable() -> None:
    bad = envelope([])
    bad = bad.model_copy(update={"payload": {"rows": "nope"}})
    with pytest.raises(UnmappablePayload):
        map_rows(bad)
