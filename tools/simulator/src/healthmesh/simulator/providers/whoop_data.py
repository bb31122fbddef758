"""WHOOP v2 records for one day, shaped like samples/whoop/*.json (values generated).

A cycle (physiological day) starts when the user falls asleep and ends at the next sleep onset;
its recovery comes from that first sleep. `v1_id` and `sport_id` are left out: WHOOP documents
them as gone after 2025-09-01.
"""

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from healthmesh.simulator.synth import (
    AWAKE,
    DEEP,
    EPOCH_DAY,
    LIGHT,
    REM,
    Night,
    Person,
    Workout,
    day_plan,
    iso_utc,
    person,
    render_rng,
    rng_uuid,
    stable_int,
)

Doc = dict[str, Any]
SPORT = {
    "running": "running",
    "cycling": "cycling",
    "walking": "walking",
    "swimming": "swimming",
    "strength_training": "weightlifting",
    "hiking": "hiking/rucking",
}


@dataclass(frozen=True)
class Rec:
    start: float
    end: float  # the cycle's end may lie in the future: then the cycle is the current one
    doc: Doc


@dataclass(frozen=True)
class WhoopDay:
    cycle: Rec
    recovery: Rec
    sleep: tuple[Rec, ...]
    workout: tuple[Rec, ...]


def whoop_user_id(seed: int, user: str) -> int:
    return 10_000 + stable_int(seed, "whoop-user", user) % 90_000_000


def cycle_id(seed: int, user: str, day: date) -> int:
    return (1000 + stable_int(seed, "whoop-cycle", user) % 9000) * 100_000 + (day - EPOCH_DAY).days


def day_of_cycle(seed: int, user: str, cycle: int) -> date | None:
    base = (1000 + stable_int(seed, "whoop-cycle", user) % 9000) * 100_000
    offset = cycle - base
    return EPOCH_DAY + timedelta(days=offset) if 0 <= offset < 100_000 else None


def offset_text(moment: datetime) -> str:
    text = moment.isoformat()[-6:]
    return "Z" if text == "+00:00" else text


def _stamps(rng: random.Random, start: float, end: float) -> Doc:
    created = end + rng.randint(60, 300) + rng.random()
    return {
        "created_at": iso_utc(created, ms=True),
        "updated_at": iso_utc(created + rng.randint(0, 500), ms=True),
        "start": iso_utc(start, ms=True),
        "end": iso_utc(end, ms=True),
    }


@lru_cache(maxsize=4096)
def whoop_day(seed: int, user: str, day: date) -> WhoopDay:
    p = person(seed, user)
    plan = day_plan(seed, "whoop", user, day)
    tomorrow = day_plan(seed, "whoop", user, day + timedelta(days=1))
    rng = render_rng(seed, "whoop", user, day)
    uid = whoop_user_id(seed, user)
    cid = cycle_id(seed, user, day)
    night = plan.night
    sleep = _sleep(rng, p, night, uid, cid, nap=False)
    start, end = night.start.timestamp(), tomorrow.night.start.timestamp()
    kilojoule = (plan.activity.resting_kcal + plan.activity.active_kcal) * 4.184
    cycle = {
        "id": cid,
        "user_id": uid,
        **_stamps(rng, start, end),
        "timezone_offset": offset_text(night.start),
        "score_state": "SCORED",
        "score": {
            "strain": round(rng.uniform(4, 19), 7),
            "kilojoule": round(kilojoule + rng.uniform(0, 50), 3),
            "average_heart_rate": p.resting_hr + rng.randint(12, 25),
            "max_heart_rate": max([w.max_hr for w in plan.workouts] or [p.resting_hr + 70]),
        },
    }
    recovery = {
        "cycle_id": cid,
        "sleep_id": sleep.doc["id"],
        "user_id": uid,
        "created_at": sleep.doc["created_at"],
        "updated_at": sleep.doc["updated_at"],
        "score_state": "SCORED",
        "score": {
            "user_calibrating": False,
            "recovery_score": rng.randint(15, 99),
            "resting_heart_rate": night.lowest_hr + 2,
            "hrv_rmssd_milli": round(night.avg_hrv + rng.gauss(0, 4), 6),
            "spo2_percentage": round(night.spo2, 4),
            "skin_temp_celsius": round(rng.uniform(32.8, 34.4), 2),
        },
    }
    if rng.random() < 0.02:
        del recovery["score"]
        recovery["score_state"] = "UNSCORABLE"
    return WhoopDay(
        cycle=Rec(start, end, cycle),
        recovery=Rec(start, night.end.timestamp(), recovery),
        sleep=(sleep,),
        workout=tuple(_workout(rng, p, w, uid) for w in plan.workouts),
    )


def _sleep(rng: random.Random, p: Person, night: Night, uid: int, cid: int, nap: bool) -> Rec:
    start, end = night.start.timestamp(), night.end.timestamp()
    in_bed = night.in_bed_s * 1000
    asleep = night.asleep_s
    need = int(rng.gauss(8.0, 0.4) * 3_600_000)
    doc = {
        "id": rng_uuid(rng),
        "cycle_id": cid,
        "user_id": uid,
        **_stamps(rng, start, end),
        "timezone_offset": offset_text(night.start),
        "nap": nap,
        "score_state": "SCORED",
        "score": {
            "stage_summary": {
                "total_in_bed_time_milli": in_bed,
                "total_awake_time_milli": night.seconds(AWAKE) * 1000,
                "total_no_data_time_milli": 0,
                "total_light_sleep_time_milli": night.seconds(LIGHT) * 1000,
                "total_slow_wave_sleep_time_milli": night.seconds(DEEP) * 1000,
                "total_rem_sleep_time_milli": night.seconds(REM) * 1000,
                "sleep_cycle_count": max(1, night.epochs.count(REM + AWAKE) + 2),
                "disturbance_count": night.epochs.count(AWAKE),
            },
            "sleep_needed": {
                "baseline_milli": need,
                "need_from_sleep_debt_milli": rng.randint(0, 900_000),
                "need_from_recent_strain_milli": rng.randint(0, 600_000),
                "need_from_recent_nap_milli": -rng.randint(0, 30_000),
            },
            "respiratory_rate": night.breath,
            "sleep_performance_percentage": min(100, round(100 * asleep * 1000 / need)),
            "sleep_consistency_percentage": rng.randint(55, 98),
            "sleep_efficiency_percentage": round(100 * asleep * 1000 / in_bed, 8),
        },
    }
    if rng.random() < 0.02:
        del doc["score"]
        doc["score_state"] = "UNSCORABLE"
    return Rec(start, end, doc)


def _workout(rng: random.Random, p: Person, w: Workout, uid: int) -> Rec:
    start, end = w.start.timestamp(), w.end.timestamp()
    zones = [rng.random() for _ in range(6)]
    total = sum(zones)
    milli = [int(w.duration_s * 1000 * z / total) for z in zones]
    names = ("zero", "one", "two", "three", "four", "five")
    doc = {
        "id": rng_uuid(rng),
        "user_id": uid,
        **_stamps(rng, start, end),
        "timezone_offset": offset_text(w.start),
        "sport_name": SPORT[w.sport],
        "score_state": "SCORED",
        "score": {
            "strain": round(rng.uniform(3, 17), 4),
            "average_heart_rate": w.avg_hr,
            "max_heart_rate": w.max_hr,
            "kilojoule": round(w.kcal * 4.184, 10),
            "percent_recorded": 100 if rng.random() < 0.9 else rng.randint(60, 99),
            "distance_meter": w.distance_m,
            "altitude_gain_meter": w.elevation_gain_m,
            "altitude_change_meter": round(rng.uniform(-2, 2), 12),
            "zone_durations": {f"zone_{n}_milli": m for n, m in zip(names, milli, strict=True)},
        },
    }
    if w.distance_m is None:
        for key in ("distance_meter", "altitude_gain_meter", "altitude_change_meter"):
            del doc["score"][key]
    return Rec(start, end, doc)


def as_of(rec: Rec, now: float) -> Doc:
    """The record as WHOOP shows it at `now`: the current cycle has no `end` yet, and a record
    that just ended is still PENDING_SCORE."""
    if rec.end > now:
        doc = {k: v for k, v in rec.doc.items() if k != "end"}
        doc["created_at"] = iso_utc(min(now, rec.start + 60), ms=True)
        doc["updated_at"] = iso_utc(now, ms=True)
        return doc
    if now - rec.end < 900:
        doc = {k: v for k, v in rec.doc.items() if k != "score"}
        doc["score_state"] = "PENDING_SCORE"
        doc["created_at"] = doc["updated_at"] = iso_utc(now, ms=True)
        return doc
    return rec.doc


def parse_time(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
