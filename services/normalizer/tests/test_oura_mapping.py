"""The Oura mapper against the recorded samples (shared/reference/samples/oura), with every
expectation written out by hand from the sample's numbers and the Oura docs."""

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import MappingResult, Sample, UnmappablePayload, Withdrawal
from healthmesh.normalizer.sources.oura import map_payload

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "oura"
USER = uuid.UUID("00000000-0000-0000-0000-0000000000a1")
UNKNOWN = (0.9, "local offset unknown")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def documents(name: str) -> list[dict[str, Any]]:
    """The `data` documents of a recorded page."""
    page = json.loads((SAMPLES / name).read_text())
    docs: list[dict[str, Any]] = page["data"]
    return docs


def envelope(resource: str, payload: JsonValue) -> RawPayloadReceived:
    """Shaped as the connector publishes it; a deterministic id so re-mapping is comparable."""
    key = f"{resource}:{json.dumps(payload, sort_keys=True)}"
    return RawPayloadReceived(
        id=uuid.uuid5(uuid.NAMESPACE_URL, key),
        user_id=USER,
        source="oura",
        resource=resource,
        fetched_at=utc(2024, 12, 14),
        payload=payload,
    )


def map_documents(resource: str, docs: list[dict[str, Any]]) -> list[MappingResult]:
    """One envelope per document, as the connector publishes daily collections."""
    return [map_payload(envelope(resource, doc)) for doc in docs]


def heartrate_envelopes(rows: list[dict[str, Any]]) -> list[RawPayloadReceived]:
    """One envelope per UTC day of rows, `{"data": rows}`, as the connector groups the series."""
    days: dict[str, list[JsonValue]] = {}
    for row in rows:
        day = datetime.fromisoformat(row["timestamp"]).astimezone(UTC).date().isoformat()
        days.setdefault(day, []).append(row)
    return [envelope("heartrate", {"data": days[day]}) for day in sorted(days)]


def samples_of(results: list[MappingResult]) -> list[Sample]:
    assert all(not r.rejections for r in results), [r.rejections for r in results]
    return [s for r in results for s in r.samples]


def check(
    sample: Sample,
    metric: str,
    value: float,
    unit: str,
    start: datetime,
    end: datetime,
    offset: int,
    record_id: str,
    details: dict[str, Any] | None = None,
    quality: tuple[float, str | None] = (1.0, None),
) -> None:
    assert sample.metric == metric
    assert sample.value == pytest.approx(value)
    assert sample.unit == unit
    assert (sample.start, sample.end) == (start, end)
    assert sample.utc_offset_s == offset
    assert sample.source_record_id == record_id
    assert sample.source == "oura" and sample.user_id == USER
    assert sample.device is None  # no Oura payload names the device
    assert sample.details == (None if details is None else pytest.approx(details))
    assert (sample.quality, sample.quality_reason) == quality


# --- golden: one test per sample file the connector publishes -----------------------------------


def test_daily_activity_is_filed_on_its_local_day_with_the_timestamp_offset() -> None:
    [result] = map_documents("daily_activity", documents("daily_activity.list.json"))
    assert result.records_seen == 1 and not result.rejections
    doc_id = "3e8de08b-9fa1-4fb0-8edc-0ccf097f6693"
    # day 2024-11-11; timestamp 2024-11-11T04:00:00+01:00 -> offset 3600 s; the local day
    # 2024-11-11T00:00+01:00 .. 2024-11-12T00:00+01:00 is 2024-11-10T23:00Z .. 2024-11-11T23:00Z.
    day = (utc(2024, 11, 10, 23), utc(2024, 11, 11, 23), 3600, doc_id)
    steps, active, total, minutes = result.samples
    check(steps, "steps", 15185, "count", *day)
    check(active, "active_energy", 1153, "kcal", *day)  # active_calories, kcal
    check(total, "total_energy", 3502, "kcal", *day)  # total_calories, kcal
    # medium 4860 s + high 2460 s = 7320 s = 122 min
    check(minutes, "active_minutes", 122, "min", *day)
    # equivalent_walking_distance (17850) is not a distance travelled: no distance sample.
    assert "distance" not in {s.metric for s in result.samples}


def test_daily_readiness_score_is_readiness_on_its_day_with_an_unknown_offset() -> None:
    first, second = samples_of(
        map_documents("daily_readiness", documents("daily_readiness.list.json"))
    )
    # timestamp 2024-11-11T00:00:00+00:00 is UTC midnight, not the user's offset: 0, quality 0.9
    check(
        first,
        "readiness",
        86,
        "score",
        utc(2024, 11, 11),
        utc(2024, 11, 12),
        0,
        "93b2a8ec-ccdb-49bf-84f5-d06a77873f25",
        quality=UNKNOWN,
    )
    check(
        second,
        "readiness",
        87,
        "score",
        utc(2024, 11, 12),
        utc(2024, 11, 13),
        0,
        "d90a1159-664e-49e4-b668-78ebf7463f8a",
        quality=UNKNOWN,
    )


def test_daily_sleep_has_no_vocabulary_metric_and_is_no_rejection() -> None:
    results = map_documents("daily_sleep", documents("daily_sleep.list.json"))
    assert [(r.records_seen, r.records_rejected, r.samples) for r in results] == [(1, 0, [])] * 2


def test_daily_spo2_average_is_spo2_percent() -> None:
    first, second = samples_of(map_documents("daily_spo2", documents("daily_spo2.list.json")))
    # spo2_percentage.average is already a percentage (98.072 %); no time in the document
    check(
        first,
        "spo2",
        98.072,
        "%",
        utc(2024, 11, 11),
        utc(2024, 11, 12),
        0,
        "b1c660f4-551f-4c9f-80a3-16e809d118d8",
        quality=UNKNOWN,
    )
    check(
        second,
        "spo2",
        96.153,
        "%",
        utc(2024, 11, 12),
        utc(2024, 11, 13),
        0,
        "49e7c4b7-c313-4d27-8597-0302a17eb820",
        quality=UNKNOWN,
    )


def test_heartrate_rows_are_instants_of_every_source() -> None:
    rows = documents("heartrate.list.trimmed.json")
    envelopes = heartrate_envelopes(rows)
    assert len(envelopes) == 1  # all 40 rows are on 2024-12-13 UTC
    [result] = [map_payload(e) for e in envelopes]
    assert result.records_seen == 40 and not result.rejections
    samples = result.samples
    assert len(samples) == 40 and {s.metric for s in samples} == {"heart_rate"}
    # awake 17 rows (1611 bpm) + rest 14 rows (1201) + workout 9 rows (1072) = 3884
    assert sum(s.value for s in samples) == 3884
    first, rest, workout = samples[0], samples[17], samples[31]
    at = utc(2024, 12, 13, 12, 31, 21)
    # rows are UTC (+00:00): the wearer's offset is unknown
    check(first, "heart_rate", 91, "bpm", at, at, 0, "", quality=UNKNOWN)
    at = utc(2024, 12, 13, 13, 22, 15)
    check(rest, "heart_rate", 89, "bpm", at, at, 0, "", quality=UNKNOWN)
    at = utc(2024, 12, 13, 14, 46)
    check(workout, "heart_rate", 118, "bpm", at, at, 0, "", quality=UNKNOWN)


NIGHT = "96e7772a-64a7-4342-9c5f-3e5ed9e64d6d"


def check_night(samples: list[Sample]) -> None:
    """sleep 96e7772a, long_sleep: 2024-10-10T01:01:59+02:00 .. 09:04:12+02:00."""
    night = (utc(2024, 10, 9, 23, 1, 59), utc(2024, 10, 10, 7, 4, 12), 7200, NIGHT)
    session, duration, hrv, resting, breath = samples
    # asleep: deep 3060 + light 17160 + rem 3000 = 23220 s; + awake 5713 = 28933 s in bed
    stages = {
        "deep_s": 3060,
        "light_s": 17160,
        "rem_s": 3000,
        "awake_s": 5713,
        "in_bed_s": 28933,
        "efficiency": 80,
    }
    check(session, "sleep_session", 23220, "s", *night, details=stages)
    check(duration, "sleep_duration", 23220, "s", *night)
    check(hrv, "hrv_rmssd", 38, "ms", *night)  # average_hrv is RMSSD, ms
    check(resting, "resting_heart_rate", 60, "bpm", *night)  # lowest_heart_rate
    check(breath, "respiratory_rate", 14.5, "/min", *night)  # average_breath


def test_sleep_periods_become_sessions_with_naps_marked() -> None:
    results = map_documents("sleep", documents("sleep.list.trimmed.json"))
    night, nap, doze = (samples_of([r]) for r in results)
    check_night(night)
    # c45e23d6, type "sleep" (a nap): 12:47:30+02:00 .. 13:43:30+02:00
    span = (utc(2024, 10, 10, 10, 47, 30), utc(2024, 10, 10, 11, 43, 30), 7200)
    nap_id = "c45e23d6-b045-45b5-8399-e0e635bec378"
    # deep 270 + light 2310 + rem 0 = 2580 s asleep; + awake 780 = 3360 s in bed
    stages = {
        "deep_s": 270,
        "light_s": 2310,
        "rem_s": 0,
        "awake_s": 780,
        "in_bed_s": 3360,
        "efficiency": 77,
        "nap": True,
    }
    assert [s.metric for s in nap] == ["sleep_session", "sleep_duration"]  # no nap vitals
    check(nap[0], "sleep_session", 2580, "s", *span, nap_id, details=stages)
    check(nap[1], "sleep_duration", 2580, "s", *span, nap_id)
    # 83b66e04, type "sleep" 22:37:30+02:00 .. 22:53:31+02:00 (Oura's day 2024-10-11; it ends
    # on 2024-10-10 local, the day our sleep metrics file it under)
    span = (utc(2024, 10, 10, 20, 37, 30), utc(2024, 10, 10, 20, 53, 31), 7200)
    doze_id = "83b66e04-7baf-4e7b-97d3-898724031ee1"
    # deep 0 + light 30 + rem 0 = 30 s asleep; + awake 931 = 961 s in bed
    stages = {
        "deep_s": 0,
        "light_s": 30,
        "rem_s": 0,
        "awake_s": 931,
        "in_bed_s": 961,
        "efficiency": 3,
        "nap": True,
    }
    assert [s.metric for s in doze] == ["sleep_session", "sleep_duration"]
    check(doze[0], "sleep_session", 30, "s", *span, doze_id, details=stages)
    check(doze[1], "sleep_duration", 30, "s", *span, doze_id)


def test_the_single_sleep_document_maps_like_its_list_copy() -> None:
    doc = json.loads((SAMPLES / "sleep.single.json").read_text())
    [single] = map_documents("sleep", [doc])
    check_night(samples_of([single]))
    [listed] = map_documents("sleep", documents("sleep.list.trimmed.json")[:1])
    assert [s.id for s in single.samples] == [s.id for s in listed.samples]


def test_workouts_are_one_sample_each_with_sport_energy_and_distance() -> None:
    samples = samples_of(map_documents("workout", documents("workout.list.trimmed.json")))
    assert len(samples) == 8 and {s.metric for s in samples} == {"workout"}
    first, second, _, fourth = samples[:4]
    # 09:07+02:00 .. 09:18+02:00 = 660 s; 21.967 kcal; distance null
    check(
        first,
        "workout",
        660,
        "s",
        utc(2024, 10, 9, 7, 7),
        utc(2024, 10, 9, 7, 18),
        7200,
        "23264206-4a83-4619-abff-0e77bf6cd562",
        details={"sport": "walking", "energy_kcal": 21.967},
    )
    # same day, its own offset +00:00: 16:49 .. 17:33 = 2640 s; 269.878... m
    check(
        second,
        "workout",
        2640,
        "s",
        utc(2024, 10, 9, 16, 49),
        utc(2024, 10, 9, 17, 33),
        0,
        "6fcc2eed-227f-4702-bad9-54d44c14511e",
        details={"sport": "walking", "energy_kcal": 87.868, "distance_m": 269.87872314453125},
    )
    # 10:19+02:00 .. 11:10+02:00 = 3060 s; 101.847 kcal; 1426.56... m
    check(
        fourth,
        "workout",
        3060,
        "s",
        utc(2024, 10, 10, 8, 19),
        utc(2024, 10, 10, 9, 10),
        7200,
        "19ab6f1f-2fcb-4346-9572-cbe06e72e789",
        details={"sport": "walking", "energy_kcal": 101.847, "distance_m": 1426.56005859375},
    )
    # 660 + 2640 + 600 + 3060 + 1020 + 900 + 660 + 660 = 10200 s
    assert sum(s.value for s in samples) == 10200
    energy = [s.details["energy_kcal"] for s in samples if s.details]
    # 21.967 + 87.868 + 19.97 + 101.847 + 63.648 + 29.955 + 21.967 + 21.967 = 369.189 kcal
    assert sum(e for e in energy if isinstance(e, float)) == pytest.approx(369.189)
    assert [s.utc_offset_s for s in samples] == [7200, 0, 7200, 7200, 7200, 7200, 7200, 7200]


# --- rejections, unscored records, determinism --------------------------------------------------


def test_a_malformed_row_is_rejected_alone_and_the_others_map() -> None:
    rows: list[JsonValue] = [
        {"bpm": 60, "source": "sleep", "timestamp": "2024-12-13T01:00:00+00:00"},
        {"bpm": "fast", "source": "awake", "timestamp": "2024-12-13T01:01:00+00:00"},
        {"bpm": 61, "source": "awake"},
        {"bpm": 62, "source": "awake", "timestamp": "yesterday"},
        {"bpm": 63, "source": "live", "timestamp": "2024-12-13T01:03:00+00:00"},
    ]
    result = map_payload(envelope("heartrate", {"data": rows}))
    assert [s.value for s in result.samples] == [60, 63]
    assert result.records_seen == 5 and result.records_imported == 2
    where = [r.where for r in result.rejections]
    assert where == ["heartrate data[1]", "heartrate data[2]", "heartrate data[3]"]
    reasons = [r.reason for r in result.rejections]
    assert "bpm is 'fast', not a number" in reasons[0]
    assert "timestamp is missing" in reasons[1]
    assert "'yesterday' is not an ISO 8601 time" in reasons[2]


def test_a_malformed_document_is_rejected_with_where_and_why() -> None:
    doc = documents("workout.list.trimmed.json")[0] | {"end_datetime": "2024-10-09T09:18:00"}
    result = map_payload(envelope("workout", doc))
    assert result.samples == [] and result.records_seen == 1
    [rejection] = result.rejections
    assert rejection.where == "workout 23264206-4a83-4619-abff-0e77bf6cd562"
    assert "end_datetime" in rejection.reason and "no UTC offset" in rejection.reason
    swapped = documents("workout.list.trimmed.json")[0] | {
        "start_datetime": "2024-10-09T09:18:00+02:00",
        "end_datetime": "2024-10-09T09:07:00+02:00",
    }
    [rejection] = map_payload(envelope("workout", swapped)).rejections
    assert "ends before it starts" in rejection.reason
    no_such_zone = documents("workout.list.trimmed.json")[0] | {
        "start_datetime": "2024-10-09T09:07:00+19:00",
        "end_datetime": "2024-10-09T09:18:00+19:00",
    }
    [rejection] = map_payload(envelope("workout", no_such_zone)).rejections
    assert "UTC offset 68400 s is beyond ±18 h" in rejection.reason


def test_an_unknown_resource_or_an_unreadable_payload_is_unmappable() -> None:
    with pytest.raises(UnmappablePayload, match="daily_stress"):
        map_payload(envelope("daily_stress", documents("daily_stress.list.json")[0]))
    with pytest.raises(UnmappablePayload, match="heartrate"):
        map_payload(envelope("heartrate", [{"bpm": 60}]))
    with pytest.raises(UnmappablePayload, match="sleep"):
        map_payload(envelope("sleep", "not a document"))


def test_unscored_records_yield_nothing_and_are_not_rejected() -> None:
    readiness = documents("daily_readiness.list.json")[0] | {"score": None}
    spo2 = documents("daily_spo2.list.json")[0] | {"spo2_percentage": None}
    unscored_night = documents("sleep.list.trimmed.json")[0] | {
        "total_sleep_duration": None,
        "average_hrv": None,
        "lowest_heart_rate": None,
        "average_breath": None,
    }
    for resource, doc in [
        ("daily_readiness", readiness),
        ("daily_spo2", spo2),
        ("sleep", unscored_night),
    ]:
        result = map_payload(envelope(resource, doc))
        assert (result.samples, result.records_seen, result.rejections) == ([], 1, [])


def test_deleted_and_rejected_sleeps_and_the_no_heart_rate_marker_yield_nothing() -> None:
    night = documents("sleep.list.trimmed.json")[0]
    for kind in ("deleted", "rest"):
        result = map_payload(envelope("sleep", night | {"type": kind}))
        assert (result.samples, result.rejections) == ([], [])
    # lowest_heart_rate 255 comes with `heart_rate: null`: no heart rate, no resting HR sample
    result = map_payload(envelope("sleep", night | {"lowest_heart_rate": 255}))
    assert "resting_heart_rate" not in {s.metric for s in result.samples}
    assert len(result.samples) == 4


def test_a_real_offset_on_a_daily_document_is_kept() -> None:
    doc = documents("daily_readiness.list.json")[0] | {"timestamp": "2024-11-11T00:00:00-05:00"}
    [sample] = map_payload(envelope("daily_readiness", doc)).samples
    # 2024-11-11T00:00-05:00 .. 2024-11-12T00:00-05:00 = 05:00Z .. 05:00Z next day
    check(
        sample,
        "readiness",
        86,
        "score",
        utc(2024, 11, 11, 5),
        utc(2024, 11, 12, 5),
        -18000,
        "93b2a8ec-ccdb-49bf-84f5-d06a77873f25",
    )


def test_sport_names_are_lower_snake_case() -> None:
    doc = documents("workout.list.trimmed.json")[0] | {"activity": "strengthTraining"}
    [sample] = map_payload(envelope("workout", doc)).samples
    assert sample.details is not None and sample.details["sport"] == "strength_training"


def test_mapping_twice_gives_identical_samples() -> None:
    for resource, docs in [
        ("daily_activity", documents("daily_activity.list.json")),
        ("sleep", documents("sleep.list.trimmed.json")),
        ("workout", documents("workout.list.trimmed.json")),
        ("daily_readiness", documents("daily_readiness.list.json")),
    ]:
        assert map_documents(resource, docs) == map_documents(resource, docs)
    rows = documents("heartrate.list.trimmed.json")
    once = [map_payload(e) for e in heartrate_envelopes(rows)]
    assert once == [map_payload(e) for e in heartrate_envelopes(rows)]


def test_a_rescored_document_updates_the_same_samples() -> None:
    night = documents("sleep.list.trimmed.json")[0]
    rescored = night | {"total_sleep_duration": 23000, "average_hrv": 40}
    before = map_payload(envelope("sleep", night)).samples
    after = map_payload(envelope("sleep", rescored)).samples
    assert [s.id for s in before] == [s.id for s in after]
    assert [s.value for s in after][:3] == [23000, 23000, 40]


# --- deletions (the tombstone of a signed `delete` webhook) ---------------------------------------


def tombstone(resource: str, object_id: JsonValue) -> RawPayloadReceived:
    """As the connector publishes a signed Oura `delete` event of `resource`'s data type."""
    event: JsonValue = {
        "event_type": "delete",
        "data_type": resource,
        "object_id": object_id,
        "event_time": "2024-12-14T08:00:00+00:00",
        "user_id": "user123",
    }
    return envelope("deleted", {"resource": resource, "id": object_id, "event": event})


@pytest.mark.parametrize(
    ("resource", "name"),
    [
        ("daily_activity", "daily_activity.list.json"),
        ("daily_readiness", "daily_readiness.list.json"),
        ("daily_spo2", "daily_spo2.list.json"),
        ("sleep", "sleep.list.trimmed.json"),
        ("workout", "workout.list.trimmed.json"),
    ],
)
def test_a_deletion_withdraws_exactly_the_document_id_its_samples_carry(
    resource: str, name: str
) -> None:
    doc = documents(name)[0]
    samples = map_payload(envelope(resource, doc)).samples
    assert samples and {s.source_record_id for s in samples} == {doc["id"]}
    result = map_payload(tombstone(resource, doc["id"]))
    assert result == MappingResult(records_seen=1, withdrawals=[Withdrawal(doc["id"])])


def test_a_deleted_daily_sleep_withdraws_its_id_though_it_has_no_samples() -> None:
    result = map_payload(tombstone("daily_sleep", "0b9ac5b3"))
    assert (result.samples, result.withdrawals) == ([], [Withdrawal("0b9ac5b3")])


@pytest.mark.parametrize(
    "payload",
    [
        {"resource": "sleep"},
        {"resource": "sleep", "id": ""},
        {"resource": "sleep", "id": 12345},
        {"resource": "heartrate", "id": "12345abc"},  # rows have no id, nor a data type
        {"resource": "tag", "id": "12345abc"},
        {"resource": {"sleep": True}, "id": "12345abc"},
        {"id": "12345abc"},
        "12345abc",
    ],
)
def test_a_deletion_without_a_usable_document_is_unmappable(payload: JsonValue) -> None:
    with pytest.raises(UnmappablePayload, match="deleted"):
        map_payload(envelope("deleted", payload))
