"""Strava API v3 activities and athletes, shaped like samples/strava/*.swagger_example.json.

Strava's time trap is kept: `start_date_local` is the local wall time written with a `Z`, and
`timezone` is "(GMT+01:00) Europe/Berlin" with the zone's standard offset while `utc_offset`
follows daylight saving time.
"""

import math
import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from healthmesh.simulator.synth import (
    Person,
    Workout,
    day_plan,
    iso_utc,
    person,
    render_rng,
    rng_hex,
    stable_int,
)

Doc = dict[str, Any]
TYPES = {  # our sport -> (type, sport types, name noun, outdoor)
    "running": ("Run", ("Run", "Run", "TrailRun"), "Run", True),
    "cycling": ("Ride", ("Ride", "MountainBikeRide", "VirtualRide"), "Ride", True),
    "walking": ("Walk", ("Walk",), "Walk", True),
    "swimming": ("Swim", ("Swim",), "Swim", False),
    "strength_training": ("WeightTraining", ("WeightTraining",), "Weight Training", False),
    "hiking": ("Hike", ("Hike",), "Hike", True),
}
SUMMARY_ONLY = ("resource_state",)


@dataclass(frozen=True)
class Activity:
    id: int
    start: float
    private: bool
    summary: Doc
    detail: Doc


def athlete_id(seed: int, user: str) -> int:
    return 1_000_000 + stable_int(seed, "strava-athlete", user) % 99_000_000


def _gmt(p: Person) -> str:
    """Strava's zone label carries the standard (not the daylight-saving) offset."""
    offsets = [datetime(2025, month, 1, tzinfo=p.tz).utcoffset() for month in (1, 7)]
    minutes = min(int(o.total_seconds()) // 60 for o in offsets if o is not None)
    sign = "-" if minutes < 0 else "+"
    return f"(GMT{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}) {p.tz_name}"


def _local_z(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def polyline(points: list[tuple[float, float]]) -> str:
    """Google's encoded polyline, as Strava's `map.polyline` uses it."""
    out, last_lat, last_lng = [], 0, 0
    for lat, lng in points:
        ilat, ilng = round(lat * 1e5), round(lng * 1e5)
        for delta in (ilat - last_lat, ilng - last_lng):
            value = ~(delta << 1) if delta < 0 else delta << 1
            while value >= 0x20:
                out.append(chr((0x20 | (value & 0x1F)) + 63))
                value >>= 5
            out.append(chr(value + 63))
        last_lat, last_lng = ilat, ilng
    return "".join(out)


def _route(
    rng: random.Random, p: Person, distance_m: float, steps: int
) -> list[tuple[float, float]]:
    radius = distance_m / (2 * math.pi) / 111_000
    phase = rng.uniform(0, 2 * math.pi)
    centre = (p.lat + radius * math.sin(phase), p.lng + radius * math.cos(phase))
    return [
        (
            centre[0] - radius * math.sin(phase + 2 * math.pi * i / steps),
            centre[1]
            - radius * math.cos(phase + 2 * math.pi * i / steps) / math.cos(math.radians(p.lat)),
        )
        for i in range(steps + 1)
    ]


def athlete(seed: int, user: str, detailed: bool) -> Doc:
    p = person(seed, user)
    ident = athlete_id(seed, user)
    created = datetime(2017, 1, 1, tzinfo=UTC).timestamp() + stable_int(user, bits=26)
    picture = f"https://dgalywyr863hv.cloudfront.net/pictures/athletes/{ident}/{ident % 9973}/1/"
    doc: Doc = {
        "id": ident,
        "username": f"{p.first_name}_{p.last_name}".lower().replace("-", "_"),
        "resource_state": 3 if detailed else 2,
        "firstname": p.first_name,
        "lastname": p.last_name,
        "bio": "",
        "city": p.city,
        "state": p.region,
        "country": p.country,
        "sex": p.sex,
        "premium": stable_int(user, "premium", bits=1) == 1,
        "summit": stable_int(user, "premium", bits=1) == 1,
        "created_at": iso_utc(created),
        "updated_at": iso_utc(created + 86_400 * 400),
        "badge_type_id": 1,
        "weight": round(p.weight_kg, 1),
        "profile_medium": picture + "medium.jpg",
        "profile": picture + "large.jpg",
        "friend": None,
        "follower": None,
    }
    if detailed:
        for key in ("bio", "summit"):
            del doc[key]
        doc.update(
            {
                "follower_count": stable_int(user, "followers", bits=6),
                "friend_count": stable_int(user, "friends", bits=6),
                "mutual_friend_count": 0,
                "athlete_type": 0,
                "date_preference": "%m/%d/%Y",
                "measurement_preference": "meters",
                "clubs": [],
                "ftp": None,
                "bikes": [
                    {
                        "id": f"b{ident}1",
                        "primary": True,
                        "name": "Road bike",
                        "resource_state": 2,
                        "distance": 1_250_000,
                    }
                ],
                "shoes": [
                    {
                        "id": f"g{ident}2",
                        "primary": True,
                        "name": "Trainers",
                        "resource_state": 2,
                        "distance": 480_000,
                    }
                ],
            }
        )
    return doc


@lru_cache(maxsize=4096)
def strava_day(seed: int, user: str, day: date) -> tuple[Activity, ...]:
    p = person(seed, user)
    plan = day_plan(seed, "strava", user, day)
    rng = render_rng(seed, "strava", user, day)
    return tuple(_activity(rng, p, seed, user, w) for w in plan.workouts)


def _name(moment: datetime, noun: str) -> str:
    hour = moment.hour
    part = (
        "Morning"
        if 4 <= hour < 12
        else "Lunch"
        if hour < 14
        else "Afternoon"
        if hour < 18
        else "Evening"
        if hour < 22
        else "Night"
    )
    return f"{part} {noun}"


def _activity(rng: random.Random, p: Person, seed: int, user: str, w: Workout) -> Activity:
    kind, sport_types, noun, outdoor = TYPES[w.sport]
    sport_type = rng.choice(sport_types)
    trainer = sport_type == "VirtualRide" or not outdoor
    ident = (
        10_000_000_000
        + stable_int(seed, "strava-activity", user, w.start.timestamp()) % 9_000_000_000
    )
    owner = athlete_id(seed, user)
    start = w.start.timestamp()
    moving = int(w.duration_s * rng.uniform(0.88, 0.99))
    distance = round(w.distance_m or 0.0, 1)
    speed = round(distance / moving, 3) if moving else 0.0
    ride = kind == "Ride"
    gear = f"b{owner}1" if ride else f"g{owner}2" if kind in ("Run", "Walk", "Hike") else None
    points = _route(rng, p, distance, 24) if outdoor and not trainer and distance else []
    line = polyline(points) if points else None
    utc_offset = w.start.utcoffset()
    summary: Doc = {
        "resource_state": 2,
        "athlete": {"id": owner, "resource_state": 1},
        "name": _name(w.start, noun if sport_type != "VirtualRide" else "Virtual Ride"),
        "distance": distance,
        "moving_time": moving,
        "elapsed_time": w.duration_s,
        "total_elevation_gain": w.elevation_gain_m,
        "type": kind if sport_type != "VirtualRide" else "VirtualRide",
        "sport_type": sport_type,
        "workout_type": rng.choice((None, 0, 0, 1, 2)) if kind == "Run" else None,
        "id": ident,
        "external_id": f"garmin_ping_{ident * 7}",
        "upload_id": ident * 11,
        "start_date": iso_utc(start),
        "start_date_local": _local_z(w.start),
        "timezone": _gmt(p),
        "utc_offset": float(utc_offset.total_seconds()) if utc_offset else 0.0,
        "start_latlng": [round(points[0][0], 6), round(points[0][1], 6)] if points else None,
        "end_latlng": [round(points[-1][0], 6), round(points[-1][1], 6)] if points else None,
        "location_city": None,
        "location_state": None,
        "location_country": p.country,
        "achievement_count": rng.randint(0, 4),
        "kudos_count": rng.randint(0, 25),
        "comment_count": rng.randint(0, 3),
        "athlete_count": 1,
        "photo_count": 0,
        "map": {"id": f"a{ident}", "summary_polyline": line, "resource_state": 2},
        "device_name": "Garmin Forerunner 965" if not ride else "Garmin Edge 840",
        "trainer": trainer,
        "commute": rng.random() < 0.05,
        "manual": False,
        "private": rng.random() < 0.1,
        "flagged": False,
        "gear_id": gear,
        "from_accepted_tag": False,
        "average_speed": speed,
        "max_speed": round(speed * rng.uniform(1.3, 2.0), 1),
        "average_cadence": round(rng.uniform(75, 90), 1),
        "has_heartrate": True,
        "average_heartrate": float(w.avg_hr),
        "max_heartrate": float(w.max_hr),
        "pr_count": rng.randint(0, 2),
        "total_photo_count": 0,
        "has_kudoed": False,
        "suffer_score": float(rng.randint(10, 150)),
    }
    if ride:
        watts = round(rng.uniform(140, 240), 1)
        summary.update(
            average_watts=watts,
            weighted_average_watts=int(watts * 1.1),
            kilojoules=round(watts * moving / 1000, 1),
            device_watts=True,
            max_watts=int(watts * 3),
        )
    detail = _detail(rng, summary, w, points, moving)
    return Activity(ident, start, bool(summary["private"]), summary, detail)


def _detail(
    rng: random.Random, summary: Doc, w: Workout, points: list[tuple[float, float]], moving: int
) -> Doc:
    ident, owner = summary["id"], summary["athlete"]["id"]
    distance = summary["distance"]
    splits = []
    kilometres = max(1, math.ceil(distance / 1000)) if distance else 0
    for i in range(kilometres):
        part = min(1000.0, distance - 1000 * i)
        seconds = int(moving * part / distance) if distance else 0
        splits.append(
            {
                "distance": round(part, 1),
                "elapsed_time": seconds + rng.randint(0, 5),
                "elevation_difference": round(rng.uniform(-8, 8), 1),
                "moving_time": seconds,
                "split": i + 1,
                "average_speed": round(part / seconds, 2) if seconds else 0.0,
                "pace_zone": rng.randint(0, 5),
            }
        )
    lap: Doc = {
        "id": ident * 10 + 1,
        "resource_state": 2,
        "name": "Lap 1",
        "activity": {"id": ident, "resource_state": 1},
        "athlete": {"id": owner, "resource_state": 1},
        "elapsed_time": summary["elapsed_time"],
        "moving_time": moving,
        "start_date": summary["start_date"],
        "start_date_local": summary["start_date_local"],
        "distance": distance,
        "start_index": 0,
        "end_index": summary["elapsed_time"],
        "total_elevation_gain": summary["total_elevation_gain"],
        "average_speed": summary["average_speed"],
        "max_speed": summary["max_speed"],
        "average_cadence": summary["average_cadence"],
        "device_watts": bool(summary.get("device_watts", False)),
        "average_watts": summary.get("average_watts", 0.0),
        "lap_index": 1,
        "split": 1,
    }
    gear = summary["gear_id"]
    detail = {
        **{k: v for k, v in summary.items() if k not in SUMMARY_ONLY},
        "resource_state": 3,
        "map": {
            "id": f"a{ident}",
            "polyline": polyline(points) if points else None,
            "resource_state": 3,
            "summary_polyline": summary["map"]["summary_polyline"],
        },
        "average_temp": rng.randint(2, 28),
        "elev_high": round(40 + w.elevation_gain_m, 1),
        "elev_low": 40.0,
        "description": "",
        "calories": w.kcal,
        "segment_efforts": [],
        "splits_metric": splits,
        "laps": [lap],
        "gear": {
            "id": gear,
            "primary": True,
            "name": "Road bike" if gear and gear.startswith("b") else "Trainers",
            "resource_state": 2,
            "distance": 1_250_000,
        }
        if gear
        else None,
        "partner_brand_tag": None,
        "photos": {"primary": None, "use_primary_photo": False, "count": 0},
        "highlighted_kudosers": [],
        "hide_from_home": False,
        "embed_token": rng_hex(rng),
        "segment_leaderboard_opt_out": False,
        "leaderboard_opt_out": False,
    }
    return detail
