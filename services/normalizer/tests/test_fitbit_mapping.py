"""The Fitbit (Google Health API v4) mapper: envelopes built by the connector's own code from the
reference samples and from pages shaped per the API's discovery schema, mapped and compared with
expectations written out by hand from the sample numbers and google_health.md."""

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from healthmesh.common.events import RawPayloadReceived
from healthmesh.connectors.fetching import envelopes
from healthmesh.connectors.providers.fitbit import PROVIDER
from healthmesh.normalizer.mapping import MappingResult, Sample, UnmappablePayload
from healthmesh.normalizer.sources.fitbit import map_payload

USER = uuid.UUID("00000000-0000-0000-0000-00000000f17b")
FETCHED = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
SAMPLES = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "reference"
    / "samples"
    / "google_health"
)


def published(resource_name: str, page: Any) -> list[RawPayloadReceived]:
    """The raw events the connector publishes for one answer page of `resource_name`."""
    resource = next(r for r in PROVIDER.resources if r.name == resource_name)
    call = resource.first_call(datetime(2026, 1, 1, tzinfo=UTC), FETCHED)
    items = resource.read_page(page, call).items
    return envelopes(PROVIDER, resource, USER, items, FETCHED)


def sample_file(name: str) -> Any:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    return orjson.loads((SAMPLES / name).read_bytes())


def map_all(events: list[RawPayloadReceived]) -> MappingResult:
    total = MappingResult()
    for event in events:
        result = map_payload(event)
        total.samples.extend(result.samples)
        total.records_seen += result.records_seen
        total.rejections.extend(result.rejections)
    return total


def check(sample: Sample, **expected: Any) -> None:
    """Compare the fields named; numbers (the value, numeric details) to float precision."""
    for field, want in expected.items():
        got = getattr(sample, field)
        if field == "value":
            assert got == pytest.approx(want), field
        elif field == "details" and want is not None:
            assert got is not None and set(got) == set(want), got
            for key, value in want.items():
                if isinstance(value, float):
                    assert got[key] == pytest.approx(value), key
                else:
                    assert got[key] == value, key
        else:
            assert got == want, field


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


IST = 19800  # the samples' "19800s": +05:30
CIVIL_DAY_UNKNOWN_OFFSET = {
    "utc_offset_s": 0,
    "quality": 0.9,
    "quality_reason": "local offset unknown",
}


# --- golden: the reference samples the connector publishes ---------------------------------------


def test_steps_list_sample_gives_one_sample_per_minute_interval() -> None:
    events = published("steps", sample_file("steps.list.reconstructed.json"))
    assert len(events) == 1  # both points fall on UTC 2026-08-29: one series event
    result = map_all(events)
    assert result.records_seen == 2 and not result.rejections
    first, second = result.samples
    common = {
        "metric": "steps",
        "unit": "count",
        "utc_offset_s": IST,
        "source_record_id": "",
        "device": "Inspire 3",
        "details": None,
        "quality": 1.0,
        "quality_reason": None,
    }
    # count "40" over 05:30-05:31Z (civil 11:00-11:01 = +05:30)
    check(first, value=40, start=at(2026, 8, 29, 5, 30), end=at(2026, 8, 29, 5, 31), **common)
    # count "112" over 05:29-05:30Z
    check(second, value=112, start=at(2026, 8, 29, 5, 29), end=at(2026, 8, 29, 5, 30), **common)


def test_heart_rate_fixture_is_an_instant() -> None:
    result = map_all(published("heart-rate", sample_file("heart_rate.list.fixture.json")))
    [sample] = result.samples
    check(
        sample,
        metric="heart_rate",
        value=61,  # "beatsPerMinute": "61"
        unit="bpm",
        start=at(2026, 8, 29, 5, 29, 57),
        end=at(2026, 8, 29, 5, 29, 57),
        utc_offset_s=IST,  # civil 10:59:57 - physical 05:29:57 = 5 h 30 min, as "19800s" says
        source_record_id="",
        device="Inspire 3",
        details=None,
        quality=1.0,
    )


def test_exercise_fixture_is_one_workout_with_its_summary_in_details() -> None:
    result = map_all(published("exercise", sample_file("exercise.list.fixture.json")))
    [workout] = result.samples
    check(
        workout,
        metric="workout",
        # activeDuration "3539.368s" (= 12:34:37.129 - 11:35:37.761, no pauses)
        value=3539.368,
        unit="s",
        start=datetime(2026, 10, 2, 11, 35, 37, 761000, tzinfo=UTC),
        end=datetime(2026, 10, 2, 12, 34, 37, 129000, tzinfo=UTC),
        utc_offset_s=7200,  # "startUtcOffset": "7200s"
        source_record_id="4093039881136750928",
        device="Inspire 3",
        details={
            "sport": "walking",  # exerciseType WALKING
            "energy_kcal": 98.5,  # caloriesKcal 98.5
            "distance_m": 1337.692,  # distanceMillimeters 1337692 * 10^-3 m
            "avg_heart_rate": 97.0,  # averageHeartRateBeatsPerMinute "97"
        },
        quality=1.0,
    )


def test_observed_classic_night_is_a_session_and_a_duration() -> None:
    result = map_all(published("sleep", sample_file("sleep.list.observed_redacted.json")))
    session, duration = result.samples
    interval = {
        "start": at(2026, 4, 4, 18, 39),
        "end": at(2026, 4, 5, 2, 39),
        "utc_offset_s": 7200,  # "endUtcOffset": "7200s" (a night belongs to the day it ends)
        "source_record_id": "yyy",  # name users/xxx/dataTypes/sleep/dataPoints/yyy
        "device": None,  # dataSource has only platform and recordingMethod
        "quality": 1.0,
        "unit": "s",
        "value": 480 * 60,  # minutesAsleep "480"
    }
    # CLASSIC sleep (stages ASLEEP only): no deep/light/rem; minutesAwake "0",
    # minutesInSleepPeriod "480"; stagesStatus REJECTED_SERVER is not a nap.
    check(session, metric="sleep_session", details={"awake_s": 0, "in_bed_s": 480 * 60}, **interval)
    check(duration, metric="sleep_duration", details=None, **interval)


def test_weight_sample_grams_become_kilograms() -> None:
    [sample] = map_all(published("weight", sample_file("weight.list.reconstructed.json"))).samples
    check(
        sample,
        metric="body_mass",
        value=82.4,  # weightGrams 82400 * 10^-3 kg
        unit="kg",
        start=at(2026, 8, 29, 1, 45),
        end=at(2026, 8, 29, 1, 45),
        utc_offset_s=IST,
        source_record_id="reconstructed-weight-1",
        device=None,
        details=None,
        quality=1.0,
    )


def test_body_fat_sample_is_already_a_percentage() -> None:
    events = published("body-fat", sample_file("body_fat.list.reconstructed.json"))
    [sample] = map_all(events).samples
    check(
        sample,
        metric="body_fat",
        value=18.2,  # percentage 18.2, "in range [0, 100]": not a fraction
        unit="%",
        start=at(2026, 8, 29, 1, 45),
        end=at(2026, 8, 29, 1, 45),
        utc_offset_s=IST,
        source_record_id="reconstructed-body-fat-1",
        device=None,
        quality=1.0,
    )


def test_daily_resting_heart_rate_covers_its_civil_day_at_an_unknown_offset() -> None:
    page = sample_file("daily_resting_heart_rate.list.reconstructed.json")
    [sample] = map_all(published("daily-resting-heart-rate", page)).samples
    check(
        sample,
        metric="resting_heart_rate",
        value=58,  # beatsPerMinute "58"
        unit="bpm",
        start=at(2026, 8, 29),  # date 2026-08-29, a civil day with no offset given
        end=at(2026, 8, 30),
        source_record_id="",
        device=None,
        details=None,
        **CIVIL_DAY_UNKNOWN_OFFSET,
    )


@pytest.mark.parametrize(
    "name", ["daily_rollup.steps.third_party_doc.json", "daily_rollup.rows.cli_readme.json"]
)
def test_steps_rollups_yield_nothing_the_minute_intervals_count_them(name: str) -> None:
    page = sample_file(name)
    if isinstance(page, list):  # the CLI README prints the rows without their envelope
        page = {"rollupDataPoints": page}
    events = published("steps:dailyRollUp", page)
    assert len(events) == 1
    result = map_all(events)
    assert result.samples == [] and result.records_seen == 1 and not result.rejections


# --- the published resources without a reference sample (pages built from the schema) ----------


def interval(start: str, end: str, offset: str = "7200s") -> dict[str, Any]:
    return {"startTime": start, "startUtcOffset": offset, "endTime": end, "endUtcOffset": offset}


FITBIT_SOURCE = {"platform": "FITBIT", "device": {"displayName": "Charge 6"}}


def test_distance_millimetres_become_metres() -> None:
    page = {
        "dataPoints": [
            {
                "dataSource": FITBIT_SOURCE,
                "distance": {
                    "interval": interval("2026-09-01T06:00:00Z", "2026-09-01T06:01:00Z"),
                    "millimeters": "61234",
                },
            }
        ]
    }
    [sample] = map_all(published("distance", page)).samples
    check(
        sample,
        metric="distance",
        value=61.234,  # "61234" mm * 10^-3 m
        unit="m",
        start=at(2026, 9, 1, 6),
        end=at(2026, 9, 1, 6, 1),
        utc_offset_s=7200,
        device="Charge 6",
        quality=1.0,
    )


def test_active_minutes_are_moderate_plus_vigorous_minutes() -> None:
    def point(minute: int, levels: list[tuple[str, str]]) -> dict[str, Any]:
        return {
            "dataSource": FITBIT_SOURCE,
            "activeMinutes": {
                "interval": interval(
                    f"2026-09-01T07:{minute:02d}:00Z", f"2026-09-01T07:{minute + 1:02d}:00Z"
                ),
                "activeMinutesByActivityLevel": [
                    {"activityLevel": level, "activeMinutes": n} for level, n in levels
                ],
            },
        }

    page = {
        "dataPoints": [
            point(0, [("MODERATE", "1")]),
            point(1, [("LIGHT", "1")]),  # light only: no active minute
            point(2, [("VIGOROUS", "1"), ("LIGHT", "0")]),
        ]
    }
    result = map_all(published("active-minutes", page))
    assert result.records_seen == 3 and not result.rejections
    first, second = result.samples
    check(first, metric="active_minutes", value=1, unit="min", start=at(2026, 9, 1, 7, 0))
    check(second, metric="active_minutes", value=1, unit="min", start=at(2026, 9, 1, 7, 2))


def test_active_zone_minutes_have_no_metric() -> None:
    page = {
        "dataPoints": [
            {
                "activeZoneMinutes": {
                    "interval": interval("2026-09-01T07:00:00Z", "2026-09-01T07:01:00Z"),
                    "activeZoneMinutes": "2",
                    "heartRateZone": "CARDIO",
                }
            }
        ]
    }
    result = map_all(published("active-zone-minutes", page))
    assert result.samples == [] and result.records_seen == 1 and not result.rejections


def test_daily_hrv_average_is_rmssd() -> None:
    page = {
        "dataPoints": [
            {
                "dataSource": FITBIT_SOURCE,
                "dailyHeartRateVariability": {
                    "date": {"year": 2026, "month": 9, "day": 2},
                    "averageHeartRateVariabilityMilliseconds": 41.7,
                    "deepSleepRootMeanSquareOfSuccessiveDifferencesMilliseconds": 55.1,
                    "nonRemHeartRateBeatsPerMinute": "54",
                    "entropy": 2.4,
                },
            }
        ]
    }
    [sample] = map_all(published("daily-heart-rate-variability", page)).samples
    check(
        sample,
        metric="hrv_rmssd",  # the average is RMSSD per the schema; deep-sleep RMSSD left out
        value=41.7,
        unit="ms",
        start=at(2026, 9, 2),
        end=at(2026, 9, 3),
        device="Charge 6",
        source_record_id="",
        **CIVIL_DAY_UNKNOWN_OFFSET,
    )


def test_daily_oxygen_saturation_average_is_spo2() -> None:
    page = {
        "dataPoints": [
            {
                "dailyOxygenSaturation": {
                    "date": {"year": 2026, "month": 9, "day": 2},
                    "averagePercentage": 95.8,
                    "lowerBoundPercentage": 93.7,
                    "upperBoundPercentage": 97.9,
                }
            }
        ]
    }
    [sample] = map_all(published("daily-oxygen-saturation", page)).samples
    check(
        sample,
        metric="spo2",
        value=95.8,  # averagePercentage, already %
        unit="%",
        start=at(2026, 9, 2),
        end=at(2026, 9, 3),
        **CIVIL_DAY_UNKNOWN_OFFSET,
    )


def test_total_calories_rollup_is_the_days_total_energy() -> None:
    page = {
        "rollupDataPoints": [
            {
                "civilStartTime": {"date": {"year": 2026, "month": 9, "day": 2}, "time": {}},
                "civilEndTime": {"date": {"year": 2026, "month": 9, "day": 3}, "time": {}},
                "totalCalories": {"kcalSum": 2431.5},
            },
            {  # a day without data: no value
                "civilStartTime": {"date": {"year": 2026, "month": 9, "day": 3}},
                "civilEndTime": {"date": {"year": 2026, "month": 9, "day": 4}},
            },
        ]
    }
    result = map_all(published("total-calories:dailyRollUp", page))
    assert result.records_seen == 2 and not result.rejections
    [sample] = result.samples
    check(
        sample,
        metric="total_energy",
        value=2431.5,  # kcalSum, kcal
        unit="kcal",
        start=at(2026, 9, 2),
        end=at(2026, 9, 3),
        source_record_id="",
        details=None,
        **CIVIL_DAY_UNKNOWN_OFFSET,
    )


def test_distance_rollup_yields_nothing() -> None:
    page = {
        "rollupDataPoints": [
            {
                "civilStartTime": {"date": {"year": 2026, "month": 9, "day": 2}},
                "civilEndTime": {"date": {"year": 2026, "month": 9, "day": 3}},
                "distance": {"millimetersSum": "7301000"},
            }
        ]
    }
    result = map_all(published("distance:dailyRollUp", page))
    assert result.samples == [] and result.records_seen == 1 and not result.rejections


def stages_night(**metadata: Any) -> dict[str, Any]:
    return {
        "dataPoints": [
            {
                "name": "users/me/dataTypes/sleep/dataPoints/night-1",
                "dataSource": FITBIT_SOURCE,
                "sleep": {
                    "interval": interval(
                        "2026-09-01T21:10:00Z", "2026-09-02T05:10:00Z", offset="-14400s"
                    ),
                    "type": "STAGES",
                    "metadata": metadata,
                    "summary": {
                        "minutesInSleepPeriod": "480",
                        "minutesAsleep": "440",
                        "minutesAwake": "40",
                        "stagesSummary": [
                            {"type": "LIGHT", "minutes": "200", "count": "5"},
                            {"type": "DEEP", "minutes": "100", "count": "3"},
                            {"type": "REM", "minutes": "140", "count": "4"},
                            {"type": "AWAKE", "minutes": "40", "count": "6"},
                        ],
                    },
                },
            }
        ]
    }


def test_stages_night_carries_its_stage_seconds() -> None:
    session, duration = map_all(published("sleep", stages_night(stagesStatus="SUCCEEDED"))).samples
    check(
        session,
        metric="sleep_session",
        value=440 * 60,  # minutesAsleep "440" = LIGHT 200 + DEEP 100 + REM 140
        start=at(2026, 9, 1, 21, 10),
        end=at(2026, 9, 2, 5, 10),
        utc_offset_s=-14400,
        source_record_id="night-1",
        device="Charge 6",
        details={
            "light_s": 200 * 60,
            "deep_s": 100 * 60,
            "rem_s": 140 * 60,
            "awake_s": 40 * 60,
            "in_bed_s": 480 * 60,
        },
    )
    check(duration, metric="sleep_duration", value=440 * 60, details=None)


@pytest.mark.parametrize("metadata", [{"nap": True}, {"stagesStatus": "REJECTED_NAP"}])
def test_a_nap_says_so(metadata: dict[str, Any]) -> None:
    session, _ = map_all(published("sleep", stages_night(**metadata))).samples
    assert session.details is not None and session.details["nap"] is True


def test_the_offset_is_civil_minus_physical_time_when_the_offset_is_left_out() -> None:
    page = {
        "dataPoints": [
            {
                "steps": {
                    "interval": {
                        "startTime": "2026-09-01T23:30:00Z",
                        "endTime": "2026-09-01T23:31:00Z",
                        # 2026-09-02 05:15 local = 23:30Z + 5 h 45 min (Nepal)
                        "civilStartTime": {
                            "date": {"year": 2026, "month": 9, "day": 2},
                            "time": {"hours": 5, "minutes": 15},
                        },
                    },
                    "count": "12",
                }
            },
            {
                "steps": {
                    "interval": {
                        "startTime": "2026-09-01T23:40:00Z",
                        "endTime": "2026-09-01T23:41:00Z",
                    },
                    "count": "7",
                }
            },
            {
                "steps": {
                    "interval": {
                        "startTime": "2026-09-01T23:50:00.400Z",
                        "endTime": "2026-09-01T23:51:00Z",
                        # civil time without the fraction: 05:35:00 - 23:50:00.4 = 5:44:59.6,
                        # which is +05:45 to the minute
                        "civilStartTime": {
                            "date": {"year": 2026, "month": 9, "day": 2},
                            "time": {"hours": 5, "minutes": 35},
                        },
                    },
                    "count": "3",
                }
            },
        ]
    }
    derived, unknown, rounded = map_all(published("steps", page)).samples
    check(derived, value=12, utc_offset_s=5 * 3600 + 45 * 60, quality=1.0)
    check(rounded, value=3, utc_offset_s=5 * 3600 + 45 * 60, quality=1.0)
    check(unknown, value=7, utc_offset_s=0, quality=0.9, quality_reason="local offset unknown")


def test_an_open_enum_sport_is_kept_and_an_unset_one_falls_back_to_the_name() -> None:
    def exercise(kind: str | None, name: str) -> dict[str, Any]:
        member: dict[str, Any] = {
            "interval": interval("2026-09-01T13:00:00Z", "2026-09-01T13:45:00Z"),
            "displayName": name,
            "metricsSummary": {},
        }
        if kind is not None:
            member["exerciseType"] = kind
        return {"name": f"users/me/dataTypes/exercise/dataPoints/{name}", "exercise": member}

    page = {
        "dataPoints": [
            exercise("TRAIL_RUN", "trail"),
            exercise("EXERCISE_TYPE_UNSPECIFIED", "Spinning Class"),
            exercise(None, "---"),
        ]
    }
    trail, spin, other = map_all(published("exercise", page)).samples
    # no activeDuration: the session's length, 13:00-13:45 = 2700 s; no summary values
    check(trail, value=2700, details={"sport": "trail_run"})
    check(spin, details={"sport": "spinning_class"})
    check(other, details={"sport": "other"})


# --- rejections, unscored records, unknown resources, determinism --------------------------------


def test_a_malformed_point_is_rejected_alone_and_the_others_map() -> None:
    good = sample_file("heart_rate.list.fixture.json")["dataPoints"][0]
    bad_time = {"heartRate": {"sampleTime": {"physicalTime": "yesterday"}, "beatsPerMinute": "70"}}
    bad_value = {
        "heartRate": {
            "sampleTime": {"physicalTime": "2026-08-29T05:35:00Z", "utcOffset": "19800s"},
            "beatsPerMinute": "fast",
        }
    }
    envelope = published("heart-rate", {"dataPoints": [good]})[0]
    payload = {"dataPoints": [good, bad_time, {"steps": {}}, bad_value]}
    result = map_payload(envelope.model_copy(update={"payload": payload}))
    assert [s.value for s in result.samples] == [61]
    assert result.records_seen == 4 and result.records_imported == 1
    assert [r.where for r in result.rejections] == [
        "dataPoints[1]",
        "dataPoints[2]",
        "dataPoints[3]",
    ]
    reasons = [r.reason for r in result.rejections]
    assert "heartRate.sampleTime.physicalTime" in reasons[0] and "yesterday" in reasons[0]
    assert "`heartRate`" in reasons[1]
    assert "heartRate.beatsPerMinute" in reasons[2] and "fast" in reasons[2]


def test_a_malformed_document_is_rejected_with_its_reason() -> None:
    [envelope] = published("weight", sample_file("weight.list.reconstructed.json"))
    point = dict(envelope.payload)  # type: ignore[arg-type]
    point["weight"] = {"sampleTime": {"physicalTime": "2026-08-29T01:45:00Z"}}  # no weightGrams
    result = map_payload(envelope.model_copy(update={"payload": point}))
    assert result.samples == [] and result.records_rejected == 1
    assert result.rejections[0].where == "reconstructed-weight-1"
    assert "weight.weightGrams" in result.rejections[0].reason


def test_an_unscored_night_yields_nothing_and_is_no_rejection() -> None:
    page = stages_night(processed=False)
    del page["dataPoints"][0]["sleep"]["summary"]  # output only, not computed yet
    result = map_all(published("sleep", page))
    assert result.samples == [] and result.records_seen == 1 and not result.rejections


def test_a_day_without_its_hrv_average_yields_nothing() -> None:
    page = {
        "dataPoints": [
            {
                "dailyHeartRateVariability": {
                    "date": {"year": 2026, "month": 9, "day": 2},
                    "entropy": 2.1,
                }
            }
        ]
    }
    result = map_all(published("daily-heart-rate-variability", page))
    assert result.samples == [] and result.records_seen == 1 and not result.rejections


def test_an_unknown_resource_or_shape_is_unmappable() -> None:
    [envelope] = published("heart-rate", sample_file("heart_rate.list.fixture.json"))
    with pytest.raises(UnmappablePayload, match="'floors'"):
        map_payload(envelope.model_copy(update={"resource": "floors"}))
    with pytest.raises(UnmappablePayload, match="dataPoints"):
        map_payload(envelope.model_copy(update={"payload": [1, 2]}))
    with pytest.raises(UnmappablePayload, match="not an object"):
        map_payload(envelope.model_copy(update={"resource": "sleep", "payload": "x"}))


def test_mapping_twice_gives_identical_samples() -> None:
    events = [
        *published("steps", sample_file("steps.list.reconstructed.json")),
        *published("exercise", sample_file("exercise.list.fixture.json")),
        *published("sleep", sample_file("sleep.list.observed_redacted.json")),
    ]
    first, second = map_all(events).samples, map_all(events).samples
    assert first == second and len(first) == 5
    assert len({s.id for s in first}) == 5
