"""Oura API v2 documents for one day, shaped like samples/oura/*.json (values generated).

Every document comes with `at`, the moment it exists (a night's documents once it ended), so the
routes never serve the future.
"""

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
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
    Workout,
    day_bounds,
    day_plan,
    heart_rate_at,
    local_at,
    person,
    render_rng,
    rng_uuid,
)

Doc = dict[str, Any]
PHASE = {DEEP: "1", LIGHT: "2", REM: "3", AWAKE: "4"}
ACTIVITY = {
    "running": "running",
    "cycling": "cycling",
    "walking": "walking",
    "swimming": "swimming",
    "strength_training": "strengthTraining",
    "hiking": "hiking",
}


@dataclass(frozen=True)
class Rec:
    at: float  # when the document exists
    doc: Doc


@dataclass(frozen=True)
class OuraDay:
    daily_activity: Rec
    daily_sleep: Rec
    daily_readiness: Rec
    daily_spo2: Rec
    sleep: tuple[Rec, ...]
    workout: tuple[Rec, ...]
    heartrate: tuple[Rec, ...]

    def collection(self, name: str) -> tuple[Rec, ...]:
        value = getattr(self, name)
        return value if isinstance(value, tuple) else (value,)


def _local(moment: datetime, ms: bool = False) -> str:
    return moment.isoformat(timespec="milliseconds" if ms else "seconds")


def _contributors(rng: random.Random, names: tuple[str, ...]) -> dict[str, int]:
    return {n: rng.randint(45, 100) for n in names}


@lru_cache(maxsize=4096)
def oura_day(seed: int, user: str, day: date) -> OuraDay:
    p = person(seed, user)
    plan = day_plan(seed, "oura", user, day)
    tomorrow = day_plan(seed, "oura", user, day + timedelta(days=1))
    rng = render_rng(seed, "oura", user, day)
    night = plan.night
    readiness_score = rng.randint(55, 97)
    readiness = {
        "contributors": _contributors(
            rng,
            (
                "activity_balance",
                "body_temperature",
                "hrv_balance",
                "previous_day_activity",
                "previous_night",
                "recovery_index",
                "resting_heart_rate",
                "sleep_balance",
            ),
        ),
        "score": readiness_score,
        "temperature_deviation": round(rng.gauss(0, 0.25), 2),
        "temperature_trend_deviation": round(rng.gauss(0, 0.15), 2),
    }
    midnight = f"{day.isoformat()}T00:00:00+00:00"
    night_end = night.end.timestamp()
    sleeps = [Rec(night_end, _sleep(rng, night, "long_sleep", 0, readiness))]
    if rng.random() < 0.15:
        sleeps.append(_nap(rng, p, day, readiness))
    return OuraDay(
        daily_activity=Rec(
            day_bounds(day, p.tz)[0], _daily_activity(rng, p, day, plan, tomorrow.night)
        ),
        daily_sleep=Rec(
            night_end,
            {
                "id": rng_uuid(rng),
                "contributors": _contributors(
                    rng,
                    (
                        "deep_sleep",
                        "efficiency",
                        "latency",
                        "rem_sleep",
                        "restfulness",
                        "timing",
                        "total_sleep",
                    ),
                ),
                "day": day.isoformat(),
                "score": rng.randint(55, 95),
                "timestamp": midnight,
            },
        ),
        daily_readiness=Rec(
            night_end,
            {"id": rng_uuid(rng), **readiness, "day": day.isoformat(), "timestamp": midnight},
        ),
        daily_spo2=Rec(
            night_end,
            {
                "id": rng_uuid(rng),
                "day": day.isoformat(),
                "spo2_percentage": {"average": night.spo2},
                "breathing_disturbance_index": rng.randint(0, 25),
            },
        ),
        sleep=tuple(sleeps),
        workout=tuple(_workout(rng, p, w) for w in plan.workouts),
        heartrate=tuple(_heartrate(rng, p, day, plan, tomorrow.night)),
    )


def _daily_activity(
    rng: random.Random, p: Person, day: date, plan: DayPlan, next_night: Night
) -> Doc:
    """Oura's activity day runs 04:00 to 04:00 local: `met` per minute, `class_5_min` per 5."""
    start = local_at(day, p.tz, 4 * 60)
    first_minute = int(start.timestamp()) // 60
    walking = {int(m.timestamp()) // 60 for m, _ in plan.activity.minutes()}
    steps_at = {int(m.timestamp()) // 60: n for m, n in plan.activity.minutes()}
    busy = [(w.start.timestamp() // 60, w.end.timestamp() // 60) for w in plan.workouts]
    awake_from, asleep_from = plan.night.end.timestamp() // 60, next_night.start.timestamp() // 60
    met: list[float] = []
    for minute in range(first_minute, first_minute + 1440):
        if any(a <= minute < b for a, b in busy):
            met.append(round(rng.uniform(5.5, 10.5), 1))
        elif minute in walking:
            met.append(round(2.2 + steps_at[minute] / 60, 1))
        elif minute < awake_from or minute >= asleep_from:
            met.append(0.9)
        else:
            met.append(rng.choice((0.9, 1.0, 1.1, 1.2, 1.3, 1.5, 1.9)))
    classes = []
    for slot in range(288):
        peak = max(met[slot * 5 : slot * 5 + 5])
        klass = "1" if peak < 1.0 else "2" if peak < 1.5 else "3" if peak < 3 else "4"
        classes.append("5" if peak >= 7 else klass)
    non_wear = rng.choice((0, 0, 0, 60, 300, 900))
    if non_wear:
        at = rng.randrange(100, 200)
        classes[at : at + non_wear // 300 or 1] = "0" * (non_wear // 300 or 1)
    steps = plan.activity.steps
    distance = int(steps * p.stride_m)
    target_meters = 9000 + (p.daily_steps // 1000) * 500

    def minutes(low: float, high: float) -> list[float]:
        return [m for m in met if low <= m < high]

    return {
        "id": rng_uuid(rng),
        "class_5_min": "".join(classes),
        "score": rng.randint(60, 99),
        "active_calories": plan.activity.active_kcal,
        "average_met_minutes": round(sum(met) / len(met), 3),
        "contributors": _contributors(
            rng,
            (
                "meet_daily_targets",
                "move_every_hour",
                "recovery_time",
                "stay_active",
                "training_frequency",
                "training_volume",
            ),
        ),
        "equivalent_walking_distance": distance,
        "high_activity_met_minutes": int(sum(minutes(6, 99))),
        "high_activity_time": len(minutes(6, 99)) * 60,
        "inactivity_alerts": rng.choice((0, 0, 1, 2)),
        "low_activity_met_minutes": int(sum(minutes(1.5, 3))),
        "low_activity_time": len(minutes(1.5, 3)) * 60,
        "medium_activity_met_minutes": int(sum(minutes(3, 6))),
        "medium_activity_time": len(minutes(3, 6)) * 60,
        "met": {"interval": 60.0, "items": met, "timestamp": _local(start, ms=True)},
        "meters_to_target": target_meters - distance,
        "non_wear_time": non_wear,
        "resting_time": len(minutes(0, 1.0)) * 60,
        "sedentary_met_minutes": int(sum(minutes(1.0, 1.5)) / 10),
        "sedentary_time": len(minutes(1.0, 1.5)) * 60,
        "steps": steps,
        "target_calories": 400 + (p.daily_steps // 1000) * 50,
        "target_meters": target_meters,
        "total_calories": plan.activity.resting_kcal + plan.activity.active_kcal,
        "day": day.isoformat(),
        "timestamp": _local(start),
    }


def _sleep(
    rng: random.Random, night: Night, kind: str, period: int, readiness: dict[str, Any]
) -> Doc:
    epochs = night.epochs
    in_bed = night.in_bed_s
    hr = [round(night.avg_hr + rng.gauss(0, 3), 1) for _ in epochs]
    hrv = [float(max(5, int(rng.gauss(night.avg_hrv, 9)))) for _ in epochs]
    movement = "".join(
        rng.choice("1112" if PHASE[epochs[min(i // 10, len(epochs) - 1)]] != "4" else "2334")
        for i in range(in_bed // 30)
    )
    asleep = night.asleep_s
    return {
        "id": rng_uuid(rng),
        "average_breath": night.breath,
        "average_heart_rate": night.avg_hr,
        "average_hrv": night.avg_hrv,
        "awake_time": in_bed - asleep,
        "bedtime_end": _local(night.end),
        "bedtime_start": _local(night.start),
        "day": night.day.isoformat(),
        "deep_sleep_duration": night.seconds(DEEP),
        "efficiency": round(100 * asleep / in_bed),
        "heart_rate": {"interval": 300.0, "items": hr, "timestamp": _local(night.start, ms=True)},
        "hrv": {"interval": 300.0, "items": hrv, "timestamp": _local(night.start, ms=True)},
        "latency": night.latency_s,
        "light_sleep_duration": night.seconds(LIGHT),
        "low_battery_alert": False,
        "lowest_heart_rate": night.lowest_hr,
        "movement_30_sec": movement,
        "period": period,
        "readiness": readiness,
        "readiness_score_delta": 0,
        "rem_sleep_duration": night.seconds(REM),
        "restless_periods": rng.randint(40, 300),
        "sleep_phase_5_min": "".join(PHASE[e] for e in epochs),
        "sleep_score_delta": 0,
        "sleep_algorithm_version": "v2",
        "time_in_bed": in_bed,
        "total_sleep_duration": asleep,
        "type": kind,
    }


def _nap(rng: random.Random, p: Person, day: date, readiness: dict[str, Any]) -> Rec:
    """A short daytime sleep; the shortest have no heart-rate or HRV series, as in the sample."""
    start = local_at(day, p.tz, 13 * 60 + rng.randint(0, 180)).replace(second=rng.randrange(60))
    minutes = rng.randint(12, 70)
    end = (start.astimezone(UTC) + timedelta(minutes=minutes)).astimezone(p.tz)
    n = max(1, minutes // 5)
    epochs = AWAKE + LIGHT * max(0, n - 2) + AWAKE if n > 2 else AWAKE * n
    night = Night(
        day=day,
        start=start,
        end=end,
        latency_s=300,
        epochs=epochs,
        avg_hr=round(p.resting_hr + rng.uniform(6, 14), 3),
        lowest_hr=p.resting_hr + rng.randint(2, 8),
        avg_hrv=rng.randint(20, 50),
        breath=round(rng.uniform(14, 16), 3),
        spo2=97.0,
    )
    doc = _sleep(rng, night, "sleep", 1, readiness)
    doc["readiness_score_delta"] = rng.randint(0, 5)
    doc["sleep_score_delta"] = rng.randint(0, 6)
    if minutes < 25:
        doc.update(
            heart_rate=None,
            hrv=None,
            average_hrv=None,
            readiness_score_delta=None,
            sleep_score_delta=None,
        )
    return Rec(end.timestamp(), doc)


def _workout(rng: random.Random, p: Person, w: Workout) -> Rec:
    """Oura sometimes writes a workout in UTC (+00:00) on a +02:00 day: reproduced, 1 in 8."""
    start, end = w.start, w.end
    if rng.random() < 0.125:
        start, end = start.astimezone(UTC), end.astimezone(UTC)
    fraction = (w.avg_hr - p.resting_hr) / (p.max_hr - p.resting_hr)
    intensity = "easy" if fraction < 0.55 else "moderate" if fraction < 0.68 else "hard"
    return Rec(
        w.end.timestamp(),
        {
            "id": rng_uuid(rng),
            "activity": ACTIVITY[w.sport],
            "calories": w.kcal,
            "day": w.start.date().isoformat(),
            "distance": w.distance_m,
            "end_datetime": _local(end),
            "intensity": intensity,
            "label": None,
            "source": rng.choice(("confirmed", "autodetected", "manual", "workout_heart_rate")),
            "start_datetime": _local(start),
        },
    )


def _heartrate(
    rng: random.Random, p: Person, day: date, plan: DayPlan, next_night: Night
) -> list[Rec]:
    """About one row per 5 minutes over the local day, UTC timestamps, tagged by source."""
    start, end = day_bounds(day, p.tz)
    rows = []
    nights = (plan.night, next_night)
    for slot in range(int((end - start) // 300)):
        if rng.random() < 0.04:
            continue
        ts = start + slot * 300 + rng.randrange(300)
        moment = datetime.fromtimestamp(ts, UTC)
        workout = next((w for w in plan.workouts if w.start <= moment < w.end), None)
        asleep = any(n.start <= moment < n.end for n in nights)
        source = (
            "workout" if workout else "sleep" if asleep else rng.choice(("awake",) * 6 + ("rest",))
        )
        rows.append(
            Rec(
                ts,
                {
                    "bpm": heart_rate_at(p, rng, asleep, workout),
                    "source": source,
                    "timestamp": moment.isoformat(timespec="seconds"),
                },
            )
        )
    return rows
