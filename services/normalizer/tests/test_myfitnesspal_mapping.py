"""The MyFitnessPal mapper: uploaded export rows in, daily nutrition totals, workouts, steps and
body measurements out.

Golden expectations are written by hand from the reference samples (../shared/reference/samples/
myfitnesspal) and myfitnesspal.md. Envelopes are built as the importer's contract says: one
payload per file (each sample holds whole days), rows numbered by their line in the file
(header = line 1), values keyed by header; the files have CRLF line endings.
"""

import csv
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import MappingResult, Sample, UnmappablePayload
from healthmesh.normalizer.sources.myfitnesspal import map_payload

USER = uuid.UUID("00000000-0000-0000-0000-0000000000f9")
FETCHED = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SAMPLES = (
    Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "myfitnesspal"
)
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the reference samples are not at {SAMPLES}"
)
RANGE = "2024-07-02-to-2026-03-02"
NUTRITION = f"Nutrition-Summary-{RANGE}.head.csv"
EXERCISE = f"Exercise-Summary-{RANGE}.head.csv"
MEASUREMENT = f"Measurement-Summary-{RANGE}.head.csv"
ASSUMED_KG = "unit not in the file (kg or lb per account setting): kg assumed"


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The importer's rows: line number and {header: cell text} (BOM dropped, CRLF handled)."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        return [{"row": reader.line_num, "values": dict(values)} for values in reader]


def envelope(
    resource: str, rows: list[dict[str, Any]], timezone: str | None, file: str = "export.csv"
) -> RawPayloadReceived:
    return RawPayloadReceived(
        id=uuid.uuid5(uuid.NAMESPACE_URL, f"myfitnesspal/{resource}/{file}/{timezone}"),
        user_id=USER,
        source="myfitnesspal",
        resource=resource,
        fetched_at=FETCHED,
        payload={"file": file, "timezone": timezone, "rows": rows},
    )


def sample_file(resource: str, name: str, timezone: str | None) -> MappingResult:
    return map_payload(envelope(resource, read_rows(SAMPLES / name), timezone, name))


def rows(*values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"row": 2 + i, "values": v} for i, v in enumerate(values)]


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


def expected(
    metric: str,
    value: float,
    unit: str,
    start: datetime,
    end: datetime,
    offset: int,
    *,
    record_id: str = "",
    device: str | None = None,
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
        "source_record_id": record_id,
        "device": device,
        "details": details,
        "quality": quality,
        "quality_reason": reason,
    }


# --- golden: the sample files -------------------------------------------------------------------


@needs_samples
def test_golden_nutrition_meals_are_summed_into_one_sample_per_metric_and_day() -> None:
    result = sample_file("nutrition", NUTRITION, "America/Chicago")
    # 2024-07-02 in Chicago is CDT (-05:00): 2024-07-02T05:00Z .. 2024-07-03T05:00Z
    start, end = datetime(2024, 7, 2, 5, tzinfo=UTC), datetime(2024, 7, 3, 5, tzinfo=UTC)
    assert result.records_seen == 4 and result.rejections == []

    def day(metric: str, unit: str, b: float, d: float, lu: float, s: float, total: float) -> Any:
        meals = {"Breakfast": b, "Dinner": d, "Lunch": lu, "Snacks": s}
        return expected(metric, total, unit, start, end, -18000, details={"meals": meals})

    assert {s.metric: seen(s) for s in result.samples} == {
        # Calories: 518.0 + 561.0 + 489.0 + 628.8 = 2196.8 kcal
        "energy_intake": day("energy_intake", "kcal", 518.0, 561.0, 489.0, 628.8, 2196.8),
        # Fat (g): 29.0 + 15.4 + 14.6 + 17.1 = 76.1 (Saturated/Poly/Mono/Trans are parts of it)
        "fat": day("fat", "g", 29.0, 15.4, 14.6, 17.1, 76.1),
        # Sodium (mg): 574.5 + 250.0 + 1.5 + 0.0 = 826.0
        "sodium": day("sodium", "mg", 574.5, 250.0, 1.5, 0.0, 826.0),
        # Carbohydrates (g): 36.7 + 46.7 + 62.0 + 40.9 = 186.3
        "carbohydrate": day("carbohydrate", "g", 36.7, 46.7, 62.0, 40.9, 186.3),
        # Fiber (g by convention): 2.1 + 4.6 + 6.7 + 2.1 = 15.5
        "fiber": day("fiber", "g", 2.1, 4.6, 6.7, 2.1, 15.5),
        # Sugar (g by convention): 14.1 + 0.3 + 20.9 + 4.7 = 40.0
        "sugar": day("sugar", "g", 14.1, 0.3, 20.9, 4.7, 40.0),
        # Protein (g): 27.6 + 59.3 + 34.8 + 24.9 = 146.6
        "protein": day("protein", "g", 27.6, 59.3, 34.8, 24.9, 146.6),
    }


@needs_samples
def test_golden_nutrition_shape_n1_without_a_zone() -> None:
    result = sample_file("nutrition", "Nutrition-Summary.shape_N1.dawndrain.csv", None)
    assert result.records_seen == 3 and result.rejections == []
    start, end = datetime(2025, 3, 6, tzinfo=UTC), datetime(2025, 3, 7, tzinfo=UTC)
    got = {s.metric: seen(s) for s in result.samples}
    assert got["energy_intake"] == expected(
        "energy_intake",
        1249.5,  # 214.5 + 285.0 + 750.0 kcal
        "kcal",
        start,
        end,
        0,
        details={"meals": {"Breakfast": 214.5, "Dinner": 285.0, "Lunch": 750.0}},
        quality=0.9,
        reason="local offset unknown",
    )
    assert {m: s["value"] for m, s in got.items()} == {
        "energy_intake": 1249.5,
        "fat": 31.9,  # 14.9 + 2.0 + 15.0
        "sodium": 2403.5,  # 193.5 + 210.0 + 2000.0
        "carbohydrate": 70.4,  # 1.4 + 14.0 + 55.0
        "fiber": 4.0,  # 0.0 + 4.0 + 0.0
        "sugar": 0.3,  # 0.3 + 0.0 + 0.0
        "protein": 51.6,  # 18.6 + 8.0 + 25.0
    }


@needs_samples
def test_golden_exercise_workouts_and_the_trackers_steps() -> None:
    result = sample_file("exercise", EXERCISE, "Europe/London")
    assert result.records_seen == 4 and result.rejections == []
    no_time = "start time unknown: placed at the start of its day"
    walk, aerobics, steps_2nd, steps_3rd = (seen(s) for s in result.samples)
    # 2024-07-03 00:00 BST (+01:00) = 2024-07-02T23:00Z; 18 min = 1080 s
    assert walk == expected(
        "workout",
        1080.0,
        "s",
        datetime(2024, 7, 2, 23, tzinfo=UTC),
        datetime(2024, 7, 2, 23, 18, tzinfo=UTC),
        3600,
        record_id="walking_3_5_mph_brisk_pace#1",
        details={"sport": "walking_3_5_mph_brisk_pace", "energy_kcal": 178.0},
        quality=0.9,
        reason=no_time,
    )
    # 2024-07-04 00:00 BST = 2024-07-03T23:00Z; 31 min = 1860 s
    assert aerobics == expected(
        "workout",
        1860.0,
        "s",
        datetime(2024, 7, 3, 23, tzinfo=UTC),
        datetime(2024, 7, 3, 23, 31, tzinfo=UTC),
        3600,
        record_id="aerobics_general#1",
        details={"sport": "aerobics_general", "energy_kcal": 178.0},
        quality=0.9,
        reason=no_time,
    )
    # "Health Connect calorie adjustment" rows: no workout, their Steps are the day's steps
    assert steps_2nd == expected(
        "steps",
        9840.0,
        "count",
        datetime(2024, 7, 1, 23, tzinfo=UTC),
        datetime(2024, 7, 2, 23, tzinfo=UTC),
        3600,
        device="Health Connect",
    )
    assert (steps_3rd["value"], steps_3rd["start"]) == (
        7680.0,
        datetime(2024, 7, 2, 23, tzinfo=UTC),
    )


@needs_samples
def test_golden_measurement_weights_cover_their_day_with_the_unit_assumed() -> None:
    result = sample_file("measurement", MEASUREMENT, "Australia/Sydney")
    assert result.records_seen == 4 and result.rejections == []
    # 2024-07-02 in Sydney is AEST (+10:00): 2024-07-01T14:00Z .. 2024-07-02T14:00Z
    first = expected(
        "body_mass",
        85.5,
        "kg",
        datetime(2024, 7, 1, 14, tzinfo=UTC),
        datetime(2024, 7, 2, 14, tzinfo=UTC),
        36000,
        quality=0.5,
        reason=ASSUMED_KG,
    )
    assert seen(result.samples[0]) == first
    assert [(s.start.date().isoformat(), s.value) for s in result.samples] == [
        ("2024-07-01", 85.5),
        ("2024-07-03", 84.5),  # 2024-07-04 local
        ("2024-07-07", 84.7),  # 2024-07-08 local
        ("2024-07-08", 84.5),  # 2024-07-09 local
    ]


# --- other shapes -----------------------------------------------------------------------------


def test_shape_with_time_and_bom_sums_each_entry_into_its_meal() -> None:
    # Shape N3: `Time` column, UTF-8 BOM left on the first header, one row per entry [MFP]
    result = map_payload(
        envelope(
            "nutrition",
            rows(
                {"\ufeffDate": "2018-05-01", "Meal": "Breakfast", "Time": "7:30 AM",
                 "Calories": "250", "Protein (g)": "10.5"},
                {"\ufeffDate": "2018-05-01", "Meal": "Breakfast", "Time": "",
                 "Calories": "120", "Protein (g)": "4.0"},
                {"\ufeffDate": "2018-05-01", "Meal": "Lunch", "Time": "",
                 "Calories": "600", "Protein (g)": ""},
            ),
            "UTC",
        )
    )  # fmt: skip
    energy, protein = result.samples
    assert (energy.metric, energy.value) == ("energy_intake", 970)  # 250 + 120 + 600
    assert energy.details == {"meals": {"Breakfast": 370.0, "Lunch": 600.0}}
    assert (protein.metric, protein.value) == ("protein", 14.5)  # 10.5 + 4.0; Lunch's is empty
    assert protein.details == {"meals": {"Breakfast": 14.5}}


def test_a_weight_header_with_its_unit_is_converted_and_not_flagged() -> None:
    result = map_payload(
        envelope(
            "measurement",
            rows({"Date": "2024-07-02", "Weight (lbs)": "200", "Body Fat": "22.5", "Neck": "15"}),
            "UTC",
        )
    )
    weight, fat = result.samples
    assert weight.value == pytest.approx(90.718474)  # 200 lb * 0.45359237 kg/lb
    assert (weight.quality, weight.quality_reason) == (1.0, None)
    assert (fat.metric, fat.value, fat.unit) == ("body_fat", 22.5, "%")


def weighed(timezone: str | None = "UTC", **unit: Any) -> RawPayloadReceived:
    """A Measurement-Summary payload of one 180 (lb or kg: the file does not say) weight, with
    the importer's `weight_unit` keys, if any."""
    measured = envelope(
        "measurement", rows({"Date": "2024-07-02", "Weight": "180", "Body Fat": "22.5"}), timezone
    )
    assert isinstance(measured.payload, dict)
    return measured.model_copy(update={"payload": {**measured.payload, **unit}})


def test_a_weight_unit_given_at_upload_converts_the_weight_without_a_flag() -> None:
    weight, fat = map_payload(weighed(weight_unit="lb", weight_unit_inferred=False)).samples
    assert (weight.metric, weight.unit) == ("body_mass", "kg")
    assert weight.value == pytest.approx(81.6466266)  # 180 lb * 0.45359237 kg/lb
    assert (weight.quality, weight.quality_reason) == (1.0, None)
    assert (fat.value, fat.quality) == (22.5, 1.0)  # its header names its unit: no change


def test_a_weight_unit_inferred_from_the_exercise_summary_is_flagged() -> None:
    [weight, _] = map_payload(weighed(weight_unit="lb", weight_unit_inferred=True)).samples
    assert weight.value == pytest.approx(81.6466266)
    assert (weight.quality, weight.quality_reason) == (
        0.9,
        "unit inferred from the export's Exercise-Summary (Pounds column)",
    )
    [kilos, _] = map_payload(weighed(weight_unit="kg", weight_unit_inferred=True)).samples
    assert (kilos.value, kilos.quality) == (180.0, 0.9)
    assert kilos.quality_reason == (
        "unit inferred from the export's Exercise-Summary (Kilograms column)"
    )


def test_an_inferred_unit_without_a_zone_keeps_both_reasons() -> None:
    [weight, _] = map_payload(weighed(None, weight_unit="lb", weight_unit_inferred=True)).samples
    assert (weight.quality, weight.quality_reason) == (
        0.9,
        "local offset unknown; unit inferred from the export's Exercise-Summary (Pounds column)",
    )


def test_without_a_weight_unit_kg_is_assumed_and_flagged_as_before() -> None:
    [weight, _] = map_payload(weighed()).samples
    assert (weight.value, weight.unit) == (180.0, "kg")
    assert (weight.quality, weight.quality_reason) == (0.5, ASSUMED_KG)


@pytest.mark.parametrize(
    "unit",
    [
        {"weight_unit": "stone"},
        {"weight_unit": "LB"},
        {"weight_unit": ["lb"]},
        {"weight_unit": "lb", "weight_unit_inferred": "yes"},
    ],
)
def test_a_weight_unit_other_than_kg_or_lb_makes_the_payload_unmappable(
    unit: dict[str, Any],
) -> None:
    with pytest.raises(UnmappablePayload, match="weight_unit"):
        map_payload(weighed(**unit))


# --- rejections, unknown resources, empty rows, idempotence ------------------------------------


def test_a_malformed_row_is_rejected_alone_naming_the_column() -> None:
    result = map_payload(
        envelope(
            "exercise",
            rows(
                {"Date": "2024-07-03", "Exercise": "Swimming", "Exercise Minutes": "half an hour"},
                {"Date": "2024-07-03", "Exercise": "Rowing", "Exercise Minutes": "20",
                 "Exercise Calories": "150"},
                {"Date": "03.07.2024", "Exercise": "Rowing", "Exercise Minutes": "20"},
            ),
            "UTC",
        )
    )  # fmt: skip
    assert [(r.where, r.reason) for r in result.rejections] == [
        ("row 2", "column 'Exercise Minutes': 'half an hour' is not a number"),
        ("row 4", "column 'Date': '03.07.2024' is not a date"),
    ]
    [rowing] = result.samples
    assert (rowing.value, rowing.details) == (1200.0, {"sport": "rowing", "energy_kcal": 150.0})


def test_an_unknown_resource_is_unmappable() -> None:
    with pytest.raises(UnmappablePayload, match="progress"):
        map_payload(envelope("progress", [], "UTC"))


def test_a_row_without_values_yields_nothing_and_no_rejection() -> None:
    # a strength exercise without minutes, an empty measurement: nothing to map, not an error
    exercise = map_payload(
        envelope(
            "exercise",
            rows({"Date": "2024-07-03", "Exercise": "Bench Press", "Type": "Strength",
                  "Exercise Minutes": "", "Sets": "3", "Reps Per Set": "8", "Kilograms": "60"}),
            "UTC",
        )
    )  # fmt: skip
    measurement = map_payload(
        envelope("measurement", rows({"Date": "2024-07-03", "Weight": ""}), "UTC")
    )
    for result in (exercise, measurement):
        assert (result.records_seen, result.samples, result.rejections) == (1, [], [])


@needs_samples
def test_mapping_twice_gives_identical_samples() -> None:
    for resource, name in [("nutrition", NUTRITION), ("exercise", EXERCISE)]:
        first = sample_file(resource, name, "Europe/London")
        second = sample_file(resource, name, "Europe/London")
        assert first.samples == second.samples
        assert len({s.id for s in first.samples}) == len(first.samples)
