"""WHOOP API v2 records to unified samples (sources [API] etc.: reference/providers/whoop.md).

The connector publishes one envelope per record of `records[]`: resources `cycle`, `recovery`,
`sleep` and `workout`, each payload the record exactly as WHOOP returns it; and for a signed
`*.deleted` webhook a tombstone, resource `deleted`, payload `{"resource", "id", "event"}`.

Quirks kept here, and why:
- Times are UTC (`...Z`) with the member's offset beside them in `timezone_offset` (`+hh:mm`,
  `-hh:mm` or `Z`) [API]; that offset is the sample's `utc_offset_s`.
- `score` is present only when `score_state` is SCORED; PENDING_SCORE and UNSCORABLE records
  carry no values and yield nothing (not a rejection) [API].
- Energy is in kilojoules, sleep stages in milliseconds, strain on WHOOP's 0-21 scale [API].
- A cycle is WHOOP's physiological day, from one sleep onset to the next, not a calendar day
  [API "Cycle"]: its samples cover its own [start, end). The cycle in progress has no `end` and a
  growing strain: it yields nothing until it closes, because a provisional end would give its
  samples another natural key and leave a stale copy behind when the real end arrives.
- A recovery has no id, no times and no offset of its own [API "Recovery"]: its samples are
  instants at `created_at` (when WHOOP recorded it, on waking), with offset 0 and quality 0.9
  ("local offset unknown"). Their record id is the recovery's `sleep_id`, because that is what
  `recovery.deleted` names (v2 [WH]); the sleep's own samples share it, so deleting either the
  sleep or its recovery withdraws the night's samples of both (the recovery is scored from that
  sleep). The connector still keys the raw event by `cycle_id`.
- A tombstone withdraws every sample with the deleted record's id: sleep and workout UUIDs, and
  for a recovery the sleep UUID, as the event carries them.
"""

import math
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.common.units import to_canonical
from healthmesh.normalizer.mapping import (
    BadRecord,
    MappingResult,
    Sample,
    UnmappablePayload,
    map_records,
    measurement,
    tombstone,
)

_UNSCORED = ("PENDING_SCORE", "UNSCORABLE")
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_NOT_WORD = re.compile(r"[^a-z0-9]+")
_NO_OFFSET = "local offset unknown"
_CALIBRATING = "WHOOP still calibrating the recovery score (user_calibrating); " + _NO_OFFSET

Record = dict[str, Any]
RecordMapper = Callable[[RawPayloadReceived, Record], list[Sample]]


def map_payload(envelope: RawPayloadReceived) -> MappingResult:
    """One WHOOP record per envelope, mapped by its resource."""
    if envelope.resource == "deleted":
        return tombstone(envelope, _MAPPERS)
    mapper = _MAPPERS.get(envelope.resource)
    if mapper is None:
        raise UnmappablePayload(f"whoop resource {envelope.resource!r} has no mapper")
    record = envelope.payload
    if not isinstance(record, dict):
        raise UnmappablePayload(f"whoop {envelope.resource} payload is not a record object")
    key = "cycle_id" if envelope.resource == "recovery" else "id"
    where = f"{envelope.resource} {key}={record.get(key)}"
    return map_records([(where, record)], lambda r: mapper(envelope, r))


# --- resources -----------------------------------------------------------------------------------


def _cycle(envelope: RawPayloadReceived, record: Record) -> list[Sample]:
    """Day strain, energy and mean heart rate over the physiological cycle."""
    cycle_id = _id(record, "id")
    start, offset = _time(record, "start"), _offset(record)
    score = _score(record)
    if record.get("end") is None:
        return []  # in progress: strain still growing, end unknown (see module docstring)
    end = _time(record, "end")
    if score is None:
        return []

    def sample(metric: str, field: str, unit: str) -> Sample:
        return measurement(
            envelope,
            metric=metric,
            value=_required(score, field),
            unit=unit,
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field=f"score.{field}",
            source_record_id=cycle_id,
        )

    return [
        sample("strain", "strain", "score"),  # WHOOP's own 0-21 scale [API CycleScore]
        # WHOOP calories are BMR plus a heart-rate term (support: "How does WHOOP calculate
        # calories burned?"), so the cycle's kilojoules are the total, not the active, energy.
        sample("total_energy", "kilojoule", "kJ"),
        sample("heart_rate", "average_heart_rate", "bpm"),
    ]


def _recovery(envelope: RawPayloadReceived, record: Record) -> list[Sample]:
    """Recovery score, resting HR, HRV (RMSSD), SpO2 and skin temperature of one night."""
    sleep_id = _id(record, "sleep_id")  # no id of its own; recovery.deleted names the sleep
    at = _time(record, "created_at")  # no start/end of its own; updated_at moves, created_at not
    score = _score(record)
    if score is None:
        return []
    calibrating = score.get("user_calibrating") is True

    def sample(metric: str, field: str, unit: str, value: float) -> Sample:
        doubtful = calibrating and metric == "recovery"  # the score, not the measurements
        return measurement(
            envelope,
            metric=metric,
            value=value,
            unit=unit,
            start=at,
            end=at,
            utc_offset_s=0,  # the recovery carries no timezone_offset [API Recovery]
            source_field=f"score.{field}",
            source_record_id=sleep_id,
            quality=0.5 if doubtful else 0.9,
            quality_reason=_CALIBRATING if doubtful else _NO_OFFSET,
        )

    samples = [
        sample("recovery", "recovery_score", "score", _required(score, "recovery_score")),
        sample(
            "resting_heart_rate",
            "resting_heart_rate",
            "bpm",
            _required(score, "resting_heart_rate"),
        ),
        sample("hrv_rmssd", "hrv_rmssd_milli", "ms", _required(score, "hrv_rmssd_milli")),
    ]
    # SpO2 and skin temperature exist only for WHOOP 4.0 members [API RecoveryScore].
    spo2 = _optional(score, "spo2_percentage")
    if spo2 is not None:
        samples.append(sample("spo2", "spo2_percentage", "%", spo2))
    skin = _optional(score, "skin_temp_celsius")
    if skin is not None:
        samples.append(sample("skin_temperature", "skin_temp_celsius", "celsius", skin))
    return samples


def _sleep(envelope: RawPayloadReceived, record: Record) -> list[Sample]:
    """A sleep or nap: session + duration (seconds asleep) and its respiratory rate."""
    sleep_id = _id(record, "id")
    start, end, offset = _time(record, "start"), _time(record, "end"), _offset(record)
    nap = record.get("nap")
    if not isinstance(nap, bool):
        raise BadRecord(f"nap: {nap!r} is not a boolean")
    score = _score(record)
    if score is None:
        return []
    stages = score.get("stage_summary")
    if not isinstance(stages, dict):
        raise BadRecord("score.stage_summary: missing")
    light = _required(stages, "total_light_sleep_time_milli")
    deep = _required(stages, "total_slow_wave_sleep_time_milli")  # slow wave = deep
    rem = _required(stages, "total_rem_sleep_time_milli")
    details: dict[str, JsonValue] = {
        "deep_s": _seconds(deep),
        "light_s": _seconds(light),
        "rem_s": _seconds(rem),
    }
    awake = _optional(stages, "total_awake_time_milli")
    if awake is not None:
        details["awake_s"] = _seconds(awake)
    in_bed = _optional(stages, "total_in_bed_time_milli")
    if in_bed is not None:
        details["in_bed_s"] = _seconds(in_bed)
    efficiency = _optional(score, "sleep_efficiency_percentage")
    if efficiency is not None:
        details["efficiency"] = efficiency
    if nap:
        details["nap"] = True
    # Asleep = light + slow wave + REM; awake and "no data" time are in bed but not asleep.
    asleep_ms = light + deep + rem

    def sample(metric: str, value: float, unit: str, field: str) -> Sample:
        return measurement(
            envelope,
            metric=metric,
            value=value,
            unit=unit,
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field=field,
            source_record_id=sleep_id,
            details=details if metric == "sleep_session" else None,
        )

    stage_fields = "score.stage_summary"
    samples = [
        sample("sleep_session", asleep_ms, "ms", stage_fields),
        sample("sleep_duration", asleep_ms, "ms", stage_fields),
    ]
    breaths = _optional(score, "respiratory_rate")  # optional in SleepScore [API]
    if breaths is not None:
        samples.append(sample("respiratory_rate", breaths, "/min", "score.respiratory_rate"))
    return samples


def _workout(envelope: RawPayloadReceived, record: Record) -> list[Sample]:
    """One workout sample; energy, distance and heart rate go into its details only."""
    workout_id = _id(record, "id")
    start, end, offset = _time(record, "start"), _time(record, "end"), _offset(record)
    details: dict[str, JsonValue] = {"sport": _sport(record)}
    score = _score(record)
    if score is not None:
        # Gross kilojoules (BMR included), as WHOOP counts all its calories.
        kilojoule = _required(score, "kilojoule")
        details["energy_kcal"] = to_canonical("active_energy", kilojoule, "kJ")
        distance = _optional(score, "distance_meter")  # only with GPS [API WorkoutScore]
        if distance is not None:
            details["distance_m"] = to_canonical("distance", distance, "m")
        average = _required(score, "average_heart_rate")
        details["avg_heart_rate"] = to_canonical("heart_rate", average, "bpm")
        highest = _required(score, "max_heart_rate")
        details["max_heart_rate"] = to_canonical("heart_rate", highest, "bpm")
    # The duration comes from start/end, not from the score: an unscored workout still is one.
    return [
        measurement(
            envelope,
            metric="workout",
            value=(end - start).total_seconds(),
            unit="s",
            start=start,
            end=end,
            utc_offset_s=offset,
            source_field="start/end",
            source_record_id=workout_id,
            details=details,
        )
    ]


_MAPPERS: dict[str, RecordMapper] = {
    "cycle": _cycle,
    "recovery": _recovery,
    "sleep": _sleep,
    "workout": _workout,
}


# --- reading fields ------------------------------------------------------------------------------


def _id(record: Record, field: str) -> str:
    """Cycle ids are int64, sleep and workout ids UUIDs [MIG]; both become text."""
    value = record.get(field)
    if isinstance(value, bool) or not isinstance(value, int | str) or value == "":
        raise BadRecord(f"{field}: missing")
    return str(value)


def _time(record: Record, field: str) -> datetime:
    text = record.get(field)
    if not isinstance(text, str):
        raise BadRecord(f"{field}: missing")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRecord(f"{field}: {text!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise BadRecord(f"{field}: {text!r} has no UTC offset")
    return moment


def _offset(record: Record) -> int:
    """`timezone_offset`: '+hh:mm', '-hh:mm' or 'Z' [API], in seconds."""
    text = record.get("timezone_offset")
    if text == "Z":
        return 0
    match = _OFFSET.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise BadRecord(f"timezone_offset: {text!r} is not +hh:mm, -hh:mm or Z")
    sign = -1 if match.group(1) == "-" else 1
    return sign * (int(match.group(2)) * 3600 + int(match.group(3)) * 60)


def _score(record: Record) -> dict[str, Any] | None:
    """The score of a SCORED record; None while pending or when WHOOP could not score it."""
    state = record.get("score_state")
    if state in _UNSCORED:
        return None
    if state != "SCORED":
        raise BadRecord(f"score_state: {state!r} is not SCORED, PENDING_SCORE or UNSCORABLE")
    score = record.get("score")
    if not isinstance(score, dict):
        raise BadRecord("score: missing although score_state is SCORED")
    return score


def _required(values: dict[str, Any], field: str) -> float:
    """A finite number; anything else makes the record malformed."""
    value = values.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRecord(f"{field}: {value!r} is not a number")
    return value


def _optional(values: dict[str, Any], field: str) -> float | None:
    """A finite number, or None when the field is absent."""
    return None if values.get(field) is None else _required(values, field)


def _seconds(milliseconds: float) -> float:
    return to_canonical("sleep_duration", milliseconds, "ms")


def _sport(record: Record) -> str:
    """v2's `sport_name` (required) in lower_snake_case. `sport_id` is deprecated ("will not
    exist past 09/01/2025" [API]) and contradicts the name in the docs example, so it is unused."""
    name = record.get("sport_name")
    if not isinstance(name, str) or not name.strip():
        raise BadRecord("sport_name: missing")
    return _NOT_WORD.sub("_", name.strip().lower()).strip("_")
