"""The Strava mapper: one SummaryActivity per envelope in, one `workout` sample out.

Golden expectations are written by hand from the reference samples (../shared/reference/samples/
strava) and strava.md; envelopes are built by the connector's own page reader and envelope
builder, so they are exactly what `raw.strava` carries.
"""

import copy
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from healthmesh.common.events import RawPayloadReceived
from healthmesh.connectors.fetching import envelopes
from healthmesh.connectors.providers.strava import PROVIDER, first_call, read_page
from healthmesh.normalizer.mapping import MappingResult, Sample, UnmappablePayload
from healthmesh.normalizer.sources.strava import map_payload

USER = uuid.UUID("00000000-0000-0000-0000-0000000000a5")
FETCHED = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "strava"
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the reference samples are not at {SAMPLES}"
)


def sample_file(name: str) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


def published(activities: list[Any]) -> list[RawPayloadReceived]:
    """The envelopes the connector publishes for one page of GET /athlete/activities."""
    call = first_call(datetime(2010, 1, 1, tzinfo=UTC), FETCHED)
    page = read_page(activities, call)
    [resource] = PROVIDER.resources
    return envelopes(PROVIDER, resource, USER, page.items, FETCHED)


def map_all(activities: list[Any]) -> tuple[list[Sample], list[MappingResult]]:
    results = [map_payload(envelope) for envelope in published(activities)]
    return [s for r in results for s in r.samples], results


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


def activity(**fields: Any) -> dict[str, Any]:
    """A small SummaryActivity in Strava's shape; `fields` override or (None) remove."""
    base: dict[str, Any] = {
        "id": 777,
        "resource_state": 2,
        "name": "Lunch Run",
        "distance": 10000.0,
        "moving_time": 3000,
        "elapsed_time": 3300,
        "type": "Run",
        "sport_type": "TrailRun",
        "start_date": "2024-07-01T10:00:00Z",
        "start_date_local": "2024-07-01T12:00:00Z",
        "timezone": "(GMT+01:00) Europe/Berlin",
        "utc_offset": 7200,
        "manual": False,
        "has_heartrate": True,
        "average_heartrate": 150.5,
        "max_heartrate": 181,
        "device_name": "Garmin Forerunner 265",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def one(record: dict[str, Any]) -> Sample:
    [envelope] = published([record])
    result = map_payload(envelope)
    assert result.rejections == [] and result.records_seen == 1
    [sample] = result.samples
    return sample


# --- golden: the reference samples ---------------------------------------------------------------


@needs_samples
def test_list_page_sample_gives_one_workout_per_activity() -> None:
    samples, results = map_all(sample_file("athlete_activities.list.swagger_example.json"))
    assert [r.records_seen for r in results] == [1, 1]
    assert all(r.rejections == [] for r in results)
    assert [seen(s) for s in samples] == [
        {
            "metric": "workout",
            "value": 4500.0,  # elapsed_time 4500 s (moving_time is also 4500)
            "unit": "s",
            "start": datetime(2018, 5, 2, 12, 15, 9, tzinfo=UTC),  # start_date, UTC
            "end": datetime(2018, 5, 2, 13, 30, 9, tzinfo=UTC),  # 12:15:09 + 4500 s (1 h 15 m)
            "utc_offset_s": -25200,  # local 05:15:09 - UTC 12:15:09 = -7 h (PDT; utc_offset agrees)
            "source_record_id": "154504250376823",
            "device": "Garmin Edge 1030",
            "details": {
                "sport": "mountain_bike_ride",  # sport_type MountainBikeRide, not type Ride
                "moving_s": 4500.0,
                "distance_m": 24931.4,  # metres as given
                "avg_heart_rate": 140.3,  # has_heartrate true
                "max_heart_rate": 178.0,
                # no energy_kcal: the summary has no calories; kilojoules 788.7 is work, left out
            },
            "quality": 1.0,
            "quality_reason": None,
        },
        {
            "metric": "workout",
            "value": 5400.0,  # elapsed_time 5400 s
            "unit": "s",
            "start": datetime(2018, 4, 30, 12, 35, 51, tzinfo=UTC),
            "end": datetime(2018, 4, 30, 14, 5, 51, tzinfo=UTC),  # 12:35:51 + 1 h 30 m
            "utc_offset_s": -25200,  # 05:35:51 - 12:35:51 = -7 h
            "source_record_id": "1234567809",
            "device": "Garmin Edge 1030",
            "details": {
                "sport": "mountain_bike_ride",
                "moving_s": 5400.0,
                "distance_m": 23676.5,
                "avg_heart_rate": 152.4,
                "max_heart_rate": 183.0,
            },
            "quality": 1.0,
            "quality_reason": None,
        },
    ]


@needs_samples
def test_detailed_swagger_sample_takes_calories_and_skips_heart_rate() -> None:
    samples, _ = map_all([sample_file("activity.detailed.swagger_example.json")])
    assert [seen(s) for s in samples] == [
        {
            "metric": "workout",
            "value": 4410.0,  # elapsed_time 4410 s, pauses included
            "unit": "s",
            "start": datetime(2018, 2, 16, 14, 52, 54, tzinfo=UTC),
            "end": datetime(2018, 2, 16, 16, 6, 24, tzinfo=UTC),  # 14:52:54 + 1 h 13 m 30 s
            "utc_offset_s": -28800,  # 06:52:54 - 14:52:54 = -8 h (PST in February)
            "source_record_id": "12345678987654321",
            "device": "Garmin Edge 1030",
            "details": {
                "sport": "mountain_bike_ride",
                "moving_s": 4207.0,  # moving_time, 203 s less than elapsed
                "distance_m": 28099.0,
                "energy_kcal": 870.2,  # calories (kcal); kilojoules 780.5 not used
                # has_heartrate false: no heart rate
            },
            "quality": 1.0,
            "quality_reason": None,
        }
    ]


@needs_samples
def test_2013_document_without_sport_type_falls_back_to_type() -> None:
    samples, _ = map_all([sample_file("activity.detailed.stravalib_fixture_2013.json")])
    assert [seen(s) for s in samples] == [
        {
            "metric": "workout",
            "value": 3140.0,  # elapsed_time
            "unit": "s",
            "start": datetime(2013, 12, 12, 19, 36, 41, tzinfo=UTC),
            "end": datetime(2013, 12, 12, 20, 29, 1, tzinfo=UTC),  # 19:36:41 + 52 m 20 s
            "utc_offset_s": -28800,  # 11:36:41 - 19:36:41 = -8 h (no utc_offset field in 2013)
            "source_record_id": "99895560",
            "device": None,  # no device_name
            "details": {
                "sport": "run",  # type Run; there is no sport_type
                "moving_s": 2892.0,
                "distance_m": 5781.1,
                "energy_kcal": 537.9,
                # no has_heartrate and no heart rate fields: none
            },
            "quality": 1.0,
            "quality_reason": None,
        }
    ]


# --- the points Strava gets wrong easily -----------------------------------------------------


def test_offset_falls_back_to_utc_offset_then_the_timezone_zone() -> None:
    # start_date_local gone: utc_offset 7200 (CEST)
    assert one(activity(start_date_local=None)).utc_offset_s == 7200
    # utc_offset gone too: Europe/Berlin on 1 July is +2 h, not the "(GMT+01:00)" standard offset
    assert one(activity(start_date_local=None, utc_offset=None)).utc_offset_s == 7200
    # a zone name tzdata does not know: the prefix, +1 h
    unknown = activity(start_date_local=None, utc_offset=None, timezone="(GMT+01:00) Mars/Base")
    assert one(unknown).utc_offset_s == 3600


def test_no_offset_at_all_is_zero_with_lower_quality() -> None:
    sample = one(activity(start_date_local=None, utc_offset=None, timezone=None))
    assert (sample.utc_offset_s, sample.quality, sample.quality_reason) == (
        0,
        0.9,
        "local offset unknown",
    )


def test_start_date_local_wins_over_utc_offset() -> None:
    # Strava's DST-following utc_offset and start_date_local agree in real data; when they do
    # not, the wall time the athlete saw is the one the task names: 12:00 - 10:00 = +2 h
    assert one(activity(utc_offset=3600)).utc_offset_s == 7200


def test_manual_activity_has_no_device_and_lower_quality() -> None:
    sample = one(activity(manual=True, device_name="Strava App", has_heartrate=False))
    assert sample.device is None
    assert (sample.quality, sample.quality_reason) == (
        0.8,
        "entered by hand (Strava manual activity)",
    )
    assert sample.value == 3300  # still a workout, in aggregates (quality >= 0.5)


@pytest.mark.parametrize(
    ("sport_type", "sport"),
    [
        ("MountainBikeRide", "mountain_bike_ride"),
        ("EBikeRide", "e_bike_ride"),
        ("EMountainBikeRide", "e_mountain_bike_ride"),
        ("HIIT", "hiit"),
        ("VirtualRun", "virtual_run"),
        ("StandUpPaddling", "stand_up_paddling"),
        ("WeightTraining", "weight_training"),
        ("Run", "run"),
    ],
)
def test_sport_type_is_lower_snake_case(sport_type: str, sport: str) -> None:
    details = one(activity(sport_type=sport_type)).details
    assert details is not None and details["sport"] == sport


def test_kilojoules_never_become_energy() -> None:
    details = one(activity(kilojoules=788.7)).details
    assert details is not None and "energy_kcal" not in details


def test_heart_rate_fields_are_ignored_when_has_heartrate_is_false() -> None:
    details = one(activity(has_heartrate=False)).details
    assert details is not None and "avg_heart_rate" not in details
    assert "max_heart_rate" not in details


def test_zero_distance_and_calories_are_not_measurements() -> None:
    # WeightTraining: Strava writes distance 0 and (detailed) calories 0 when it has none
    details = one(activity(sport_type="WeightTraining", distance=0.0, calories=0)).details
    assert details is not None and "distance_m" not in details and "energy_kcal" not in details


def test_workout_yields_no_other_metric() -> None:
    sample = one(activity(calories=600.0))
    assert sample.metric == "workout"
    assert sample.details == {
        "sport": "trail_run",
        "moving_s": 3000.0,
        "distance_m": 10000.0,
        "energy_kcal": 600.0,
        "avg_heart_rate": 150.5,
        "max_heart_rate": 181.0,
    }


# --- rejections, unknowns, determinism --------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"elapsed_time": "1h"}, "elapsed_time"),
        ({"elapsed_time": None}, "elapsed_time"),
        ({"elapsed_time": -5}, "elapsed_time"),
        ({"start_date_local": "noon"}, "start_date_local"),
        ({"start_date_local": "2024-07-02T12:00:00Z"}, "start_date_local"),  # +26 h: no offset
        ({"average_heartrate": "high"}, "average_heartrate"),
        ({"sport_type": None, "type": None}, "sport"),
    ],
)
def test_a_malformed_activity_is_rejected_alone(fields: dict[str, Any], reason: str) -> None:
    bad = activity(id=778, **fields)
    results = [map_payload(e) for e in published([activity(), bad, activity(id=779)])]
    assert [len(r.samples) for r in results] == [1, 0, 1]
    [rejection] = results[1].rejections
    assert rejection.where == "activity 778"
    assert reason in rejection.reason
    assert results[1].records_seen == 1 and results[1].records_imported == 0


def test_a_bad_start_date_is_rejected() -> None:
    # The connector refuses such a page; a hand-made envelope still must not crash the mapper
    [envelope] = published([activity()])
    broken = envelope.model_copy(update={"payload": activity(start_date="yesterday")})
    [rejection] = map_payload(broken).rejections
    assert "start_date" in rejection.reason


def test_unknown_resource_and_unreadable_payload_are_unmappable() -> None:
    [envelope] = published([activity()])
    with pytest.raises(UnmappablePayload, match="'athlete_stats'"):
        map_payload(envelope.model_copy(update={"resource": "athlete_stats"}))
    with pytest.raises(UnmappablePayload, match="not an object"):
        map_payload(envelope.model_copy(update={"payload": [activity()]}))


def test_an_activity_without_optional_measurements_is_a_bare_workout_not_a_rejection() -> None:
    # Strava has no scoring state: an activity is listed once processed. What it may lack
    # (heart rate, distance, calories, moving time) simply stays out of the details.
    bare = activity(
        has_heartrate=False,
        average_heartrate=None,
        max_heartrate=None,
        distance=None,
        moving_time=None,
        device_name=None,
    )
    sample = one(bare)
    assert sample.details == {"sport": "trail_run"}
    assert sample.value == 3300 and sample.device is None


def test_mapping_twice_and_an_edited_activity_give_the_same_samples() -> None:
    [envelope] = published([activity()])
    first, second = map_payload(envelope), map_payload(envelope)
    assert first.samples == second.samples
    # Renamed on Strava: a new raw event (content changed), the same sample id (same natural key)
    renamed = copy.deepcopy(activity())
    renamed["name"] = "Lunch Run (renamed)"
    [edited_envelope] = published([renamed])
    assert edited_envelope.id != envelope.id
    [edited] = map_payload(edited_envelope).samples
    assert edited.id == first.samples[0].id
    assert edited.source_record_id == "777"
