"""The WHOOP mapper, a pure function: one API v2 record per envelope in, samples out.

Golden expectations are written by hand from the reference samples (../shared/reference/samples/
whoop) and the WHOOP docs (../shared/reference/providers/whoop.md): kJ / 4.184 = kcal,
ms * 10^-3 = s, times are UTC with the offset from `timezone_offset`.
"""

import copy
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived, TimeWindow
from healthmesh.common.ids import content_hash, raw_event_id, sample_id
from healthmesh.normalizer.mapping import MappingResult, Sample, UnmappablePayload, Withdrawal
from healthmesh.normalizer.sources.whoop import map_payload

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "whoop"
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the reference samples are not at {SAMPLES}"
)

USER = uuid.UUID("00000000-0000-0000-0000-00000000a001")
FETCHED = datetime(2022, 4, 25, 8, 0, tzinfo=UTC)
SLEEP_ID = "ecfc6a15-4661-442f-a9a4-f160dd7afae8"
# The docs examples share one interval: 2022-04-24T02:25:44.774Z to 10:25:44.774Z at -05:00.
START = datetime(2022, 4, 24, 2, 25, 44, 774000, tzinfo=UTC)
END = datetime(2022, 4, 24, 10, 25, 44, 774000, tzinfo=UTC)
MINUS_5H = -5 * 3600  # "-05:00"
RECOVERY_AT = datetime(2022, 4, 24, 11, 25, 44, 774000, tzinfo=UTC)  # its created_at

Record = dict[str, Any]


# --- building envelopes as the connector does (one per record of `records[]`) --------------------


def _utc(text: object) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def envelope(resource: str, record: Record) -> RawPayloadReceived:
    """As the WHOOP connector publishes it: keyed by `id` (`cycle_id` for a recovery), the id
    over key and content hash, the record's own start/end as the window (none for a recovery)."""
    key = record.get("cycle_id") if resource == "recovery" else record.get("id")
    return RawPayloadReceived(
        id=raw_event_id("whoop", USER, resource, f"{key}:{content_hash(record)}"),
        user_id=USER,
        source="whoop",
        resource=resource,
        fetched_at=FETCHED,
        window=TimeWindow(start=_utc(record.get("start")), end=_utc(record.get("end"))),
        payload=record,
    )


def load(name: str) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


def records_of(name: str) -> list[Record]:
    """A `*.collection.composed.json` is a page: its records; a `*.single.json` is one record."""
    body = load(name)
    return list(body["records"]) if name.endswith(".collection.composed.json") else [body]


def map_file(resource: str, name: str) -> tuple[list[RawPayloadReceived], list[MappingResult]]:
    envelopes = [envelope(resource, r) for r in records_of(name)]
    return envelopes, [map_payload(e) for e in envelopes]


def by_metric(samples: list[Sample]) -> dict[str, Sample]:
    out = {s.metric: s for s in samples}
    assert len(out) == len(samples), "one sample per metric per record"
    return out


def check(
    sample: Sample,
    raw: RawPayloadReceived,
    *,
    value: float,
    unit: str,
    start: datetime,
    end: datetime,
    offset: int,
    record_id: str,
    details: dict[str, JsonValue] | None = None,
    quality: float = 1.0,
    reason: str | None = None,
) -> None:
    assert sample.value == pytest.approx(value, rel=1e-12)
    assert sample.unit == unit
    assert (sample.start, sample.end) == (start, end)
    assert sample.utc_offset_s == offset
    assert sample.source_record_id == record_id
    assert sample.source == "whoop" and sample.user_id == USER
    assert sample.device is None  # WHOOP payloads name no device or model
    assert sample.details == (pytest.approx(details) if details is not None else None)
    assert (sample.quality, sample.quality_reason) == (quality, reason)
    assert sample.raw_event_id == raw.id
    assert sample.id == sample_id(USER, sample.metric, "whoop", start, end, record_id)


def scored(resource: str) -> Record:
    """The docs example record of a resource, to vary in the edge-case tests."""
    return dict(copy.deepcopy(DOC_RECORDS[resource]))


# The docs examples again, inline, so the edge-case tests run without the reference pack.
DOC_RECORDS: dict[str, Record] = {
    "cycle": {
        "id": 93845,
        "user_id": 10129,
        "created_at": "2022-04-24T11:25:44.774Z",
        "updated_at": "2022-04-24T14:25:44.774Z",
        "start": "2022-04-24T02:25:44.774Z",
        "end": "2022-04-24T10:25:44.774Z",
        "timezone_offset": "-05:00",
        "score_state": "SCORED",
        "score": {
            "strain": 5.2951527,
            "kilojoule": 8288.297,
            "average_heart_rate": 68,
            "max_heart_rate": 141,
        },
    },
    "recovery": {
        "cycle_id": 93845,
        "sleep_id": "123e4567-e89b-12d3-a456-426614174000",
        "user_id": 10129,
        "created_at": "2022-04-24T11:25:44.774Z",
        "updated_at": "2022-04-24T14:25:44.774Z",
        "score_state": "SCORED",
        "score": {
            "user_calibrating": False,
            "recovery_score": 44,
            "resting_heart_rate": 64,
            "hrv_rmssd_milli": 31.813562,
            "spo2_percentage": 95.6875,
            "skin_temp_celsius": 33.7,
        },
    },
    "sleep": {
        "id": SLEEP_ID,
        "cycle_id": 93845,
        "user_id": 10129,
        "created_at": "2022-04-24T11:25:44.774Z",
        "updated_at": "2022-04-24T14:25:44.774Z",
        "start": "2022-04-24T02:25:44.774Z",
        "end": "2022-04-24T10:25:44.774Z",
        "timezone_offset": "-05:00",
        "nap": False,
        "score_state": "SCORED",
        "score": {
            "stage_summary": {
                "total_in_bed_time_milli": 30272735,
                "total_awake_time_milli": 1403507,
                "total_no_data_time_milli": 0,
                "total_light_sleep_time_milli": 14905851,
                "total_slow_wave_sleep_time_milli": 6630370,
                "total_rem_sleep_time_milli": 5879573,
                "sleep_cycle_count": 3,
                "disturbance_count": 12,
            },
            "respiratory_rate": 16.11328125,
            "sleep_efficiency_percentage": 91.69533848,
        },
    },
    "workout": {
        "id": SLEEP_ID,
        "user_id": 9012,
        "created_at": "2022-04-24T11:25:44.774Z",
        "updated_at": "2022-04-24T14:25:44.774Z",
        "start": "2022-04-24T02:25:44.774Z",
        "end": "2022-04-24T10:25:44.774Z",
        "timezone_offset": "-05:00",
        "sport_name": "running",
        "score_state": "SCORED",
        "score": {
            "strain": 8.2463,
            "average_heart_rate": 123,
            "max_heart_rate": 146,
            "kilojoule": 1569.34033203125,
            "percent_recorded": 100,
            "distance_meter": 1772.77035916,
        },
    },
}


# --- golden tests over the reference samples ------------------------------------------------------

PUBLISHED = {
    "cycle.single.json": "cycle",
    "cycle.collection.composed.json": "cycle",
    "recovery.single.json": "recovery",
    "recovery.collection.composed.json": "recovery",
    "sleep.single.json": "sleep",
    "sleep.collection.composed.json": "sleep",
    "workout.single.json": "workout",
    "workout.collection.composed.json": "workout",
}
NOT_PUBLISHED = {
    "activity_mapping.v1_to_v2.json",  # a v1 -> v2 id lookup, not data
    "token.refresh.response.docs_example.json",
    "user_profile_basic.json",  # the connector's identity call only
    "user_body_measurement.json",  # the connector does not fetch body measurements
    "webhook.v1.workout_updated.legacy.json",  # notices, carrying no data
    "webhook.v2.sleep_updated.json",
    "export.physiological_cycles.csv",  # the app's CSV export, not the API
    "export.sleeps.csv",
    "export.workouts.csv",
}


@needs_samples
def test_every_sample_file_is_either_golden_tested_or_not_published() -> None:
    files = {p.name for p in SAMPLES.iterdir() if p.is_file()}
    assert files == set(PUBLISHED) | NOT_PUBLISHED


@needs_samples
@pytest.mark.parametrize("name", ["cycle.single.json", "cycle.collection.composed.json"])
def test_cycle_sample_gives_strain_total_energy_and_mean_heart_rate(name: str) -> None:
    [raw], [result] = map_file("cycle", name)
    assert (result.records_seen, result.rejections) == (1, [])
    got = by_metric(result.samples)
    assert set(got) == {"strain", "total_energy", "heart_rate"}  # max_heart_rate: no metric
    own: dict[str, Any] = {"start": START, "end": END, "offset": MINUS_5H, "record_id": "93845"}
    check(got["strain"], raw, value=5.2951527, unit="score", **own)  # WHOOP's 0-21 scale
    # 8288.297 kJ / 4.184 kJ/kcal = 1980.95 kcal; WHOOP counts BMR in, so it is the total.
    check(got["total_energy"], raw, value=8288.297 / 4.184, unit="kcal", **own)
    check(got["heart_rate"], raw, value=68, unit="bpm", **own)


@needs_samples
@pytest.mark.parametrize("name", ["recovery.single.json", "recovery.collection.composed.json"])
def test_recovery_sample_gives_instants_at_created_at_without_a_known_offset(name: str) -> None:
    [raw], [result] = map_file("recovery", name)
    assert (result.records_seen, result.rejections) == (1, [])
    got = by_metric(result.samples)
    # No start/end/offset of its own: an instant at created_at 11:25:44.774Z, offset 0, 0.9.
    at: dict[str, Any] = {
        "start": RECOVERY_AT,
        "end": RECOVERY_AT,
        "offset": 0,
        # No id of its own: its sleep's UUID, the one recovery.deleted names [WH].
        "record_id": "123e4567-e89b-12d3-a456-426614174000",
        "quality": 0.9,
        "reason": "local offset unknown",
    }
    check(got["recovery"], raw, value=44, unit="score", **at)
    check(got["resting_heart_rate"], raw, value=64, unit="bpm", **at)
    check(got["hrv_rmssd"], raw, value=31.813562, unit="ms", **at)  # already ms, RMSSD
    check(got["spo2"], raw, value=95.6875, unit="%", **at)
    check(got["skin_temperature"], raw, value=33.7, unit="Cel", **at)
    assert len(got) == 5


@needs_samples
@pytest.mark.parametrize("name", ["sleep.single.json", "sleep.collection.composed.json"])
def test_sleep_sample_gives_session_duration_and_respiratory_rate(name: str) -> None:
    [raw], [result] = map_file("sleep", name)
    assert (result.records_seen, result.rejections) == (1, [])
    got = by_metric(result.samples)
    assert set(got) == {"sleep_session", "sleep_duration", "respiratory_rate"}
    # asleep = light 14905851 + slow wave 6630370 + REM 5879573 = 27415794 ms = 27415.794 s
    asleep = 27415.794
    own: dict[str, Any] = {"start": START, "end": END, "offset": MINUS_5H, "record_id": SLEEP_ID}
    details: dict[str, JsonValue] = {
        "deep_s": 6630.370,  # 6630370 ms * 10^-3
        "light_s": 14905.851,  # 14905851 ms * 10^-3
        "rem_s": 5879.573,  # 5879573 ms * 10^-3
        "awake_s": 1403.507,  # 1403507 ms * 10^-3
        "in_bed_s": 30272.735,  # 30272735 ms * 10^-3
        "efficiency": 91.69533848,  # sleep_efficiency_percentage, already %
    }  # "nap": false is not written: only a nap is marked
    check(got["sleep_session"], raw, value=asleep, unit="s", details=details, **own)
    check(got["sleep_duration"], raw, value=asleep, unit="s", **own)
    check(got["respiratory_rate"], raw, value=16.11328125, unit="/min", **own)


@needs_samples
@pytest.mark.parametrize("name", ["workout.single.json", "workout.collection.composed.json"])
def test_workout_sample_gives_one_workout_with_its_details(name: str) -> None:
    [raw], [result] = map_file("workout", name)
    assert (result.records_seen, result.rejections) == (1, [])
    [workout] = result.samples  # no active_energy / distance samples beside it
    assert workout.metric == "workout"
    check(
        workout,
        raw,
        value=8 * 3600,  # 02:25:44.774 to 10:25:44.774
        unit="s",
        start=START,
        end=END,
        offset=MINUS_5H,
        record_id=SLEEP_ID,  # the docs reuse one UUID for the workout and the sleep
        details={
            "sport": "running",  # sport_name; sport_id 1 (v1: cycling) is ignored
            "energy_kcal": 1569.34033203125 / 4.184,  # kJ / 4.184 = 375.08 kcal
            "distance_m": 1772.77035916,
            "avg_heart_rate": 123,
            "max_heart_rate": 146,
        },
    )


# --- edge cases (inline records) ------------------------------------------------------------------


@pytest.mark.parametrize("resource", ["cycle", "recovery", "sleep"])
@pytest.mark.parametrize("state", ["PENDING_SCORE", "UNSCORABLE"])
def test_an_unscored_record_yields_nothing_and_is_no_rejection(resource: str, state: str) -> None:
    record = scored(resource)
    record["score_state"] = state
    del record["score"]  # "score is present only when SCORED"
    result = map_payload(envelope(resource, record))
    assert (result.samples, result.records_seen, result.rejections) == ([], 1, [])


def test_an_unscored_workout_is_still_a_workout_with_its_sport_only() -> None:
    record = scored("workout")
    record["score_state"] = "PENDING_SCORE"
    del record["score"]
    result = map_payload(envelope("workout", record))
    [workout] = result.samples
    assert result.rejections == []
    assert workout.value == 8 * 3600  # its duration is its start/end, not a score
    assert workout.details == {"sport": "running"}


def test_the_cycle_in_progress_yields_nothing_until_it_ends() -> None:
    record = scored("cycle")
    del record["end"]  # "If not present, the user is currently in this cycle"
    result = map_payload(envelope("cycle", record))
    assert (result.samples, result.records_seen, result.rejections) == ([], 1, [])


def test_a_nap_is_a_session_and_a_duration_marked_nap() -> None:
    record = scored("sleep")
    record["nap"] = True
    got = by_metric(map_payload(envelope("sleep", record)).samples)
    assert got["sleep_session"].details is not None
    assert got["sleep_session"].details["nap"] is True
    assert got["sleep_duration"].value == pytest.approx(27415.794)
    assert got["sleep_duration"].details is None


def test_a_calibrating_recovery_score_is_doubtful_but_its_measurements_are_not() -> None:
    record = scored("recovery")
    record["score"]["user_calibrating"] = True
    got = by_metric(map_payload(envelope("recovery", record)).samples)
    assert got["recovery"].quality == 0.5
    assert "user_calibrating" in str(got["recovery"].quality_reason)
    assert got["hrv_rmssd"].quality == 0.9


def test_a_recovery_without_spo2_and_skin_temperature_maps_the_rest() -> None:
    record = scored("recovery")  # WHOOP 3.0: no spo2 / skin temperature [API]
    del record["score"]["spo2_percentage"], record["score"]["skin_temp_celsius"]
    result = map_payload(envelope("recovery", record))
    assert {s.metric for s in result.samples} == {"recovery", "resting_heart_rate", "hrv_rmssd"}


@pytest.mark.parametrize(("text", "seconds"), [("Z", 0), ("+05:30", 19800), ("-03:00", -10800)])
def test_timezone_offset_becomes_the_utc_offset(text: str, seconds: int) -> None:
    record = scored("workout")
    record["timezone_offset"] = text
    [workout] = map_payload(envelope("workout", record)).samples
    assert workout.utc_offset_s == seconds
    assert workout.start == START  # the times themselves stay UTC


@pytest.mark.parametrize(
    ("name", "sport"),
    [("Functional Fitness", "functional_fitness"), ("Hiking/Rucking", "hiking_rucking")],
)
def test_the_sport_name_is_lower_snake_case(name: str, sport: str) -> None:
    record = scored("workout")
    record["sport_name"] = name
    [workout] = map_payload(envelope("workout", record)).samples
    assert workout.details is not None and workout.details["sport"] == sport


def _set(record: Record, path: str, value: object) -> None:
    *parents, last = path.split(".")
    for part in parents:
        record = record[part]
    if value is _DROP:
        del record[last]
    else:
        record[last] = value


_DROP = object()


@pytest.mark.parametrize(
    ("resource", "path", "value", "reason"),
    [
        ("cycle", "start", _DROP, "start: missing"),
        ("cycle", "timezone_offset", "EST", "timezone_offset"),
        ("cycle", "score.strain", "high", "strain: 'high' is not a number"),
        ("cycle", "score", _DROP, "score: missing although score_state is SCORED"),
        ("cycle", "score_state", "DONE", "score_state: 'DONE'"),
        ("recovery", "created_at", "yesterday", "created_at: 'yesterday' is not an ISO 8601"),
        ("recovery", "sleep_id", _DROP, "sleep_id: missing"),
        ("recovery", "score.hrv_rmssd_milli", None, "hrv_rmssd_milli: None is not a number"),
        ("sleep", "score.stage_summary.total_rem_sleep_time_milli", _DROP, "total_rem_sleep"),
        ("sleep", "end", "2022-04-24T01:00:00.000Z", "ends before it starts"),
        ("workout", "sport_name", _DROP, "sport_name: missing"),
        ("workout", "id", _DROP, "id: missing"),
    ],
)
def test_a_malformed_record_is_rejected_with_its_reason(
    resource: str, path: str, value: object, reason: str
) -> None:
    record = scored(resource)
    _set(record, path, value)
    result = map_payload(envelope(resource, record))
    assert (result.samples, result.records_seen) == ([], 1)
    [rejection] = result.rejections
    assert reason in rejection.reason
    assert rejection.where.startswith(resource)


def test_a_malformed_record_is_rejected_alone_and_the_others_of_its_page_map() -> None:
    page = [scored("sleep") for _ in range(3)]
    for index, record in enumerate(page):
        record["id"] = f"00000000-0000-0000-0000-00000000000{index}"
    page[1]["timezone_offset"] = None
    results = [map_payload(envelope("sleep", record)) for record in page]
    assert [len(r.samples) for r in results] == [3, 0, 3]
    assert [r.records_rejected for r in results] == [0, 1, 0]
    assert results[1].rejections[0].where == "sleep id=00000000-0000-0000-0000-000000000001"


def test_an_unknown_resource_is_unmappable() -> None:
    with pytest.raises(UnmappablePayload, match="'body_measurement'"):
        map_payload(envelope("body_measurement", {"weight_kilogram": 90.7}))


def test_a_payload_that_is_not_a_record_is_unmappable() -> None:
    raw = envelope("cycle", scored("cycle")).model_copy(update={"payload": [1, 2]})
    with pytest.raises(UnmappablePayload, match="not a record"):
        map_payload(raw)


@pytest.mark.parametrize("resource", ["cycle", "recovery", "sleep", "workout"])
def test_mapping_twice_gives_identical_samples(resource: str) -> None:
    raw = envelope(resource, scored(resource))
    assert map_payload(raw).samples == map_payload(raw).samples


@pytest.mark.parametrize("resource", ["cycle", "recovery", "sleep", "workout"])
def test_a_rescored_record_updates_the_same_samples(resource: str) -> None:
    first = map_payload(envelope(resource, scored(resource))).samples
    record = scored(resource)
    record["updated_at"] = "2022-04-25T09:00:00.000Z"
    for field, value in record["score"].items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            record["score"][field] = value + 1
    again = map_payload(envelope(resource, record)).samples
    assert [s.id for s in again] == [s.id for s in first]
    assert [(s.value, s.details) for s in again] != [(s.value, s.details) for s in first]


# --- deletions (the tombstone of a signed `*.deleted` webhook) ------------------------------------


def tombstone(resource: str, record_id: JsonValue) -> RawPayloadReceived:
    """As the connector publishes a signed `<resource>.deleted` event of WHOOP's."""
    event: JsonValue = {"user_id": 10129, "id": record_id, "type": f"{resource}.deleted"}
    payload: JsonValue = {"resource": resource, "id": record_id, "event": event}
    return RawPayloadReceived(
        id=raw_event_id("whoop", USER, "deleted", f"{resource}:{record_id}"),
        user_id=USER,
        source="whoop",
        resource="deleted",
        fetched_at=FETCHED,
        payload=payload,
    )


@pytest.mark.parametrize("resource", ["sleep", "workout", "recovery"])
def test_a_deletion_withdraws_exactly_the_record_id_its_samples_carry(resource: str) -> None:
    record = scored(resource)
    # WHOOP names a deleted recovery by its sleep's UUID (v2), a sleep or workout by its own.
    record_id = record["sleep_id"] if resource == "recovery" else record["id"]
    samples = map_payload(envelope(resource, record)).samples
    assert samples and {s.source_record_id for s in samples} == {record_id}
    result = map_payload(tombstone(resource, record_id))
    assert result == MappingResult(records_seen=1, withdrawals=[Withdrawal(record_id)])


def test_a_night_deleted_as_sleep_or_as_recovery_withdraws_the_samples_of_both() -> None:
    sleep, recovery = scored("sleep"), scored("recovery")
    recovery["sleep_id"] = sleep["id"]  # the recovery scored from this sleep
    carried = {
        s.source_record_id
        for resource, record in (("sleep", sleep), ("recovery", recovery))
        for s in map_payload(envelope(resource, record)).samples
    }
    assert carried == {SLEEP_ID}
    for resource in ("sleep", "recovery"):
        assert map_payload(tombstone(resource, SLEEP_ID)).withdrawals == [Withdrawal(SLEEP_ID)]


@pytest.mark.parametrize(
    "payload",
    [
        {"resource": "sleep"},
        {"resource": "sleep", "id": ""},
        {"resource": "sleep", "id": None},
        {"resource": "workout", "id": 10235},  # the connector sends ids as text
        {"resource": "body_measurement", "id": SLEEP_ID},
        {"resource": ["sleep"], "id": SLEEP_ID},
        {"id": SLEEP_ID},
        [SLEEP_ID],
    ],
)
def test_a_deletion_without_a_usable_record_is_unmappable(payload: JsonValue) -> None:
    raw = tombstone("sleep", SLEEP_ID).model_copy(update={"payload": payload})
    with pytest.raises(UnmappablePayload, match="deleted"):
        map_payload(raw)
