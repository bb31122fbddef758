"""The Apple Health mapper: export.xml items (as the importer's reader yields them) to samples.

Expectations are written by hand from the sample file and shared/reference/providers/
apple_health.md, with the arithmetic beside them.
"""

import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from healthmesh.common.apple_export import ArchiveLimits
from healthmesh.common.events import RawPayloadReceived
from healthmesh.connectors.importers.apple_health import read_batches
from healthmesh.connectors.importers.apple_health_xml import read_export
from healthmesh.normalizer.mapping import BadRecord, Sample, UnmappablePayload
from healthmesh.normalizer.rollups import rollup_keys
from healthmesh.normalizer.sources.apple_health import _TIME_FORMAT, _time, map_payload, sport_name

USER = uuid.UUID("00000000-0000-0000-0000-00000000a991")
SAMPLE = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "reference"
    / "samples"
    / "apple_health"
    / "export.v3_2016.tdda_sample.xml"
)
Q = "HKQuantityTypeIdentifier"
SLEEP = "HKCategoryTypeIdentifierSleepAnalysis"
STAGE = "HKCategoryValueSleepAnalysis"


def envelope(records: list[dict[str, Any]], resource: str = "export") -> RawPayloadReceived:
    return RawPayloadReceived(
        id=uuid.UUID("00000000-0000-0000-0000-0000000000e1"),
        user_id=USER,
        source="apple_health",
        resource=resource,
        fetched_at=datetime(2024, 1, 2, tzinfo=UTC),
        payload={"records": records},
    )


def record(
    type_: str,
    value: str,
    unit: str | None,
    start: str,
    end: str | None = None,
    source: str = "Jane\u2019s Apple Watch",
    line: int = 9,
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "kind": "record",
        "line": line,
        "type": type_,
        "sourceName": source,
        "startDate": start,
        "endDate": end or start,
        "value": value,
        "metadata": {},
        **extra,
    }
    if unit is not None:
        item["unit"] = unit
    return item


def row(s: Sample) -> tuple[Any, ...]:
    return (
        s.metric,
        pytest.approx(s.value),
        s.unit,
        s.start,
        s.end,
        s.utc_offset_s,
        s.source_record_id,
        s.device,
        s.details,
        s.quality,
    )


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


# --- golden: the real 2016 sample, through the reader --------------------------------------------


def test_golden_the_real_2016_sample() -> None:
    with SAMPLE.open("rb") as stream:
        items = list(read_export(stream))
    result = map_payload(envelope(items))
    # 15 records + 2 activity summaries + 1 workout seen; summaries give nothing, none rejected
    assert (result.records_seen, result.rejections) == (18, [])
    samples = result.samples
    assert [s.metric for s in samples] == ["steps"] * 10 + ["distance"] * 5 + ["workout"]
    assert row(samples[0]) == (
        "steps",
        329,  # line 83, value="329" unit="count"
        "count",
        utc(2014, 9, 13, 9, 27, 54),  # 10:27:54 +0100
        utc(2014, 9, 13, 9, 27, 59),
        3600,  # +0100
        "Health",
        "Health",
        None,
        1.0,
    )
    assert row(samples[10]) == (
        "distance",
        2.88,  # line 93: 0.00288 km * 1000 m/km
        "m",
        utc(2014, 9, 20, 9, 41, 28),  # 10:41:28 +0100
        utc(2014, 9, 20, 9, 41, 30),
        3600,
        "Health",
        "Health",
        None,
        1.0,
    )
    assert row(samples[15]) == (
        "workout",
        1904.2081510424616,  # line 100: 31.73680251737436 min * 60 s/min
        "s",
        utc(2016, 4, 2, 9, 40, 38),  # 10:40:38 +0100
        utc(2016, 4, 2, 10, 12, 22),  # 11:12:22 +0100
        3600,
        "NJR Apple\u00a0Watch",  # sourceName, with the file's no-break space
        "NJR Apple\u00a0Watch",
        # HKWorkoutActivityTypeOther; totalEnergyBurned 139.3170000000021 kcal; totalDistance 0 km
        {"sport": "other", "energy_kcal": pytest.approx(139.317), "distance_m": 0.0},
        1.0,
    )
    # 329+283+426+61+10+200+390+320+216+282 = 2517 steps
    assert sum(s.value for s in samples if s.metric == "steps") == 2517
    # (0.00288+0.00284+0.00142+0.00639+0.0059) km = 0.01943 km = 19.43 m
    assert sum(s.value for s in samples if s.metric == "distance") == pytest.approx(19.43)
    assert {s.source for s in samples} == {"apple_health"}


# --- records --------------------------------------------------------------------------------------


def test_ios16_sleep_stages_are_sleep_durations_and_in_bed_or_awake_are_not() -> None:
    def sleep(value: str, start: str, end: str, line: int) -> dict[str, Any]:
        return record(SLEEP, f"{STAGE}{value}", None, start, end, line=line)

    result = map_payload(
        envelope(
            [
                sleep("InBed", "2022-10-01 00:20:00 +0200", "2022-10-01 07:00:00 +0200", 10),
                sleep("AsleepCore", "2022-10-01 00:30:00 +0200", "2022-10-01 01:10:00 +0200", 11),
                sleep("AsleepDeep", "2022-10-01 01:10:00 +0200", "2022-10-01 01:35:00 +0200", 12),
                sleep("Awake", "2022-10-01 01:35:00 +0200", "2022-10-01 01:40:00 +0200", 13),
                sleep("AsleepREM", "2022-10-01 01:40:00 +0200", "2022-10-01 02:02:30 +0200", 14),
                sleep("Asleep", "2021-03-01 23:00:00 -0500", "2021-03-02 06:00:00 -0500", 15),
            ]
        )
    )
    assert (result.records_seen, result.rejections) == (6, [])
    watch = "Jane\u2019s Apple Watch"
    # (the two nights' sleep_sessions are tested below)
    assert [row(s) for s in result.samples if s.metric == "sleep_duration"] == [
        # 00:30 -> 01:10 = 40 min = 2400 s; +0200 = 7200 s
        (
            "sleep_duration",
            2400,
            "s",
            utc(2022, 9, 30, 22, 30),
            utc(2022, 9, 30, 23, 10),
            7200,
            watch,
            watch,
            {"stage": "core"},
            1.0,
        ),
        # 01:10 -> 01:35 = 25 min = 1500 s
        (
            "sleep_duration",
            1500,
            "s",
            utc(2022, 9, 30, 23, 10),
            utc(2022, 9, 30, 23, 35),
            7200,
            watch,
            watch,
            {"stage": "deep"},
            1.0,
        ),
        # 01:40 -> 02:02:30 = 22.5 min = 1350 s
        (
            "sleep_duration",
            1350,
            "s",
            utc(2022, 9, 30, 23, 40),
            utc(2022, 10, 1, 0, 2, 30),
            7200,
            watch,
            watch,
            {"stage": "rem"},
            1.0,
        ),
        # before iOS 16: one Asleep record, 23:00 -> 06:00 = 7 h = 25200 s; -0500 = -18000 s
        (
            "sleep_duration",
            25200,
            "s",
            utc(2021, 3, 2, 4),
            utc(2021, 3, 2, 11),
            -18000,
            watch,
            watch,
            {"stage": "unspecified"},
            1.0,
        ),
    ]


def test_hrv_is_sdnn_with_its_beats() -> None:
    hrv = record(
        f"{Q}HeartRateVariabilitySDNN",
        "48.2713",
        "ms",
        "2023-05-01 22:10:00 -0700",
        "2023-05-01 22:11:00 -0700",
        beats=[{"bpm": "62", "time": "10:10:01.52 PM"}, {"bpm": "64", "time": "10:10:02.47 PM"}],
    )
    [sample] = map_payload(envelope([hrv])).samples
    watch = "Jane\u2019s Apple Watch"
    assert row(sample) == (
        "hrv_sdnn",  # never hrv_rmssd: Apple's HRV is SDNN
        48.2713,
        "ms",
        utc(2023, 5, 2, 5, 10),  # 22:10 -0700
        utc(2023, 5, 2, 5, 11),
        -25200,  # -0700 = -7 * 3600
        watch,
        watch,
        # 10:10:01.52 PM = 22:10:01.52, 1.52 s after the 22:10:00 start; 22:10:02.47 -> 2.47 s
        {"beats_bpm": [62.0, 64.0], "beats_s": [1.52, 2.47]},
        1.0,
    )


def test_hrv_beat_times_in_other_locales_across_midnight_or_unread() -> None:
    def hrv(start: str, end: str, *times: str) -> dict[str, Any]:
        beats = [{"bpm": str(60 + i), "time": t} for i, t in enumerate(times)]
        return record(f"{Q}HeartRateVariabilitySDNN", "40", "ms", start, end, beats=beats)

    items = [
        # a decimal comma, 24 h: 12:21:00,30 is 0.30 s after 12:21:00
        hrv("2023-05-01 12:21:00 +0100", "2023-05-01 12:22:00 +0100", "12:21:00,30", "12:21:01,25"),
        # started 23:59:30: 23:59:59.5 is 29.5 s later, 12:00:00.40 AM (00:00:00.40, the next
        # day) is 30.4 s later (not 23 h 59 min earlier)
        hrv(
            "2023-05-01 23:59:30 -0700",
            "2023-05-02 00:00:30 -0700",
            "11:59:59.5 PM",
            "12:00:00.40 AM",
        ),
        # a time not read: the bpm list stays, without times
        hrv("2023-05-01 08:00:00 +0900", "2023-05-01 08:01:00 +0900", "午前8:00:01"),
    ]
    details = [s.details for s in map_payload(envelope(items)).samples]
    assert details == [
        {"beats_bpm": [60.0, 61.0], "beats_s": [0.3, 1.25]},
        {"beats_bpm": [60.0, 61.0], "beats_s": [29.5, 30.4]},
        {"beats_bpm": [60.0]},
    ]


def test_every_other_mapped_quantity_type() -> None:
    at = "2024-02-03 08:00:00 -0500"
    items = [
        record(f"{Q}StepCount", "321", "count", at),
        record(f"{Q}DistanceWalkingRunning", "0.25", "km", at),
        record(f"{Q}DistanceSwimming", "50", "yd", at),
        record(f"{Q}DistanceWheelchair", "120", "m", at),
        record(f"{Q}DistanceDownhillSnowSports", "1.5", "km", at),
        record(f"{Q}DistanceCrossCountrySkiing", "2", "km", at),
        record(f"{Q}DistancePaddleSports", "800", "m", at),
        record(f"{Q}DistanceRowing", "1", "mi", at),
        record(f"{Q}DistanceSkatingSports", "300", "m", at),
        record(f"{Q}BasalEnergyBurned", "1.5", "kcal", at),
        record(f"{Q}HeartRate", "72", "count/min", at),
        record(f"{Q}LeanBodyMass", "55.5", "kg", at, source="Withings"),
        record(f"{Q}AppleSleepingWristTemperature", "35.2", "degC", at),
        record(f"{Q}DietaryProtein", "20", "g", at, source="MyFitnessPal"),
        record(f"{Q}DietaryCarbohydrates", "45", "g", at, source="MyFitnessPal"),
        record(f"{Q}DietaryFiber", "6", "g", at, source="MyFitnessPal"),
        record(f"{Q}DietarySugar", "12", "g", at, source="MyFitnessPal"),
    ]
    result = map_payload(envelope(items))
    assert result.rejections == []
    expected = [
        ("steps", 321.0, "count"),
        ("distance", 250.0, "m"),  # 0.25 km * 1000
        ("distance", 45.72, "m"),  # 50 yd * 0.9144 m/yd
        ("distance", 120.0, "m"),
        ("distance", 1500.0, "m"),
        ("distance", 2000.0, "m"),
        ("distance", 800.0, "m"),
        ("distance", 1609.344, "m"),  # 1 mi
        ("distance", 300.0, "m"),
        ("basal_energy", 1.5, "kcal"),
        ("heart_rate", 72.0, "bpm"),
        ("lean_mass", 55.5, "kg"),
        ("skin_temperature", 35.2, "Cel"),
        ("protein", 20.0, "g"),
        ("carbohydrate", 45.0, "g"),
        ("fiber", 6.0, "g"),
        ("sugar", 12.0, "g"),
    ]
    assert [(s.metric, s.unit) for s in result.samples] == [(m, u) for m, _, u in expected]
    assert [s.value for s in result.samples] == pytest.approx([v for _, v, _ in expected])
    assert {s.utc_offset_s for s in result.samples} == {-18000}  # -0500 = -5 * 3600


def test_quantity_units_as_apple_writes_them() -> None:
    at = "2024-02-03 08:00:00 +0100"
    items = [
        record(f"{Q}BodyFatPercentage", "0.25", "%", at, source="Withings"),
        record(f"{Q}OxygenSaturation", "0.97", "%", at),
        record(f"{Q}BodyMassIndex", "23.4", "count", at, source="Withings"),
        record(f"{Q}VO2Max", "41.2", "mL/min·kg", at),
        record(f"{Q}BodyMass", "154.3", "lb", at, source="Withings"),
        record(f"{Q}BodyTemperature", "98.6", "degF", at, source="Thermo"),
        record(f"{Q}RestingHeartRate", "52", "count/min", at),
        record(f"{Q}RespiratoryRate", "14.5", "count/min", at),
        record(f"{Q}DietaryEnergyConsumed", "250", "Cal", at, source="MyFitnessPal"),
        record(f"{Q}DietaryFatTotal", "12.5", "g", at, source="MyFitnessPal"),
        record(f"{Q}DietarySodium", "0.4", "g", at, source="MyFitnessPal"),
        record(f"{Q}DietaryWater", "500", "mL", at, source="WaterMinder"),
        record(f"{Q}ActiveEnergyBurned", "100", "kJ", at),
        record(f"{Q}DistanceCycling", "1.2", "mi", at),
        record(f"{Q}AppleExerciseTime", "3", "min", at),
        record(f"{Q}FlightsClimbed", "2", "count", at, source="iPhone"),
    ]
    result = map_payload(envelope(items))
    assert result.rejections == []
    expected = [
        ("body_fat", 25.0, "%"),  # 0.25 is a fraction: 0.25 * 100 %
        ("spo2", 97.0, "%"),  # 0.97 * 100 %
        ("bmi", 23.4, "kg/m2"),  # HealthKit's BMI "count" is kg/m²
        ("vo2max", 41.2, "mL/kg/min"),
        ("body_mass", 69.98930269, "kg"),  # 154.3 lb * 0.45359237 kg/lb
        ("body_temperature", 37.0, "Cel"),  # (98.6 - 32) * 5/9
        ("resting_heart_rate", 52.0, "bpm"),
        ("respiratory_rate", 14.5, "/min"),
        ("energy_intake", 250.0, "kcal"),  # food "Cal" are kilocalories
        ("fat", 12.5, "g"),
        ("sodium", 400.0, "mg"),  # 0.4 g * 1000
        ("water", 500.0, "mL"),
        ("active_energy", 23.90057361, "kcal"),  # 100 kJ / 4.184 kJ/kcal
        ("distance", 1931.2128, "m"),  # 1.2 mi * 1609.344 m/mi
        ("active_minutes", 3.0, "min"),
        ("floors", 2.0, "count"),
    ]
    assert [(s.metric, s.unit) for s in result.samples] == [(m, u) for m, _, u in expected]
    assert [s.value for s in result.samples] == pytest.approx([v for _, v, _ in expected])
    assert {s.utc_offset_s for s in result.samples} == {3600}


def test_iphone_and_watch_over_the_same_interval_stay_two_samples() -> None:
    start, end = "2024-01-05 09:00:00 -0800", "2024-01-05 09:05:00 -0800"
    samples = map_payload(
        envelope(
            [
                record(f"{Q}StepCount", "420", "count", start, end, source="Jane\u2019s iPhone"),
                record(f"{Q}StepCount", "415", "count", start, end),
            ]
        )
    ).samples
    assert [(s.device, s.source_record_id, s.value) for s in samples] == [
        ("Jane\u2019s iPhone", "Jane\u2019s iPhone", 420),
        ("Jane\u2019s Apple Watch", "Jane\u2019s Apple Watch", 415),
    ]
    assert samples[0].id != samples[1].id


def test_unknown_types_and_activity_summaries_are_seen_and_yield_nothing() -> None:
    at = "2024-01-05 09:00:00 +0000"
    items = [
        record(f"{Q}Height", "1.7", "m", at),
        record("HKCategoryTypeIdentifierMindfulSession", "HKCategoryValueNotApplicable", None, at),
        {
            "kind": "activity_summary",
            "line": 20,
            "dateComponents": "2024-01-05",
            "activeEnergyBurned": "512.3",
            "activeEnergyBurnedUnit": "kcal",
        },
    ]
    result = map_payload(envelope(items))
    assert (result.records_seen, result.samples, result.rejections) == (3, [], [])


# --- correlations and workouts --------------------------------------------------------------------


def test_a_blood_pressure_correlation_and_its_top_level_copies_are_the_same_samples() -> None:
    at = "2023-06-01 08:00:00 +0100"
    systolic = record(f"{Q}BloodPressureSystolic", "121", "mmHg", at, source="Omron", line=11)
    diastolic = record(f"{Q}BloodPressureDiastolic", "79", "mmHg", at, source="Omron", line=12)
    correlation = {
        "kind": "correlation",
        "line": 9,
        "type": "HKCorrelationTypeIdentifierBloodPressure",
        "sourceName": "Omron",
        "startDate": at,
        "endDate": at,
        "metadata": {},
        "records": [systolic, diastolic],
    }
    top_level = [{**systolic, "line": 14}, {**diastolic, "line": 15}]
    result = map_payload(envelope([correlation, *top_level]))
    assert (result.records_seen, result.rejections) == (3, [])
    from_correlation, from_top_level = result.samples[:2], result.samples[2:]
    assert [row(s) for s in from_correlation] == [
        (
            "bp_systolic",
            121,
            "mmHg",
            utc(2023, 6, 1, 7),
            utc(2023, 6, 1, 7),
            3600,
            "Omron",
            "Omron",
            None,
            1.0,
        ),
        (
            "bp_diastolic",
            79,
            "mmHg",
            utc(2023, 6, 1, 7),
            utc(2023, 6, 1, 7),
            3600,
            "Omron",
            "Omron",
            None,
            1.0,
        ),
    ]
    assert from_correlation == from_top_level  # same ids: the upsert stores each once
    assert len({s.id for s in result.samples}) == 2


def test_a_modern_workout_takes_its_totals_from_its_statistics() -> None:
    start, end = "2023-05-02 07:00:00 -0700", "2023-05-02 07:30:30 -0700"

    def stat(type_: str, unit: str, **values: str) -> dict[str, Any]:
        return {"type": f"{Q}{type_}", "startDate": start, "endDate": end, "unit": unit, **values}

    workout = {
        "kind": "workout",
        "line": 9,
        "workoutActivityType": "HKWorkoutActivityTypeRunning",
        "duration": "30.5",
        "durationUnit": "min",
        "sourceName": "Watch",
        "startDate": start,
        "endDate": end,
        "metadata": {"HKIndoorWorkout": "0"},
        "statistics": [
            stat("ActiveEnergyBurned", "kcal", sum="305.2"),
            stat("DistanceWalkingRunning", "km", sum="5.1"),
            stat("HeartRate", "count/min", average="151", minimum="95", maximum="182"),
        ],
        "events": [{"type": "HKWorkoutEventTypePause", "date": "2023-05-02 07:10:00 -0700"}],
    }
    result = map_payload(envelope([workout]))
    assert [row(s) for s in result.samples] == [
        (
            "workout",
            1830,  # 30.5 min * 60 s/min
            "s",
            utc(2023, 5, 2, 14),  # 07:00 -0700
            utc(2023, 5, 2, 14, 30, 30),
            -25200,
            "Watch",
            "Watch",
            {
                "sport": "running",
                "energy_kcal": 305.2,
                "distance_m": 5100.0,  # 5.1 km * 1000
                "avg_heart_rate": 151.0,
                "max_heart_rate": 182.0,
            },
            1.0,
        )
    ]


def test_an_older_workout_takes_its_totals_from_its_attributes_in_their_units() -> None:
    workout = {
        "kind": "workout",
        "line": 30,
        "workoutActivityType": "HKWorkoutActivityTypeHighIntensityIntervalTraining",
        "duration": "0.5",
        "durationUnit": "hr",
        "totalDistance": "3.1",
        "totalDistanceUnit": "mi",
        "totalEnergyBurned": "1000",
        "totalEnergyBurnedUnit": "kJ",
        "sourceName": "Gym App",
        "startDate": "2019-01-01 18:00:00 +0530",
        "endDate": "2019-01-01 18:30:00 +0530",
        "metadata": {},
        "statistics": [],
        "events": [],
    }
    [sample] = map_payload(envelope([workout])).samples
    assert sample.value == 1800  # 0.5 h * 3600 s/h
    assert sample.utc_offset_s == 19800  # +0530 = 5.5 * 3600
    assert sample.details == {
        "sport": "high_intensity_interval_training",
        "energy_kcal": pytest.approx(239.0057361),  # 1000 kJ / 4.184
        "distance_m": pytest.approx(4988.9664),  # 3.1 mi * 1609.344
    }


def test_sport_names_are_lower_snake_case() -> None:
    assert sport_name("HKWorkoutActivityTypeTraditionalStrengthTraining") == (
        "traditional_strength_training"
    )
    assert sport_name("HKWorkoutActivityTypeTaiChi") == "tai_chi"
    assert sport_name("HKWorkoutActivityTypeOther") == "other"


# --- rejections and the payload -------------------------------------------------------------------


def test_a_malformed_record_is_rejected_alone_with_where_and_why() -> None:
    at = "2024-01-05 09:00:00 +0000"
    items = [
        record(f"{Q}StepCount", "12", "count", at, line=9),
        record(f"{Q}StepCount", "twelve", "count", at, line=10),
        record(f"{Q}HeartRate", "60", "count/min", "2024-01-05T09:00:00Z", line=11),
        record(f"{Q}StepCount", "12", "kg", at, line=12),
        record(SLEEP, f"{STAGE}Napping", None, at, line=13),
        record(f"{Q}HeartRate", "61", "count/min", at, line=14),
    ]
    result = map_payload(envelope(items))
    assert [(s.metric, s.value) for s in result.samples] == [("steps", 12), ("heart_rate", 61)]
    assert [r.where for r in result.rejections] == ["line 10", "line 11", "line 12", "line 13"]
    reasons = [r.reason for r in result.rejections]
    assert "'twelve' is not a number" in reasons[0]
    assert "startDate '2024-01-05T09:00:00Z'" in reasons[1]
    assert "does not measure steps" in reasons[2]
    assert "unknown sleep analysis value" in reasons[3]
    assert result.records_seen == 6


def test_an_unknown_resource_or_a_payload_without_records_is_unmappable() -> None:
    with pytest.raises(UnmappablePayload, match="'workouts'"):
        map_payload(envelope([], resource="workouts"))
    bad = envelope([]).model_copy(update={"payload": {"rows": []}})
    with pytest.raises(UnmappablePayload, match="records"):
        map_payload(bad)


def test_mapping_twice_gives_identical_samples() -> None:
    with SAMPLE.open("rb") as stream:
        items = list(read_export(stream))
    assert map_payload(envelope(items)).samples == map_payload(envelope(items)).samples


# --- sleep sessions: a night is one source's sleep records chained by gaps under 2 h ------------

WATCH = "Jane\u2019s Apple Watch"


def sleep(value: str, start: str, end: str, source: str = WATCH, line: int = 9) -> dict[str, Any]:
    return record(SLEEP, f"{STAGE}{value}", None, start, end, source=source, line=line)


def sessions(samples: list[Sample]) -> list[Sample]:
    return [s for s in samples if s.metric == "sleep_session"]


def test_golden_a_modern_staged_night_is_one_session_on_the_day_it_ends() -> None:
    d1, d2 = "2023-03-31", "2023-04-01"
    night = [
        sleep("AsleepCore", f"{d1} 23:10:00 -0700", f"{d2} 00:40:00 -0700"),  # 90 min = 5400 s
        sleep("AsleepDeep", f"{d2} 00:40:00 -0700", f"{d2} 01:25:00 -0700"),  # 45 min = 2700 s
        sleep("AsleepCore", f"{d2} 01:25:00 -0700", f"{d2} 02:55:00 -0700"),  # 5400 s
        sleep("AsleepREM", f"{d2} 02:55:00 -0700", f"{d2} 03:35:00 -0700"),  # 40 min = 2400 s
        sleep("Awake", f"{d2} 03:35:00 -0700", f"{d2} 03:50:00 -0700"),  # 15 min = 900 s
        sleep("AsleepCore", f"{d2} 03:50:00 -0700", f"{d2} 05:20:00 -0700"),  # 5400 s
        sleep("AsleepREM", f"{d2} 05:20:00 -0700", f"{d2} 06:05:00 -0700"),  # 2700 s
        sleep("AsleepCore", f"{d2} 06:05:00 -0700", f"{d2} 06:50:00 -0700"),  # 2700 s
        sleep("Awake", f"{d2} 06:50:00 -0700", f"{d2} 07:15:00 -0700"),  # 25 min = 1500 s
    ]
    result = map_payload(envelope(night))
    assert (result.records_seen, result.rejections) == (9, [])
    # 7 asleep records, one sleep_duration each; their sum is the session's value
    assert sum(s.value for s in result.samples if s.metric == "sleep_duration") == 26700
    [session] = sessions(result.samples)
    assert row(session) == (
        "sleep_session",
        # asleep: core + deep + rem = 18900 + 2700 + 5100 = 26700 s
        26700,
        "s",
        utc(2023, 4, 1, 6, 10),  # 23:10 -0700 on 31 March
        utc(2023, 4, 1, 14, 15),  # 07:15 -0700
        -25200,  # the offset of its end, -0700
        f"{WATCH}@2023-04-01T06:10:00+00:00",  # record id: the night, its source and bedtime
        WATCH,
        {
            "deep_s": 2700,
            "light_s": 18900,  # core: 5400 + 5400 + 5400 + 2700
            "rem_s": 5100,  # 2400 + 2700
            "awake_s": 2400,  # 900 + 1500
            "in_bed_s": 29100,  # 23:10 -> 07:15 = 8 h 05 min = 26700 asleep + 2400 awake
            "efficiency": 91.75,  # 26700 / 29100 = 0.917525... -> 91.75 %
        },
        1.0,
    )
    # sleep counts on the local day it ends: 07:15 on 1 April
    days, _hours = rollup_keys([session])
    assert [day for _u, _m, _s, day, _by_end in days] == [date(2023, 4, 1)]


def test_golden_an_old_asleep_and_in_bed_night() -> None:
    d1, d2 = "2020-10-14", "2020-10-15"
    night = [
        sleep("InBed", f"{d1} 22:45:00 -0500", f"{d2} 06:30:00 -0500"),  # 7 h 45 min = 27900 s
        sleep("Asleep", f"{d1} 23:10:00 -0500", f"{d2} 02:40:00 -0500"),  # 3 h 30 = 12600 s
        # 25 min awake without a record: the gap (under 2 h) keeps it one night
        sleep("Asleep", f"{d2} 03:05:00 -0500", f"{d2} 06:15:00 -0500"),  # 3 h 10 = 11400 s
    ]
    [session] = sessions(map_payload(envelope(night)).samples)
    assert row(session) == (
        "sleep_session",
        24000,  # 12600 + 11400 s asleep, stages unspecified
        "s",
        utc(2020, 10, 15, 3, 45),  # 22:45 -0500 on the 14th
        utc(2020, 10, 15, 11, 30),  # 06:30 -0500
        -18000,
        f"{WATCH}@2020-10-15T03:45:00+00:00",
        WATCH,
        # no stages before iOS 16 and no Awake record: in bed and efficiency only
        {"in_bed_s": 27900, "efficiency": 86.02},  # 24000 / 27900 = 0.860215... -> 86.02 %
        1.0,
    )


def test_golden_two_sources_in_one_night_are_two_sessions() -> None:
    d1, d2 = "2024-01-20", "2024-01-21"
    iphone, autosleep = "Jane\u2019s iPhone", "AutoSleep"
    # As the export lists them: by type, then by start, the sources interleaved.
    items = [
        sleep("InBed", f"{d1} 23:00:00 +0100", f"{d2} 06:45:00 +0100", iphone),
        sleep("Asleep", f"{d1} 23:20:00 +0100", f"{d2} 06:25:00 +0100", autosleep),
        sleep("AsleepCore", f"{d1} 23:30:00 +0100", f"{d2} 01:00:00 +0100"),  # 5400 s
        sleep("AsleepDeep", f"{d2} 01:00:00 +0100", f"{d2} 01:40:00 +0100"),  # 2400 s
        sleep("AsleepREM", f"{d2} 01:40:00 +0100", f"{d2} 02:10:00 +0100"),  # 1800 s
        sleep("Awake", f"{d2} 02:10:00 +0100", f"{d2} 02:20:00 +0100"),  # 600 s
        sleep("AsleepCore", f"{d2} 02:20:00 +0100", f"{d2} 06:20:00 +0100"),  # 4 h = 14400 s
        sleep("Awake", f"{d2} 06:20:00 +0100", f"{d2} 06:30:00 +0100"),  # 600 s
    ]
    result = map_payload(envelope(items))
    assert [row(s) for s in sessions(result.samples)] == [
        (
            "sleep_session",
            25500,  # 23:20 -> 06:25 = 7 h 05 min
            "s",
            utc(2024, 1, 20, 22, 20),  # 23:20 +0100
            utc(2024, 1, 21, 5, 25),
            3600,
            f"{autosleep}@2024-01-20T22:20:00+00:00",
            autosleep,
            {},  # one Asleep record: no stages, nothing says when it was in bed
            1.0,
        ),
        (
            "sleep_session",
            24000,  # 5400 + 2400 + 1800 + 14400
            "s",
            utc(2024, 1, 20, 22, 30),  # 23:30 +0100
            utc(2024, 1, 21, 5, 30),  # 06:30 +0100
            3600,
            f"{WATCH}@2024-01-20T22:30:00+00:00",
            WATCH,
            {
                "deep_s": 2400,
                "light_s": 19800,  # 5400 + 14400
                "rem_s": 1800,
                "awake_s": 1200,  # 600 + 600
                "in_bed_s": 25200,  # 23:30 -> 06:30 = 7 h = 24000 + 1200
                "efficiency": 95.24,  # 24000 / 25200 = 0.952380... -> 95.24 %
            },
            1.0,
        ),
        # the iPhone's InBed alone says nothing about sleep: no session
    ]
    assert len({s.id for s in sessions(result.samples)}) == 2


def test_nights_are_chained_by_gaps_under_two_hours() -> None:
    d1, d2 = "2021-06-05", "2021-06-06"
    items = [
        sleep("Asleep", f"{d1} 14:00:00 +0000", f"{d1} 14:40:00 +0000"),  # a nap, 2400 s
        # 14:40 -> 16:40 is a gap of exactly 2 h: not under it, another night
        sleep("Asleep", f"{d1} 16:40:00 +0000", f"{d1} 17:00:00 +0000"),  # 1200 s
        sleep("Asleep", f"{d1} 22:00:00 +0000", f"{d2} 02:00:00 +0000"),  # 5 h later; 14400 s
        # 02:00 -> 03:59 is 1 h 59 min: the same night
        sleep("Asleep", f"{d2} 03:59:00 +0000", f"{d2} 07:00:00 +0000"),  # 3 h 01 = 10860 s
    ]
    assert [(s.start, s.end, s.value) for s in sessions(map_payload(envelope(items)).samples)] == [
        (utc(2021, 6, 5, 14), utc(2021, 6, 5, 14, 40), 2400),
        (utc(2021, 6, 5, 16, 40), utc(2021, 6, 5, 17), 1200),
        (utc(2021, 6, 5, 22), utc(2021, 6, 6, 7), 25260),  # 14400 + 10860
    ]


def test_a_rejected_sleep_record_is_left_out_of_its_night_and_order_does_not_matter() -> None:
    d = "2022-02-02"
    items = [
        sleep("AsleepCore", f"{d} 01:00:00 +0000", f"{d} 02:00:00 +0000", line=20),  # 3600 s
        sleep("AsleepREM", f"{d} 03:00:00 +0000", f"{d} 02:30:00 +0000", line=21),  # backwards
        sleep("AsleepDeep", f"{d} 02:00:00 +0000", f"{d} 02:30:00 +0000", line=22),  # 1800 s
    ]
    result = map_payload(envelope(items))
    assert [r.where for r in result.rejections] == ["line 21"]
    [session] = sessions(result.samples)
    assert (session.value, session.details) == (
        5400,  # 3600 + 1800
        {"deep_s": 1800, "light_s": 3600, "rem_s": 0},
    )
    # the same records in another order (or the same export again): the same session, same id
    assert sessions(map_payload(envelope(items[::-1])).samples) == [session]


def test_golden_a_night_across_the_batch_size_stays_in_one_payload(tmp_path: Path) -> None:
    def xml(type_: str, start: str, end: str, value: str, unit: str = "") -> str:
        return (
            f'<Record type="{type_}" sourceName="Watch" {unit}'
            f'startDate="{start}" endDate="{end}" value="{value}"/>\n'
        )

    d1, d2, d3 = "2024-03-01", "2024-03-02", "2024-03-03"
    steps = [
        xml(
            f"{Q}StepCount",
            f"{d1} 0{h}:00:00 +0100",
            f"{d1} 0{h}:05:00 +0100",
            "10",
            'unit="count" ',
        )
        for h in (7, 8, 9)
    ]
    night_a = [
        ("AsleepCore", f"{d1} 23:00", f"{d2} 00:30"),  # 90 min = 5400 s
        ("AsleepDeep", f"{d2} 00:30", f"{d2} 01:15"),  # 45 min = 2700 s
        ("AsleepREM", f"{d2} 01:15", f"{d2} 01:45"),  # 30 min = 1800 s
        ("AsleepCore", f"{d2} 01:45", f"{d2} 05:15"),  # 3 h 30 = 12600 s
        ("AsleepREM", f"{d2} 05:15", f"{d2} 06:15"),  # 1 h = 3600 s
        ("Awake", f"{d2} 06:15", f"{d2} 06:30"),  # 15 min = 900 s
    ]
    night_b = [
        ("AsleepCore", f"{d2} 23:30", f"{d3} 02:00"),  # 2 h 30 = 9000 s
        ("AsleepREM", f"{d3} 02:00", f"{d3} 03:00"),  # 3600 s
        ("AsleepCore", f"{d3} 03:00", f"{d3} 06:00"),  # 3 h = 10800 s
    ]
    sleeps = [
        xml(SLEEP, f"{start}:00 +0100", f"{end}:00 +0100", f"{STAGE}{stage}")
        for stage, start, end in night_a + night_b
    ]
    path = tmp_path / "export.xml"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_GB">\n'
        + "".join(steps + sleeps)
        + "</HealthData>\n"
    )
    batches = list(read_batches(path, ArchiveLimits(), max_records=5, max_bytes=1 << 20))
    # 5 records would cut night A after its 2nd record: the batch runs on to the night's end
    # (3 steps + 6), and is cut before night B, 17 h after it (06:30 -> 23:30)
    assert [len(b.records) for b in batches] == [9, 3]
    found = [
        (s.start, s.end, s.value, s.details)
        for batch in batches
        for s in sessions(map_payload(envelope(batch.records)).samples)
    ]
    assert found == [
        (
            utc(2024, 3, 1, 22),  # 23:00 +0100
            utc(2024, 3, 2, 5, 30),  # 06:30 +0100
            26100,  # 5400 + 2700 + 1800 + 12600 + 3600
            {
                "deep_s": 2700,
                "light_s": 18000,  # 5400 + 12600
                "rem_s": 5400,  # 1800 + 3600
                "awake_s": 900,
                "in_bed_s": 27000,  # 23:00 -> 06:30 = 7 h 30 = 26100 + 900
                "efficiency": 96.67,  # 26100 / 27000 = 0.96666... -> 96.67 %
            },
        ),
        (
            utc(2024, 3, 2, 22, 30),  # 23:30 +0100
            utc(2024, 3, 3, 5),  # 06:00 +0100
            23400,  # 9000 + 3600 + 10800
            {"deep_s": 0, "light_s": 19800, "rem_s": 3600},  # no Awake: in bed unknown
        ),
    ]


@given(
    moment=st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1)),
    offset_min=st.integers(min_value=-18 * 60 + 1, max_value=18 * 60 - 1),
)
def test_export_times_read_fast_are_the_times_strptime_reads(
    moment: datetime, offset_min: int
) -> None:
    sign, minutes = ("-" if offset_min < 0 else "+"), abs(offset_min)
    text = f"{moment:%Y-%m-%d %H:%M:%S} {sign}{minutes // 60:02d}{minutes % 60:02d}"

    read = _time({"startDate": text}, "startDate")

    assert read == datetime.strptime(text, _TIME_FORMAT)
    assert read.utcoffset() == datetime.strptime(text, _TIME_FORMAT).utcoffset()


@pytest.mark.parametrize(
    "text", ["2023-04-01T07:15:00 -0700", "2023-04-01 07:15:00", "2023-04-01 07:15:00 -07:00x"]
)
def test_times_not_in_the_export_format_are_refused(text: str) -> None:
    with pytest.raises(BadRecord, match="is not 'YYYY-MM-DD HH:MM:SS ±HHMM'"):
        _time({"startDate": text}, "startDate")
