"""One simulated human: nights, walking, workouts and weigh-ins, drawn from a seeded generator.

Every provider renders these in its own format. Each (seed, provider, user, day) has its own
`random.Random`, so a day's data never depends on which other days were asked for.
"""

import hashlib
import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# (IANA zone, city, region, country, latitude, longitude)
_HOMES = (
    ("Europe/Berlin", "Berlin", "BE", "Germany", 52.5200, 13.4050),
    ("America/New_York", "New York", "NY", "United States", 40.7128, -74.0060),
    ("America/Los_Angeles", "San Francisco", "CA", "United States", 37.7749, -122.4194),
    ("Asia/Kolkata", "Mumbai", "MH", "India", 19.0760, 72.8777),
    ("Europe/London", "London", "ENG", "United Kingdom", 51.5072, -0.1276),
    ("Australia/Sydney", "Sydney", "NSW", "Australia", -33.8688, 151.2093),
)
_FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Tim", "Barbara", "Edsger", "Radia", "Ken")
_LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Berners-Lee", "Liskov", "Perlman")

EPOCH_DAY = date(2020, 1, 1)


def stable_int(*parts: object, bits: int = 63) -> int:
    """A number that depends only on `parts` (not on PYTHONHASHSEED)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - bits)


def day_rng(seed: int, provider: str, user: str, day: date) -> random.Random:
    return random.Random(f"{seed}:{provider}:{user}:{day.isoformat()}")  # noqa: S311 - not crypto


def rng_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def rng_hex(rng: random.Random, length: int = 40) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


@dataclass(frozen=True)
class Person:
    user: str
    tz_name: str
    city: str
    region: str
    country: str
    lat: float
    lng: float
    first_name: str
    last_name: str
    sex: str
    height_m: float
    weight_kg: float
    body_fat_pct: float
    resting_hr: int
    max_hr: int
    daily_steps: int
    stride_m: float
    bedtime_min: int  # minutes after 21:00 local

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.tz_name)

    def weight_on(self, day: date) -> float:
        """A slow drift around the baseline, the same for every provider."""
        n = (day - EPOCH_DAY).days
        return self.weight_kg + 1.5 * math.sin(n / 60) + 0.5 * math.sin(n / 9)


@lru_cache(maxsize=1024)
def person(seed: int, user: str) -> Person:
    rng = random.Random(f"{seed}:person:{user}")  # noqa: S311 - not crypto
    tz_name, city, region, country, lat, lng = _HOMES[rng.randrange(len(_HOMES))]
    sex = rng.choice("MF")
    height = rng.gauss(1.78 if sex == "M" else 1.65, 0.06)
    return Person(
        user=user,
        tz_name=tz_name,
        city=city,
        region=region,
        country=country,
        lat=lat,
        lng=lng,
        first_name=rng.choice(_FIRST),
        last_name=rng.choice(_LAST),
        sex=sex,
        height_m=round(height, 2),
        weight_kg=round(rng.gauss(23.5, 2.5) * height * height, 1),
        body_fat_pct=round(rng.gauss(19 if sex == "M" else 27, 3), 1),
        resting_hr=rng.randint(48, 66),
        max_hr=rng.randint(175, 198),
        daily_steps=rng.randint(6000, 11000),
        stride_m=round(height * 0.415, 3),
        bedtime_min=rng.randint(60, 150),
    )


def local_today(now: float, tz: ZoneInfo) -> date:
    return datetime.fromtimestamp(now, tz).date()


def history(now: float, p: Person, days: int) -> tuple[date, date]:
    """First and last day (inclusive, the user's local days) of the simulated history."""
    today = local_today(now, p.tz)
    return today - timedelta(days=days - 1), today


def local_at(day: date, tz: ZoneInfo, minutes: float) -> datetime:
    """`minutes` after local midnight of `day`, as an aware local time (DST-correct)."""
    midnight = datetime.combine(day, time(), tz).astimezone(UTC)
    return (midnight + timedelta(seconds=round(minutes * 60))).astimezone(tz)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[float, float]:
    start = datetime.combine(day, time(), tz).timestamp()
    end = datetime.combine(day + timedelta(days=1), time(), tz).timestamp()
    return start, end


# --- nights -------------------------------------------------------------------------------------

DEEP, LIGHT, REM, AWAKE = "d", "l", "r", "a"


@dataclass(frozen=True)
class Night:
    """The main sleep that ends on the morning of `day` (its wake-up day)."""

    day: date
    start: datetime  # in bed, aware local time
    end: datetime  # out of bed
    latency_s: int
    epochs: str  # one stage letter per 5 minutes from `start`
    avg_hr: float
    lowest_hr: int
    avg_hrv: int
    breath: float
    spo2: float

    def seconds(self, stage: str) -> int:
        return self.epochs.count(stage) * 300

    @property
    def in_bed_s(self) -> int:
        return int((self.end - self.start).total_seconds())

    @property
    def asleep_s(self) -> int:
        return self.seconds(DEEP) + self.seconds(LIGHT) + self.seconds(REM)

    def segments(self) -> list[tuple[datetime, datetime, str]]:
        """Contiguous runs of one stage, covering the whole night."""
        runs: list[tuple[datetime, datetime, str]] = []
        start_utc = self.start.astimezone(UTC)
        for i, stage in enumerate(self.epochs):
            a = start_utc + timedelta(seconds=300 * i)
            b = min(a + timedelta(seconds=300), self.end.astimezone(UTC))
            if runs and runs[-1][2] == stage:
                runs[-1] = (runs[-1][0], b, stage)
            else:
                runs.append((a, b, stage))
        return runs


def make_night(rng: random.Random, p: Person, day: date) -> Night:
    tz = p.tz
    bedtime = 21 * 60 + p.bedtime_min + rng.gauss(0, 35)
    start = local_at(day - timedelta(days=1), tz, bedtime)
    duration_min = min(max(rng.gauss(7.6, 0.8), 5.0), 9.8) * 60
    end = (start.astimezone(UTC) + timedelta(minutes=duration_min)).astimezone(tz)
    start = start.replace(second=rng.randrange(60))
    epochs = _stages(rng, math.ceil((end - start).total_seconds() / 300))
    latency = epochs.index(LIGHT) * 300 + rng.randrange(0, 300) if LIGHT in epochs else 0
    return Night(
        day=day,
        start=start,
        end=end.replace(second=rng.randrange(60)),
        latency_s=latency,
        epochs=epochs,
        avg_hr=round(p.resting_hr + rng.uniform(2, 8), 3),
        lowest_hr=p.resting_hr + rng.randint(-4, 2),
        avg_hrv=rng.randint(25, 75),
        breath=round(rng.uniform(13, 17), 3),
        spo2=round(rng.uniform(95.0, 99.0), 3),
    )


def _stages(rng: random.Random, n: int) -> str:
    """Sleep architecture: ~90-minute cycles, deep sleep early, REM late, a few wake-ups."""
    out = [AWAKE] * min(n, rng.randint(1, 4))
    while len(out) < n:
        cycle = len(out) * 5 / 90
        deep = max(0, int(rng.gauss(6 - 2 * cycle, 1.5)))
        rem = max(1, int(rng.gauss(2 + 1.5 * cycle, 1)))
        light = max(2, int(rng.gauss(8, 2)))
        block = (
            [LIGHT] * (light // 2) + [DEEP] * deep + [LIGHT] * (light - light // 2) + [REM] * rem
        )
        if rng.random() < 0.35:
            block.append(AWAKE)
        out.extend(block)
    out = out[:n]
    out[-1] = AWAKE
    return "".join(out)


# --- walking ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bout:
    """Minutes of walking: `steps[i]` steps in the minute starting `start + i` minutes."""

    start: datetime  # UTC
    steps: tuple[int, ...]


@dataclass(frozen=True)
class ActivityDay:
    day: date
    bouts: tuple[Bout, ...]
    resting_kcal: int
    active_kcal: int

    @property
    def steps(self) -> int:
        return sum(sum(b.steps) for b in self.bouts)

    def minutes(self) -> list[tuple[datetime, int]]:
        return [
            (b.start + timedelta(minutes=i), s) for b in self.bouts for i, s in enumerate(b.steps)
        ]


def make_activity(rng: random.Random, p: Person, day: date, awake: datetime) -> ActivityDay:
    target = max(800, int(rng.gauss(p.daily_steps, p.daily_steps * 0.3)))
    bouts: list[Bout] = []
    total = 0
    midnight = datetime.combine(day, time(), p.tz)
    minute = int(max(7 * 60, (awake - midnight).total_seconds() / 60 + 10)) + rng.randint(0, 60)
    while total < target and minute < 22 * 60:
        length = rng.randint(4, 35)
        cadence = rng.randint(85, 118)
        steps = tuple(max(10, int(rng.gauss(cadence, 8))) for _ in range(length))
        start = local_at(day, p.tz, minute).astimezone(UTC)
        bouts.append(Bout(start=start.replace(second=0), steps=steps))
        total += sum(steps)
        minute += length + rng.randint(10, 110)
    resting = int(p.weight_kg * 22 + rng.randint(-40, 40))
    active = int(total * p.weight_kg * 0.00055 + rng.randint(0, 200))
    return ActivityDay(day=day, bouts=tuple(bouts), resting_kcal=resting, active_kcal=active)


# --- workouts -----------------------------------------------------------------------------------

SPORTS = ("running", "cycling", "walking", "swimming", "strength_training", "hiking")


@dataclass(frozen=True)
class Workout:
    start: datetime  # aware local time
    duration_s: int
    sport: str
    distance_m: float | None
    kcal: float
    avg_hr: int
    max_hr: int
    elevation_gain_m: float

    @property
    def end(self) -> datetime:
        return (self.start.astimezone(UTC) + timedelta(seconds=self.duration_s)).astimezone(
            self.start.tzinfo
        )


_SPEED = {"running": 2.9, "cycling": 7.0, "walking": 1.4, "swimming": 0.55, "hiking": 1.2}


def make_workouts(rng: random.Random, p: Person, day: date, awake: datetime) -> tuple[Workout, ...]:
    count = 0 if rng.random() < 0.5 else (1 if rng.random() < 0.85 else 2)
    out = []
    midnight = datetime.combine(day, time(), p.tz)
    earliest = (awake - midnight).total_seconds() / 60 + 20
    for i in range(count):
        sport = rng.choice(SPORTS)
        minute = max(earliest, 7 * 60 if i == 0 else 17 * 60) + rng.randint(0, 150)
        duration = rng.randint(20, 95) * 60 + rng.randrange(60)
        speed = _SPEED.get(sport)
        distance = round(duration * speed * rng.uniform(0.85, 1.15), 1) if speed else None
        avg_hr = int(p.resting_hr + (p.max_hr - p.resting_hr) * rng.uniform(0.45, 0.75))
        out.append(
            Workout(
                start=local_at(day, p.tz, minute).replace(second=rng.randrange(60)),
                duration_s=duration,
                sport=sport,
                distance_m=distance,
                kcal=round(duration / 60 * rng.uniform(5, 12), 3),
                avg_hr=avg_hr,
                max_hr=min(p.max_hr, avg_hr + rng.randint(12, 35)),
                elevation_gain_m=round(rng.uniform(0, 300), 1) if distance else 0.0,
            )
        )
    return tuple(out)


# --- weigh-ins ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Weighing:
    at: datetime  # aware local time
    weight_kg: float
    fat_pct: float

    @property
    def fat_kg(self) -> float:
        return self.weight_kg * self.fat_pct / 100

    @property
    def lean_kg(self) -> float:
        return self.weight_kg - self.fat_kg


def make_weighing(rng: random.Random, p: Person, day: date) -> Weighing | None:
    if rng.random() > 0.7:
        return None
    return Weighing(
        at=local_at(day, p.tz, 6 * 60 + 45 + rng.randint(0, 90)).replace(second=rng.randrange(60)),
        weight_kg=round(p.weight_on(day) + rng.gauss(0, 0.3), 2),
        fat_pct=round(p.body_fat_pct + rng.gauss(0, 0.6), 1),
    )


def heart_rate_at(p: Person, rng: random.Random, asleep: bool, workout: Workout | None) -> int:
    if workout is not None:
        return int(rng.gauss(workout.avg_hr, 8))
    if asleep:
        return int(rng.gauss(p.resting_hr + 3, 3))
    return int(rng.gauss(p.resting_hr + 22, 9))


@dataclass(frozen=True)
class DayPlan:
    """What one person did on one day, as one provider's devices saw it."""

    day: date
    night: Night
    activity: ActivityDay
    workouts: tuple[Workout, ...]
    weighing: Weighing | None


@lru_cache(maxsize=16384)
def day_plan(seed: int, provider: str, user: str, day: date) -> DayPlan:
    rng = day_rng(seed, provider, user, day)
    p = person(seed, user)
    night = make_night(rng, p, day)
    return DayPlan(
        day=day,
        night=night,
        activity=make_activity(rng, p, day, night.end),
        workouts=make_workouts(rng, p, day, night.end),
        weighing=make_weighing(rng, p, day),
    )


def render_rng(seed: int, provider: str, user: str, day: date) -> random.Random:
    """A second stream for the values only one provider's format has (scores, ids...)."""
    return random.Random(f"{seed}:{provider}:{user}:{day.isoformat()}:render")  # noqa: S311


def days_between(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def iso_utc(ts: float, ms: bool = False) -> str:
    """RFC 3339 in UTC with a Z, as WHOOP, Google and Strava write it."""
    moment = datetime.fromtimestamp(ts, UTC)
    text = moment.isoformat(timespec="milliseconds" if ms else "seconds")
    return text.replace("+00:00", "Z")
