"""Google Health API v4 data points for one day, shaped like samples/google_health/*.json.

The API's own conventions are kept: int64 values as JSON strings ("61"), durations and offsets as
"<seconds>s", proto3 JSON that omits zero fields (midnight has no `time`), physical times in UTC
with a Z, identifiable types (sleep, exercise, weight, body fat) carrying a `name`.
"""

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from healthmesh.simulator.synth import (
    AWAKE,
    DEEP,
    LIGHT,
    REM,
    Night,
    Person,
    Workout,
    day_bounds,
    day_plan,
    heart_rate_at,
    iso_utc,
    person,
    render_rng,
    stable_int,
)

Doc = dict[str, Any]


class Record(Enum):
    INTERVAL = "interval"
    SAMPLE = "sample"
    DAILY = "daily"
    SESSION = "session"
    SLEEP = "sleep"  # a session filtered on its end time


@dataclass(frozen=True)
class DataType:
    kebab: str  # in the URL
    key: str  # the JSON union member
    snake: str  # in filters
    record: Record
    scope: str


SIMULATED = {
    t.kebab: t
    for t in (
        DataType("steps", "steps", "steps", Record.INTERVAL, "activity_and_fitness"),
        DataType("distance", "distance", "distance", Record.INTERVAL, "activity_and_fitness"),
        DataType("exercise", "exercise", "exercise", Record.SESSION, "activity_and_fitness"),
        DataType("weight", "weight", "weight", Record.SAMPLE, "health_metrics_and_measurements"),
        DataType(
            "body-fat", "bodyFat", "body_fat", Record.SAMPLE, "health_metrics_and_measurements"
        ),
        DataType(
            "heart-rate",
            "heartRate",
            "heart_rate",
            Record.SAMPLE,
            "health_metrics_and_measurements",
        ),
        DataType(
            "daily-resting-heart-rate",
            "dailyRestingHeartRate",
            "daily_resting_heart_rate",
            Record.DAILY,
            "health_metrics_and_measurements",
        ),
        DataType("sleep", "sleep", "sleep", Record.SLEEP, "sleep"),
    )
}
# Real data types the simulator has no data for: listed empty, not refused.
OTHER_TYPES = frozenset(
    (
        "active-energy-burned",
        "active-minutes",
        "active-zone-minutes",
        "activity-level",
        "altitude",
        "basal-energy-burned",
        "blood-glucose",
        "calories-in-heart-rate-zone",
        "core-body-temperature",
        "daily-heart-rate-variability",
        "daily-heart-rate-zones",
        "daily-oxygen-saturation",
        "daily-respiratory-rate",
        "daily-sleep-temperature-derivations",
        "daily-vo2-max",
        "electrocardiogram",
        "floors",
        "heart-rate-variability",
        "height",
        "hydration-log",
        "irregular-rhythm-notification",
        "nutrition-log",
        "oxygen-saturation",
        "respiratory-rate-sleep-summary",
        "run-vo2-max",
        "sedentary-period",
        "swim-lengths-data",
        "time-in-heart-rate-zone",
        "total-calories",
        "vo2-max",
    )
)
ROLLUP_ONLY = frozenset(("total-calories", "calories-in-heart-rate-zone"))
EXERCISE = {
    "running": ("RUNNING", "Run"),
    "cycling": ("BIKING", "Bike"),
    "walking": ("WALKING", "Walk"),
    "swimming": ("SWIMMING", "Swim"),
    "strength_training": ("STRENGTH_TRAINING", "Weights"),
    "hiking": ("HIKING", "Hike"),
}
STAGE = {DEEP: "DEEP", LIGHT: "LIGHT", REM: "REM", AWAKE: "AWAKE"}
DEVICE = {"displayName": "Pixel Watch 3"}


@dataclass(frozen=True)
class Point:
    start: float  # physical start (a sample's time)
    end: float
    civil_start: datetime  # naive local wall time
    civil_end: datetime
    at: float  # when the point exists
    doc: Doc


def health_user_id(seed: int, user: str) -> str:
    return f"{stable_int(seed, 'google-health', user):x}"[:16].rjust(16, "0")


def legacy_user_id(seed: int, user: str) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    n = stable_int(seed, "fitbit-legacy", user)
    return "".join(alphabet[(n >> (5 * i)) % len(alphabet)] for i in range(6))


def offset_s(ts: float, tz: ZoneInfo) -> int:
    offset = datetime.fromtimestamp(ts, tz).utcoffset()
    return int(offset.total_seconds()) if offset else 0


def civil(moment: datetime) -> Doc:
    """CivilDateTime in proto3 JSON: zero fields (and a midnight `time`) are left out."""
    out: Doc = {"date": {"year": moment.year, "month": moment.month, "day": moment.day}}
    parts = {"hours": moment.hour, "minutes": moment.minute, "seconds": moment.second}
    time = {k: v for k, v in parts.items() if v}
    if time:
        out["time"] = time
    return out


def civil_date(day: date) -> Doc:
    return {"year": day.year, "month": day.month, "day": day.day}


def _local(ts: float, tz: ZoneInfo) -> datetime:
    return datetime.fromtimestamp(ts, tz).replace(tzinfo=None)


def interval(start: float, end: float, tz: ZoneInfo, with_civil: bool = True) -> Doc:
    out: Doc = {
        "startTime": iso_utc(start),
        "startUtcOffset": f"{offset_s(start, tz)}s",
        "endTime": iso_utc(end),
        "endUtcOffset": f"{offset_s(end, tz)}s",
    }
    if with_civil:
        out["civilStartTime"] = civil(_local(start, tz))
        out["civilEndTime"] = civil(_local(end, tz))
    return out


def sample_time(ts: float, tz: ZoneInfo) -> Doc:
    return {
        "physicalTime": iso_utc(ts),
        "utcOffset": f"{offset_s(ts, tz)}s",
        "civilTime": civil(_local(ts, tz)),
    }


def _point(start: float, end: float, tz: ZoneInfo, at: float, doc: Doc) -> Point:
    return Point(start, end, _local(start, tz), _local(end, tz), at, doc)


@lru_cache(maxsize=4096)
def google_day(seed: int, user: str, day: date) -> dict[str, tuple[Point, ...]]:
    p = person(seed, user)
    tz = p.tz
    plan = day_plan(seed, "fitbit", user, day)
    tomorrow = day_plan(seed, "fitbit", user, day + timedelta(days=1))
    rng = render_rng(seed, "fitbit", user, day)
    hid = health_user_id(seed, user)
    tracker = {"recordingMethod": "PASSIVELY_MEASURED", "device": DEVICE, "platform": "FITBIT"}
    steps, distance = [], []
    for minute, count in plan.activity.minutes():
        a = minute.timestamp()
        steps.append(
            _point(
                a,
                a + 60,
                tz,
                a + 60,
                {
                    "dataSource": tracker,
                    "steps": {"interval": interval(a, a + 60, tz), "count": str(count)},
                },
            )
        )
        millimeters = str(int(count * p.stride_m * 1000))
        distance.append(
            _point(
                a,
                a + 60,
                tz,
                a + 60,
                {
                    "dataSource": tracker,
                    "distance": {"interval": interval(a, a + 60, tz), "millimeters": millimeters},
                },
            )
        )
    out: dict[str, tuple[Point, ...]] = {
        "steps": tuple(steps),
        "distance": tuple(distance),
        "heart-rate": tuple(_heart_rate(rng, p, day, plan.night, tomorrow.night, plan.workouts)),
        "exercise": tuple(_exercise(rng, p, w, hid) for w in plan.workouts),
        "sleep": (_sleep(rng, p, plan.night, hid),),
        "daily-resting-heart-rate": (_resting(p, day, plan.night),),
        "weight": (),
        "body-fat": (),
    }
    if plan.weighing is not None:
        w = plan.weighing
        ts = w.at.timestamp()
        scale = {"recordingMethod": "PASSIVELY_MEASURED", "platform": "FITBIT"}
        if rng.random() < 0.2:
            scale = {"recordingMethod": "MANUAL", "platform": "FITBIT"}
        for kebab, key, value in (
            ("weight", "weightGrams", round(w.weight_kg * 1000, 1)),
            ("body-fat", "percentage", w.fat_pct),
        ):
            member = SIMULATED[kebab].key
            doc = {
                "name": f"users/{hid}/dataTypes/{kebab}/dataPoints/{stable_int(hid, kebab, ts)}",
                "dataSource": scale,
                member: {"sampleTime": sample_time(ts, tz), key: value},
            }
            out[kebab] = (_point(ts, ts, tz, ts, doc),)
    out["total-calories"] = (
        _point(
            *day_bounds(day, tz),
            tz,
            day_bounds(day, tz)[0],
            {"kcal": plan.activity.resting_kcal + plan.activity.active_kcal},
        ),
    )
    return out


def _heart_rate(
    rng: random.Random,
    p: Person,
    day: date,
    night: Night,
    next_night: Night,
    workouts: tuple[Workout, ...],
) -> list[Point]:
    start, end = day_bounds(day, p.tz)
    source = {"recordingMethod": "PASSIVELY_MEASURED", "device": DEVICE, "platform": "FITBIT"}
    points = []
    for slot in range(int((end - start) // 300)):
        ts = start + slot * 300 + rng.randrange(1, 300)
        moment = datetime.fromtimestamp(ts, UTC)
        workout = next((w for w in workouts if w.start <= moment < w.end), None)
        asleep = night.start <= moment < night.end or next_night.start <= moment < next_night.end
        bpm = heart_rate_at(p, rng, asleep, workout)
        doc = {
            "dataSource": source,
            "heartRate": {"sampleTime": sample_time(ts, p.tz), "beatsPerMinute": str(bpm)},
        }
        points.append(_point(ts, ts, p.tz, ts, doc))
    return points


def _resting(p: Person, day: date, night: Night) -> Point:
    start, end = day_bounds(day, p.tz)
    doc = {
        "dataSource": {"recordingMethod": "DERIVED", "platform": "FITBIT"},
        "dailyRestingHeartRate": {
            "date": civil_date(day),
            "beatsPerMinute": str(night.lowest_hr + 3),
            "dailyRestingHeartRateMetadata": {"calculationMethod": "WITH_SLEEP"},
        },
    }
    return _point(start, end, p.tz, night.end.timestamp(), doc)


def _sleep(rng: random.Random, p: Person, night: Night, hid: str) -> Point:
    start, end = night.start.timestamp(), night.end.timestamp()
    created = iso_utc(end + rng.randint(30, 900) + rng.random(), ms=True)
    stages = [
        {
            **interval(a.timestamp(), b.timestamp(), p.tz, with_civil=False),
            "type": STAGE[stage],
            "createTime": created,
            "updateTime": created,
        }
        for a, b, stage in night.segments()
    ]
    runs: dict[str, list[int]] = {}
    for a, b, stage in night.segments():
        runs.setdefault(STAGE[stage], []).append(int((b - a).total_seconds() // 60))
    asleep = night.asleep_s // 60
    in_period = night.in_bed_s // 60
    doc = {
        "name": f"users/{hid}/dataTypes/sleep/dataPoints/{stable_int(hid, 'sleep', start)}",
        "dataSource": {
            "recordingMethod": "PASSIVELY_MEASURED",
            "device": DEVICE,
            "platform": "FITBIT",
        },
        "sleep": {
            "interval": interval(start, end, p.tz, with_civil=False),
            "type": "STAGES",
            "stages": stages,
            "metadata": {"stagesStatus": "SUCCEEDED", "processed": True, "externalId": ""},
            "summary": {
                "minutesInSleepPeriod": str(in_period),
                "minutesAfterWakeUp": str(rng.randint(0, 5)),
                "minutesToFallAsleep": str(night.latency_s // 60),
                "minutesAsleep": str(asleep),
                "minutesAwake": str(in_period - asleep),
                "stagesSummary": [
                    {"type": t, "minutes": str(sum(m)), "count": str(len(m))}
                    for t, m in sorted(runs.items())
                ],
            },
            "createTime": created,
            "updateTime": created,
        },
    }
    return _point(start, end, p.tz, end, doc)


def _exercise(rng: random.Random, p: Person, w: Workout, hid: str) -> Point:
    start, end = w.start.timestamp(), w.end.timestamp()
    kind, display = EXERCISE[w.sport]
    summary: Doc = {"caloriesKcal": w.kcal, "averageHeartRateBeatsPerMinute": str(w.avg_hr)}
    if w.distance_m is not None:
        summary["distanceMillimeters"] = w.distance_m * 1000
    if w.sport in ("running", "walking", "hiking"):
        summary["steps"] = str(int((w.distance_m or 0) / p.stride_m))
    paused = rng.choice((0.0, 0.0, rng.uniform(10, 240)))
    doc = {
        "name": f"users/{hid}/dataTypes/exercise/dataPoints/{stable_int(hid, 'exercise', start)}",
        "dataSource": {"platform": "FITBIT", "device": DEVICE},
        "exercise": {
            "interval": interval(start, end, p.tz, with_civil=False),
            "exerciseType": kind,
            "displayName": display,
            "metricsSummary": summary,
            "exerciseMetadata": {"hasGps": w.distance_m is not None and w.sport != "swimming"},
            "activeDuration": f"{w.duration_s - paused:.3f}s",
            "updateTime": iso_utc(end + rng.randint(20, 600) + rng.random(), ms=True),
        },
    }
    return _point(start, end, p.tz, end, doc)
