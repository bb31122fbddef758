"""Withings documents for one day, shaped like samples/withings/*.json (values generated).

Measures are `{"value", "unit", "type"}` meaning value * 10^unit, with the unit varying between
records as it does for real; every instant is epoch seconds, summaries carry a local `date`.
"""

import random
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from healthmesh.simulator.synth import (
    AWAKE,
    DEEP,
    LIGHT,
    REM,
    DayPlan,
    Night,
    Person,
    Weighing,
    Workout,
    day_bounds,
    day_plan,
    local_at,
    person,
    render_rng,
    rng_hex,
    stable_int,
)

Doc = dict[str, Any]
WEIGHT, FAT_FREE, FAT_RATIO, FAT_MASS, DIASTOLIC, SYSTOLIC, PULSE = 1, 5, 6, 8, 9, 10, 11
MUSCLE, HYDRATION, BONE = 76, 77, 88
CATEGORY = {  # Withings workout category ids
    "walking": 1,
    "running": 2,
    "hiking": 3,
    "cycling": 6,
    "swimming": 7,
    "strength_training": 16,
}


@dataclass(frozen=True)
class Rec:
    at: float  # when the document exists
    modified: float
    doc: Doc


@dataclass(frozen=True)
class WithingsDay:
    groups: tuple[Rec, ...]  # measure groups
    activity: Rec
    sleep: Rec
    workouts: tuple[Rec, ...]


def withings_userid(seed: int, user: str) -> str:
    return str(10_000_000 + stable_int(seed, "withings-user", user) % 89_999_999)


def _devices(seed: int, user: str) -> dict[str, str]:
    rng = random.Random(f"{seed}:withings-devices:{user}")  # noqa: S311 - not crypto
    return {name: rng_hex(rng) for name in ("scale", "bpm", "watch", "sleep")}


def measure(value: float, unit: int, kind: int, algo: int = 3, fm: int = 131) -> Doc:
    return {"value": round(value / 10**unit), "type": kind, "unit": unit, "algo": algo, "fm": fm}


@lru_cache(maxsize=4096)
def withings_day(seed: int, user: str, day: date) -> WithingsDay:
    p = person(seed, user)
    plan = day_plan(seed, "withings", user, day)
    rng = render_rng(seed, "withings", user, day)
    devices = _devices(seed, user)
    groups = []
    if plan.weighing is not None:
        groups.append(_body(rng, p, plan.weighing, devices["scale"]))
    if rng.random() < 0.2:
        groups.append(_blood_pressure(rng, p, day, devices["bpm"]))
    return WithingsDay(
        groups=tuple(groups),
        activity=_activity(rng, p, day, plan.activity.steps, plan, devices["watch"]),
        sleep=_summary(rng, p, plan.night),
        workouts=tuple(_workout(rng, p, w, devices["watch"]) for w in plan.workouts),
    )


def _group(
    rng: random.Random, p: Person, at: float, attrib: int, device: str | None, measures: list[Doc]
) -> Rec:
    created = at + rng.randint(5, 120)
    return Rec(
        created,
        created,
        {
            "grpid": stable_int(p.user, at, attrib, bits=32),
            "attrib": attrib,
            "date": int(at),
            "created": int(created),
            "modified": int(created),
            "category": 1,
            "deviceid": device,
            "hash_deviceid": device,
            "measures": measures,
            "comment": None,
            "timezone": p.tz_name,
        },
    )


def _body(rng: random.Random, p: Person, w: Weighing, device: str) -> Rec:
    at = w.at.timestamp()
    if rng.random() < 0.1:  # typed into the app: no device, ambiguous attribution
        manual = measure(w.weight_kg, -2, WEIGHT, algo=0, fm=128)
        manual.update(apppfmid=7, appliver=5_070_201)
        return _group(rng, p, at, 2, None, [manual])
    unit = -3 if rng.random() < 0.8 else -2
    return _group(
        rng,
        p,
        at,
        0,
        device,
        [
            measure(w.weight_kg, unit, WEIGHT),
            measure(w.lean_kg, -3, FAT_FREE),
            measure(w.fat_pct, -3, FAT_RATIO),
            measure(w.fat_kg, -3, FAT_MASS),
            measure(w.lean_kg * 0.94, -2, MUSCLE),
            measure(w.lean_kg * 0.72, -2, HYDRATION),
            measure(w.lean_kg * 0.052, -2, BONE),
        ],
    )


def _blood_pressure(rng: random.Random, p: Person, day: date, device: str) -> Rec:
    at = local_at(day, p.tz, 19 * 60 + rng.randint(0, 180)).timestamp()
    systolic = rng.randint(108, 138)
    return _group(
        rng,
        p,
        at,
        0,
        device,
        [
            measure(systolic - rng.randint(35, 50), 0, DIASTOLIC, algo=0, fm=3),
            measure(systolic, 0, SYSTOLIC, algo=0, fm=3),
            measure(p.resting_hr + rng.randint(5, 20), 0, PULSE, algo=0, fm=3),
        ],
    )


def _activity(
    rng: random.Random, p: Person, day: date, steps: int, plan: DayPlan, device: str
) -> Rec:
    soft = moderate = intense = 0
    for bout in plan.activity.bouts:
        for count in bout.steps:
            if count < 95:
                soft += 60
            elif count < 110:
                moderate += 60
            else:
                intense += 60
    for w in plan.workouts:
        intense += w.duration_s // 2
        moderate += w.duration_s - w.duration_s // 2
    start, end = day_bounds(day, p.tz)
    modified = end + rng.randint(60, 3600)
    return Rec(
        start,
        modified,
        {
            "steps": steps,
            "distance": round(steps * p.stride_m, 3),
            "elevation": round(rng.uniform(0, 40), 3),
            "soft": soft,
            "moderate": moderate,
            "intense": intense,
            "active": moderate + intense,
            "calories": round(float(plan.activity.active_kcal), 3),
            "totalcalories": round(
                float(plan.activity.active_kcal + plan.activity.resting_kcal), 3
            ),
            "deviceid": device,
            "hash_deviceid": device,
            "timezone": p.tz_name,
            "date": day.isoformat(),
            "brand": 18,
            "is_tracker": True,
        },
    )


def _summary(rng: random.Random, p: Person, night: Night) -> Rec:
    end = night.end.timestamp()
    asleep = night.asleep_s
    wakeups = night.epochs.count(LIGHT + AWAKE) + night.epochs.count(REM + AWAKE)
    modified = end + rng.randint(300, 3600)
    data = {
        "apnea_hypopnea_index": rng.randint(0, 8),
        "asleepduration": asleep,
        "breathing_disturbances_intensity": rng.randint(0, 30),
        "deepsleepduration": night.seconds(DEEP),
        "durationtosleep": night.latency_s,
        "durationtowakeup": rng.randint(0, 900),
        "hr_average": round(night.avg_hr),
        "hr_max": round(night.avg_hr) + rng.randint(8, 25),
        "hr_min": night.lowest_hr,
        "lightsleepduration": night.seconds(LIGHT),
        "nb_rem_episodes": max(1, night.epochs.count(LIGHT + REM)),
        "night_events": [],
        "out_of_bed_count": rng.randint(0, 2),
        "remsleepduration": night.seconds(REM),
        "rr_average": round(night.breath),
        "rr_max": round(night.breath) + rng.randint(2, 5),
        "rr_min": round(night.breath) - rng.randint(2, 4),
        "sleep_efficiency": round(asleep / night.in_bed_s, 2),
        "sleep_latency": night.latency_s,
        "sleep_score": rng.randint(50, 95),
        "snoring": rng.randint(0, 1800),
        "snoringepisodecount": rng.randint(0, 12),
        "total_sleep_time": asleep,
        "total_timeinbed": night.in_bed_s,
        "wakeup_latency": rng.randint(0, 600),
        "wakeupcount": wakeups,
        "wakeupduration": night.seconds(AWAKE),
        "waso": max(0, night.seconds(AWAKE) - night.latency_s),
    }
    return Rec(
        end,
        modified,
        {
            "timezone": p.tz_name,
            "model": 32,
            "model_id": 63,
            "startdate": int(night.start.timestamp()),
            "enddate": int(end),
            "date": night.day.isoformat(),
            "created": int(modified),
            "modified": int(modified),
            "data": data,
        },
    )


def _workout(rng: random.Random, p: Person, w: Workout, device: str) -> Rec:
    start, end = w.start.timestamp(), w.end.timestamp()
    zones = [rng.randint(0, w.duration_s // 4) for _ in range(4)]
    return Rec(
        end,
        end + 120,
        {
            "category": CATEGORY[w.sport],
            "timezone": p.tz_name,
            "model": 93,
            "attrib": 0,
            "startdate": int(start),
            "enddate": int(end),
            "date": w.start.date().isoformat(),
            "modified": int(end + 120),
            "deviceid": device,
            "data": {
                "algo_pause_duration": 0,
                "calories": round(w.kcal),
                "distance": round(w.distance_m or 0),
                "elevation": round(w.elevation_gain_m),
                "hr_average": w.avg_hr,
                "hr_max": w.max_hr,
                "hr_min": p.resting_hr + 15,
                "hr_zone_0": zones[0],
                "hr_zone_1": zones[1],
                "hr_zone_2": zones[2],
                "hr_zone_3": zones[3],
                "intensity": rng.randint(20, 90),
                "manual_calories": 0,
                "manual_distance": 0,
                "pause_duration": 0,
                "pool_laps": 0,
                "pool_length": 0,
                "spo2_average": None,
                "steps": int((w.distance_m or 0) / p.stride_m) if w.sport != "cycling" else 0,
                "strokes": 0,
            },
        },
    )
