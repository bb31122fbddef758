"""The Cronometer mapper: uploaded CSV export rows in, daily nutrition totals, workouts and
biometrics out.

Golden expectations are written by hand from the reference samples (../shared/reference/samples/
cronometer) and cronometer.md. Envelopes are built as the importer's contract says: one payload
per file (each sample file holds whole days), rows numbered by their line in the file (header =
line 1), values keyed by header.
"""

import csv
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import MappingResult, Sample, UnmappablePayload
from healthmesh.normalizer.sources.cronometer import map_payload

USER = uuid.UUID("00000000-0000-0000-0000-0000000000c7")
FETCHED = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SAMPLES = (
    Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "cronometer"
)
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the reference samples are not at {SAMPLES}"
)
NO_ZONE = "local offset unknown"


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The importer's rows: line number and {header: cell text} (BOM dropped, CRLF handled)."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        return [{"row": reader.line_num, "values": dict(values)} for values in reader]


def envelope(
    resource: str, rows: list[dict[str, Any]], timezone: str | None, file: str = "export.csv"
) -> RawPayloadReceived:
    return RawPayloadReceived(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"cronometer/{resource}/{file}/{timezone}"),
        user_id=USER,
        source="cronometer",
        resource=resource,
        fetched_at=FETCHED,
        payload={"file": file, "timezone": timezone, "rows": rows},
    )


def sample_file(resource: str, name: str, timezone: str | None) -> MappingResult:
    return map_payload(envelope(resource, read_rows(SAMPLES / name), timezone, name))


def rows(*values: dict[str, str], first_line: int = 2) -> list[dict[str, Any]]:
    return [{"row": first_line + i, "values": v} for i, v in enumerate(values)]


def seen(sample: Sample) -> dict[str, Any]:
    """What a golden test compares (the id and raw_event_id are checked elsewhere)."""
    return {
        "metric": sample.metric,
        "value": sample.value,
        "unit": sample.unit,
        "start": sample.start,
        "end": sample.end,
        "utc_offset_s": sample.utc_offset_s,
        "source_record_id": sample.source_record_id,
        "device": sample.device,
        "details": sample.details,
        "quality": sample.quality,
        "quality_reason": sample.quality_reason,
    }


def day_sample(
    metric: str,
    value: float,
    unit: str,
    start: datetime,
    end: datetime,
    offset: int,
    details: dict[str, Any] | None = None,
    quality: float = 1.0,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "metric": metric,
        "value": value,
        "unit": unit,
        "start": start,
        "end": end,
        "utc_offset_s": offset,
        "source_record_id": "",
        "device": None,
        "details": details,
        "quality": quality,
        "quality_reason": reason,
    }


def by_metric(result: MappingResult) -> dict[str, dict[str, Any]]:
    return {s.metric: seen(s) for s in result.samples}


# --- golden: the sample files -------------------------------------------------------------------


@needs_samples
def test_golden_dailysummary_one_sample_per_nutrition_metric_for_the_local_day() -> None:
    result = sample_file("dailysummary", "dailysummary.csv", "Europe/Berlin")
    # 2025-03-06 in Berlin is CET (+01:00): 2025-03-05T23:00Z .. 2025-03-06T23:00Z.
    start, end = datetime(2025, 3, 5, 23, tzinfo=UTC), datetime(2025, 3, 6, 23, tzinfo=UTC)
    assert result.records_seen == 1 and result.rejections == []
    assert by_metric(result) == {
        "energy_intake": day_sample("energy_intake", 1477.23, "kcal", start, end, 3600),
        "protein": day_sample("protein", 102.79, "g", start, end, 3600),
        # "Carbs (g)" is the total; "Net Carbs (g)" 140.08 is not mapped
        "carbohydrate": day_sample("carbohydrate", 145.47, "g", start, end, 3600),
        "fat": day_sample("fat", 54.19, "g", start, end, 3600),
        "fiber": day_sample("fiber", 5.32, "g", start, end, 3600),
        # "Sugars (g)" is the total; "Added Sugars (g)" 0.00 is part of it
        "sugar": day_sample("sugar", 52.26, "g", start, end, 3600),
        "sodium": day_sample("sodium", 2928.50, "mg", start, end, 3600),
        # "Water (g)" 2557.80 g of water = 2557.80 mL (1 g/mL)
        "water": day_sample("water", 2557.80, "mL", start, end, 3600),
    }


@needs_samples
def test_golden_dailysummary_variant_b_finds_columns_by_name_without_a_zone() -> None:
    # Variant b has another column set (Oxalate, amino acids, no Alcohol/Caffeine...), so every
    # column sits at another position; no zone given: UTC days, flagged.
    result = sample_file("dailysummary", "dailysummary.variant_b.csv", None)
    assert result.records_seen == 2 and result.rejections == []
    assert len(result.samples) == 16  # 8 metrics x 2 days
    start, end = datetime(2023, 9, 17, tzinfo=UTC), datetime(2023, 9, 18, tzinfo=UTC)
    first = {s.metric: seen(s) for s in result.samples if s.start == start}
    assert first == {
        m: day_sample(m, v, u, start, end, 0, quality=0.9, reason=NO_ZONE)
        for m, v, u in [
            ("energy_intake", 1813.11, "kcal"),
            ("protein", 95.96, "g"),
            ("carbohydrate", 146.42, "g"),
            ("fat", 32.70, "g"),
            ("fiber", 43.95, "g"),
            ("sugar", 53.33, "g"),
            ("sodium", 1446.15, "mg"),
            ("water", 1968.52, "mL"),  # 1968.52 g of water
        ]
    }
    second = {s.metric: s.value for s in result.samples if s.start == end}
    assert second == {
        "energy_intake": 1633.47,
        "protein": 108.66,
        "carbohydrate": 194.32,
        "fat": 59.98,
        "fiber": 51.11,
        "sugar": 74.84,
        "sodium": 2306.95,
        "water": 2702.09,
    }


@needs_samples
def test_golden_servings_are_summed_into_the_days_totals_with_the_group_as_meal() -> None:
    result = sample_file("servings", "servings.csv", "America/New_York")
    # 2023-09-17 in New York is EDT (-04:00): 2023-09-17T04:00Z .. 2023-09-18T04:00Z.
    start, end = datetime(2023, 9, 17, 4, tzinfo=UTC), datetime(2023, 9, 18, 4, tzinfo=UTC)
    assert result.records_seen == 2 and result.rejections == []

    def total(metric: str, value: float, unit: str) -> dict[str, Any]:
        return day_sample(metric, value, unit, start, end, -14400, {"meals": {"Staples": value}})

    assert by_metric(result) == {
        "energy_intake": total("energy_intake", 15.55, "kcal"),  # 5.77 + 9.78
        "protein": total("protein", 0.54, "g"),  # 0.24 + 0.30
        "carbohydrate": total("carbohydrate", 3.57, "g"),  # 1.47 + 2.10
        "fat": total("fat", 0.17, "g"),  # 0.07 + 0.10
        "fiber": total("fiber", 1.29, "g"),  # 0.58 + 0.71
        "sugar": total("sugar", 0.11, "g"),  # 0.01 + 0.10
        "sodium": total("sodium", 1.31, "mg"),  # 0.46 + 0.85
        "water": total("water", 0.69, "mL"),  # 0.29 + 0.40 g of water
    }


# --- daily totals: servings and summary are the same samples ------------------------------------


def test_servings_and_daily_summary_of_a_day_are_the_same_samples() -> None:
    summary = map_payload(
        envelope(
            "dailysummary",
            rows({"Date": "2024-05-01", "Energy (kcal)": "1500.00", "Protein (g)": "80.00"}),
            "Europe/Paris",
        )
    )
    servings = map_payload(
        envelope(
            "servings",
            rows(
                {"Day": "2024-05-01", "Time": "8:00 AM", "Group": "Breakfast",
                 "Food Name": "Oats", "Energy (kcal)": "400.50", "Protein (g)": "20.00"},
                {"Day": "2024-05-01", "Time": "", "Group": "Dinner",
                 "Food Name": "Rice, cooked", "Energy (kcal)": "700.25", "Protein (g)": "35.00"},
                {"Day": "2024-05-01", "Time": "9:00 PM", "Group": "Dinner",
                 "Food Name": "Tofu", "Energy (kcal)": "399.25", "Protein (g)": "25.00"},
            ),
            "Europe/Paris",
        )
    )  # fmt: skip
    assert [(s.id, s.metric, s.value) for s in servings.samples] == [
        (s.id, s.metric, s.value) for s in summary.samples
    ]
    energy = next(s for s in servings.samples if s.metric == "energy_intake")
    # 400.50 + 700.25 + 399.25 = 1500.00 kcal; Dinner 700.25 + 399.25 = 1099.50
    assert energy.details == {"meals": {"Breakfast": 400.50, "Dinner": 1099.50}}


def test_energy_in_kilojoules_is_converted_and_a_dst_day_is_23_hours() -> None:
    result = map_payload(
        envelope(
            "dailysummary", rows({"Date": "2024-03-31", "Energy (kJ)": "4184"}), "Europe/Berlin"
        )
    )
    [energy] = result.samples
    assert energy.value == pytest.approx(1000.0)  # 4184 kJ / 4.184 kJ/kcal
    assert energy.start == datetime(2024, 3, 30, 23, tzinfo=UTC)  # midnight CET (+01:00)
    assert energy.end == datetime(2024, 3, 31, 22, tzinfo=UTC)  # next midnight is CEST (+02:00)
    assert energy.utc_offset_s == 3600


def test_a_spreadsheet_resaved_date_is_read() -> None:
    # A copy re-saved by a spreadsheet writes 1/27/2026 and FALSE [cronometer.md]
    result = map_payload(
        envelope(
            "dailysummary",
            rows({"Date": "1/27/2026", "Sodium (mg)": "1200", "Completed": "FALSE"}),
            "UTC",
        )
    )
    [sodium] = result.samples
    assert (sodium.start, sodium.value, sodium.quality) == (
        datetime(2026, 1, 27, tzinfo=UTC),
        1200,
        1,
    )


# --- exercises and biometrics (headers from importer fixtures: no real sample) -----------------


def test_exercises_become_workouts_with_energy_in_details_only() -> None:
    result = map_payload(
        envelope(
            "exercises",
            rows(
                {"Day": "2024-06-10", "Time": "7:15 AM", "Exercise": "Running (jogging)",
                 "Minutes": "30", "Calories Burned": "312.5"},
                {"Day": "2024-06-10", "Time": "", "Group": "", "Exercise": "Yoga",
                 "Minutes": "45.5", "Calories Burned": ""},
                {"Day": "2024-06-10", "Time": "", "Group": "", "Exercise": "Yoga",
                 "Minutes": "20", "Calories Burned": "60"},
                {"Day": "2024-06-10", "Time": "", "Group": "", "Exercise": "Daily activity",
                 "Minutes": "", "Calories Burned": "250"},
            ),
            "America/Los_Angeles",
        )
    )  # fmt: skip
    assert result.records_seen == 4 and result.rejections == []
    assert [s.metric for s in result.samples] == ["workout"] * 3  # no active_energy samples
    run, yoga, yoga2 = (seen(s) for s in result.samples)
    # 07:15 PDT (-07:00) = 14:15Z, for 30 min = 1800 s
    assert run == {
        "metric": "workout",
        "value": 1800.0,
        "unit": "s",
        "start": datetime(2024, 6, 10, 14, 15, tzinfo=UTC),
        "end": datetime(2024, 6, 10, 14, 45, tzinfo=UTC),
        "utc_offset_s": -25200,
        "source_record_id": "running_jogging#1",
        "device": None,
        "details": {"sport": "running_jogging", "energy_kcal": 312.5},
        "quality": 1.0,
        "quality_reason": None,
    }
    # no time: placed at local midnight (07:00Z), 45.5 min = 2730 s, flagged
    assert yoga == {
        "metric": "workout",
        "value": 2730.0,
        "unit": "s",
        "start": datetime(2024, 6, 10, 7, tzinfo=UTC),
        "end": datetime(2024, 6, 10, 7, 45, 30, tzinfo=UTC),
        "utc_offset_s": -25200,
        "source_record_id": "yoga#1",
        "device": None,
        "details": {"sport": "yoga"},
        "quality": 0.9,
        "quality_reason": "start time unknown: placed at the start of its day",
    }
    # the second yoga of the day keeps its own record id: 20 min = 1200 s
    assert (yoga2["source_record_id"], yoga2["value"]) == ("yoga#2", 1200.0)
    assert yoga2["details"] == {"sport": "yoga", "energy_kcal": 60.0}


def test_biometrics_map_each_reading_with_its_unit_and_origin() -> None:
    result = map_payload(
        envelope(
            "biometrics",
            rows(
                {"Day": "2024-01-15", "Time": "7:02 AM", "Metric": "Weight (Apple Health)",
                 "Unit": "lbs", "Amount": "180.0"},
                {"Day": "2024-01-15", "Time": "7:02 AM", "Group": "", "Metric": "Body Fat",
                 "Unit": "%", "Amount": "21.5"},
                {"Day": "2024-01-15", "Time": "", "Group": "", "Metric": "Blood Pressure",
                 "Unit": "mmHg", "Amount": "121/79"},
                {"Day": "2024-01-15", "Time": "9:30 PM", "Group": "", "Metric": "Heart Rate (Oura)",
                 "Unit": "bpm", "Amount": "58"},
                {"Day": "2024-01-15", "Time": "", "Group": "", "Metric": "Waist",
                 "Unit": "in", "Amount": "32"},
            ),
            "Europe/London",
        )
    )  # fmt: skip
    assert result.records_seen == 5 and result.rejections == []
    got = [seen(s) for s in result.samples]
    at_7_02 = datetime(2024, 1, 15, 7, 2, tzinfo=UTC)  # GMT in January: offset 0
    at_21_30 = datetime(2024, 1, 15, 21, 30, tzinfo=UTC)
    day = (datetime(2024, 1, 15, tzinfo=UTC), datetime(2024, 1, 16, tzinfo=UTC))
    assert [(g["metric"], g["start"], g["end"], g["device"]) for g in got] == [
        ("body_mass", at_7_02, at_7_02, "Apple Health"),
        ("body_fat", at_7_02, at_7_02, None),
        ("bp_systolic", *day, None),  # no time: the reading covers its day
        ("bp_diastolic", *day, None),
        ("heart_rate", at_21_30, at_21_30, "Oura"),
    ]  # fmt: skip
    assert got[0]["value"] == pytest.approx(81.6466266)  # 180 lb * 0.45359237 kg/lb
    assert [g["value"] for g in got[1:]] == [21.5, 121.0, 79.0, 58.0]
    assert [g["unit"] for g in got] == ["kg", "%", "mmHg", "mmHg", "bpm"]
    assert all(g["quality"] == 1.0 and g["source_record_id"] == "" for g in got)


def test_a_biometric_with_a_unit_that_does_not_fit_is_rejected_alone() -> None:
    result = map_payload(
        envelope(
            "biometrics",
            rows(
                {"Day": "2024-01-15", "Metric": "Weight", "Unit": "cm", "Amount": "80"},
                {"Day": "2024-01-15", "Metric": "Weight", "Unit": "kg", "Amount": "80"},
                {"Day": "2024-01-15", "Metric": "Blood Pressure", "Unit": "mmHg", "Amount": "120"},
            ),
            "UTC",
        )
    )
    assert [r.where for r in result.rejections] == ["row 2", "row 4"]
    assert "'Unit'" in result.rejections[0].reason
    assert "'Amount'" in result.rejections[1].reason
    [weight] = result.samples
    assert weight.value == 80


# --- rejections, unknown resources, empty rows, idempotence ------------------------------------


def test_a_malformed_row_is_rejected_alone_and_its_day_flagged() -> None:
    result = map_payload(
        envelope(
            "servings",
            rows(
                {"Day": "2024-05-01", "Group": "Lunch", "Energy (kcal)": "300"},
                {"Day": "2024-05-01", "Group": "Lunch", "Energy (kcal)": "12,5"},
                {"Day": "yesterday", "Group": "Lunch", "Energy (kcal)": "100"},
                {"Day": "2024-05-02", "Group": "Lunch", "Energy (kcal)": "500"},
                "not a row",  # type: ignore[arg-type]
            ),
            "UTC",
        )
    )
    assert result.records_seen == 5
    assert [(r.where, r.reason) for r in result.rejections] == [
        ("row 3", "column 'Energy (kcal)': '12,5' is not a number"),
        ("row 4", "column 'Day': 'yesterday' is not a date"),
        ("row 6", "malformed row: no 'values'"),
    ]
    first, second = result.samples
    # the 1st of May lost a row: its total (300 kcal) may be short
    assert (first.value, first.quality) == (300, 0.5)
    assert first.quality_reason == "a row of this day was rejected: the total may be short"
    assert (second.value, second.quality, second.quality_reason) == (500, 1.0, None)


def test_a_row_the_importer_could_not_read_is_rejected_with_its_reason() -> None:
    # The importer sends a cut or garbled line as {"row", "error"} (diary_csv in connectors).
    cut = {"row": 3, "error": "3 cells where the header has 5: the line is cut short or garbled"}
    payload_rows = [*rows({"Date": "2024-05-01", "Energy (kcal)": "2000"}), cut]
    for resource in ("dailysummary", "exercises", "biometrics"):
        result = map_payload(envelope(resource, payload_rows, "UTC"))
        assert result.records_seen == 2
        assert [(r.where, r.reason) for r in result.rejections] == [("row 3", cut["error"])]


def test_an_unknown_resource_or_zone_is_unmappable() -> None:
    with pytest.raises(UnmappablePayload, match="notes"):
        map_payload(envelope("notes", [], "UTC"))
    with pytest.raises(UnmappablePayload, match="Mars/Olympus"):
        map_payload(envelope("dailysummary", [], "Mars/Olympus"))
    with pytest.raises(UnmappablePayload, match="rows"):
        map_payload(envelope("dailysummary", [], "UTC").model_copy(update={"payload": {}}))


def test_a_day_with_nothing_tracked_yields_nothing_and_no_rejection() -> None:
    # empty cells are "not tracked", not zero [cronometer.md]; unknown columns are ignored
    result = map_payload(
        envelope(
            "dailysummary",
            rows({"Date": "2024-05-01", "Energy (kcal)": "", "Vitamin D (IU)": "400",
                  "Completed": "false"}),
            "UTC",
        )
    )  # fmt: skip
    assert (result.records_seen, result.samples, result.rejections) == (1, [], [])


@needs_samples
def test_mapping_twice_gives_identical_samples() -> None:
    first = sample_file("servings", "servings.csv", "America/New_York")
    second = sample_file("servings", "servings.csv", "America/New_York")
    assert first.samples == second.samples
    assert len({s.id for s in first.samples}) == len(first.samples)
