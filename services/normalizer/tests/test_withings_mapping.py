"""The Withings mapper against the reference samples (expectations written by hand from the
sample numbers and the Withings API reference), and its edge cases."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import JsonValue

from healthmesh.common.events import RawPayloadReceived
from healthmesh.normalizer.mapping import MappingResult, Sample, UnmappablePayload
from healthmesh.normalizer.sources.withings import map_payload

USER = uuid.UUID("00000000-0000-0000-0000-00000000a11e")
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples"
WITHINGS = SAMPLES / "withings"
DOCS_DEVICE = "892359876fd8805ac45bab078c4828692f0276b1"
SCALE = "d60dfb80d09098b63204a32bca96cfed581dc5ce"
PARIS_SUMMER = 7200  # Europe/Paris in July: UTC+2
TOKYO = 32400  # Asia/Tokyo: UTC+9, no DST


def body(name: str) -> dict[str, Any]:
    """The `body` of a recorded or documented Withings answer."""
    path = WITHINGS / name
    if not path.is_file():
        pytest.skip(f"the reference samples are not at {WITHINGS}")
    answer: dict[str, Any] = orjson.loads(path.read_bytes())
    assert answer["status"] == 0
    result: dict[str, Any] = answer["body"]
    return result


def envelope(resource: str, payload: Any) -> RawPayloadReceived:
    return RawPayloadReceived(
        id=uuid.uuid5(USER, orjson.dumps(payload).decode()),
        user_id=USER,
        source="withings",
        resource=resource,
        fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
        payload=payload,
    )


def measures_envelopes(page: dict[str, Any]) -> list[RawPayloadReceived]:
    """As the connector publishes them: one per group, with the page's time zone."""
    return [
        envelope("measures", {"timezone": page["timezone"], "measuregrps": [group]})
        for group in page["measuregrps"]
    ]


def map_all(envelopes: list[RawPayloadReceived]) -> list[Sample]:
    samples: list[Sample] = []
    for env in envelopes:
        result = map_payload(env)
        assert result.rejections == [], result.rejections
        samples.extend(result.samples)
    return samples


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def check(
    sample: Sample,
    metric: str,
    value: float,
    unit: str,
    start: str,
    end: str,
    offset: int,
    record_id: str = "",
    device: str | None = None,
    details: dict[str, JsonValue] | None = None,
    quality: float = 1.0,
    reason: str | None = None,
) -> None:
    assert sample.metric == metric
    assert sample.value == pytest.approx(value), metric
    assert sample.unit == unit
    assert (sample.start, sample.end) == (utc(start), utc(end)), metric
    assert sample.utc_offset_s == offset
    assert sample.source_record_id == record_id
    assert sample.device == device
    assert sample.details == details
    assert (sample.quality, sample.quality_reason) == (quality, reason), metric
    assert sample.source == "withings" and sample.user_id == USER


def by_metric(samples: list[Sample]) -> dict[str, Sample]:
    found = {s.metric: s for s in samples}
    assert len(found) == len(samples), [s.metric for s in samples]
    return found


# --- golden: the reference samples ---------------------------------------------------------------


def test_measure_docs_example() -> None:
    [sample] = map_all(measures_envelopes(body("measure.getmeas.docs_example.json")))
    # The group's own "Europe/Paris" wins over the page's placeholder "string"; attrib 1 is
    # ambiguous (may be another user's); `category` is a placeholder (not 2): still a measure.
    at = "2020-07-08T22:00:00+00:00"  # date 1594245600
    check(
        sample,
        "body_mass",
        65.75,  # 65750 * 10^-3 kg
        "kg",
        at,
        at,
        PARIS_SUMMER,
        record_id="12",
        device=DOCS_DEVICE,
        quality=0.3,
        reason="device measure that may belong to another user (attrib 1)",
    )


def test_measure_recorded_weights() -> None:
    samples = map_all(measures_envelopes(body("measure.getmeas.recorded.trimmed.json")))
    assert [s.metric for s in samples] == ["body_mass"] * 4
    # Groups carry no zone: the page's Asia/Tokyo gives +9 h. (grpid, kg, UTC instant, device)
    expected = [
        ("3259812118", 79.4, "2021-12-29T22:04:05+00:00", SCALE),  # 79400 * 10^-3, 1640815445
        ("3257522193", 78.8, "2021-12-28T22:05:23+00:00", SCALE),  # 78800 * 10^-3, 1640729123
        ("3256483900", 79.0, "2021-12-27T22:12:12+00:00", SCALE),  # 79000 * 10^-3, 1640643132
        ("3174506440", 80.0, "2021-11-20T01:51:13+00:00", None),  # 80000 * 10^-3, 1637373073
    ]
    for sample, (grpid, kg, at, device) in zip(samples[:3], expected[:3], strict=True):
        check(sample, "body_mass", kg, "kg", at, at, TOKYO, grpid, device)
    grpid, kg, at, device = expected[3]  # attrib 2: typed in the app, no device
    check(samples[3], "body_mass", kg, "kg", at, at, TOKYO, grpid, device,
          quality=0.8, reason="entered manually (attrib 2)")  # fmt: skip


def test_activity_recorded_days() -> None:
    days = body("measurev2.getactivity.recorded.trimmed.json")["activities"]
    samples = map_all([envelope("activity", day) for day in days])
    assert len(samples) == 3 * 6  # steps, distance, floors, active/total energy, active minutes
    first = by_metric(samples[:6])
    # 2021-11-06 in Asia/Tokyo: 2021-11-05T15:00Z .. 2021-11-06T15:00Z.
    day = ("2021-11-06T00:00:00+09:00", "2021-11-07T00:00:00+09:00", TOKYO)
    check(first["steps"], "steps", 6676, "count", *day, device=DOCS_DEVICE)
    check(first["distance"], "distance", 5078.594, "m", *day, device=DOCS_DEVICE)
    check(first["floors"], "floors", 0, "count", *day, device=DOCS_DEVICE)  # elevation 0 floors
    check(first["active_energy"], "active_energy", 210.68, "kcal", *day, device=DOCS_DEVICE)
    check(first["total_energy"], "total_energy", 2014.409, "kcal", *day, device=DOCS_DEVICE)
    # active 1107 s (moderate 1049 + intense 58) / 60 = 18.45 min
    check(first["active_minutes"], "active_minutes", 18.45, "min", *day, device=DOCS_DEVICE)
    third = by_metric(samples[12:])
    day = ("2021-11-08T00:00:00+09:00", "2021-11-09T00:00:00+09:00", TOKYO)
    check(third["steps"], "steps", 9431, "count", *day)  # deviceid null: no device
    check(third["active_minutes"], "active_minutes", 5224 / 60, "min", *day)  # 87.07 min
    # The rest by sums: steps 6676 + 9507 + 9431; active kcal 210.68 + 300.048 + 306.108.
    assert sum(s.value for s in samples if s.metric == "steps") == 25614
    total = sum(s.value for s in samples if s.metric == "active_energy")
    assert total == pytest.approx(816.836)
    distance = sum(s.value for s in samples if s.metric == "distance")
    assert distance == pytest.approx(5078.594 + 7238.444 + 7232.976)


def test_workout_docs_example() -> None:
    [row] = body("measurev2.getworkouts.docs_example.json")["series"]
    [sample] = map_all([envelope("workouts", row)])
    check(
        sample,
        "workout",
        11600,  # enddate 1594257200 - startdate 1594245600
        "s",
        "2020-07-08T22:00:00+00:00",
        "2020-07-09T01:13:20+00:00",
        PARIS_SUMMER,
        record_id="1594245600",  # no `id`: its start, as the connector keys it
        device="Activite Steel HR Sport Edition",  # model 59
        details={
            "sport": "other",  # category 36
            "energy_kcal": 1.0,  # data.calories
            "distance_m": 2.0,  # data.distance
            "avg_heart_rate": 4.0,  # data.hr_average
            "max_heart_rate": 5.0,  # data.hr_max
        },
    )


def test_sleep_summary_docs_example() -> None:
    [row] = body("sleepv2.getsummary.docs_example.json")["series"]
    found = by_metric(map_all([envelope("sleep", row)]))
    assert sorted(found) == ["respiratory_rate", "sleep_duration", "sleep_session"]
    night = ("2020-07-08T22:00:00+00:00", "2020-07-09T01:13:20+00:00", PARIS_SUMMER)
    common: dict[str, Any] = {"record_id": "1594245600", "device": "Pulse"}  # model_id 51
    # total_sleep_time 21 s; stages deep 3, light 9, rem 12; wakeupduration 25; in bed 22.
    # sleep_efficiency 16 is the docs' placeholder, not a ratio of one: left out.
    stages: dict[str, JsonValue] = {
        "deep_s": 3.0,
        "light_s": 9.0,
        "rem_s": 12.0,
        "awake_s": 25.0,
        "in_bed_s": 22.0,
    }
    check(found["sleep_session"], "sleep_session", 21, "s", *night, details=stages, **common)
    check(found["sleep_duration"], "sleep_duration", 21, "s", *night, **common)
    check(found["respiratory_rate"], "respiratory_rate", 13, "/min", *night, **common)


# --- measure types -------------------------------------------------------------------------------


def group(measures: list[tuple[int, int, int]], **fields: Any) -> dict[str, Any]:
    """A measure group of (type, value, unit) measures."""
    doc: dict[str, Any] = {
        "grpid": 777,
        "attrib": 0,
        "date": 1710000000,  # 2024-03-09T16:00:00Z
        "category": 1,
        "deviceid": "scale-1",
        "measures": [{"type": t, "value": v, "unit": u} for t, v, u in measures],
    }
    doc.update(fields)
    return doc


def map_group(doc: dict[str, Any], zone: str = "Europe/Berlin") -> MappingResult:
    return map_payload(envelope("measures", {"timezone": zone, "measuregrps": [doc]}))


def test_body_composition_types_and_fat_mass_is_never_body_fat() -> None:
    result = map_group(
        group(
            [
                (1, 8123, -2),  # 81.23 kg
                (5, 61234, -3),  # fat free mass 61.234 kg
                (6, 24617, -3),  # fat ratio 24.617 %
                (8, 19996, -3),  # fat mass 19.996 kg: no metric
                (76, 5812, -2),  # muscle 58.12 kg
                (77, 44, 0),  # hydration 44 kg: no metric
                (88, 312, -2),  # bone 3.12 kg
                (91, 78, -1),  # pulse wave velocity 7.8 m/s: no metric
                (170, 9, 0),  # visceral fat index: no metric
                (4, 1800, -3),  # height 1.8 m: no metric
            ],
            model="Body Cardio",
        )
    )
    found = by_metric(result.samples)
    assert sorted(found) == ["body_fat", "body_mass", "bone_mass", "lean_mass", "muscle_mass"]
    at = "2024-03-09T16:00:00+00:00"
    common: dict[str, Any] = {"offset": 3600, "record_id": "777", "device": "Body Cardio"}
    check(found["body_mass"], "body_mass", 81.23, "kg", at, at, **common)
    check(found["lean_mass"], "lean_mass", 61.234, "kg", at, at, **common)
    check(found["body_fat"], "body_fat", 24.617, "%", at, at, **common)
    check(found["muscle_mass"], "muscle_mass", 58.12, "kg", at, at, **common)
    check(found["bone_mass"], "bone_mass", 3.12, "kg", at, at, **common)


def test_a_group_with_only_fat_mass_yields_no_body_fat() -> None:
    result = map_group(group([(8, 19996, -3)]))
    assert result.samples == [] and result.rejections == [] and result.records_seen == 1


def test_blood_pressure_pulse_spo2_vo2_and_temperatures() -> None:
    bp = map_group(group([(9, 78, 0), (10, 121, 0), (11, 64, 0)], attrib=5, model_id=45))
    found = by_metric(bp.samples)
    at = "2024-03-09T16:00:00+00:00"
    common: dict[str, Any] = {"offset": 3600, "record_id": "777", "device": "BPM Connect"}
    check(found["bp_diastolic"], "bp_diastolic", 78, "mmHg", at, at, **common)
    check(found["bp_systolic"], "bp_systolic", 121, "mmHg", at, at, **common)
    check(found["heart_rate"], "heart_rate", 64, "bpm", at, at, **common)
    other = map_group(
        group(
            [(54, 97, 0), (123, 452, -1), (12, 3712, -2), (71, 3698, -2), (73, 3350, -2)],
            timezone="America/New_York",  # the group's own zone wins over the page's
        )
    )
    found = by_metric(other.samples)  # 12 and 71 in one group: one body temperature, 71's
    common = {"offset": -5 * 3600, "record_id": "777", "device": "scale-1"}  # EST in March 9
    check(found["spo2"], "spo2", 97, "%", at, at, **common)
    check(found["vo2max"], "vo2max", 45.2, "mL/kg/min", at, at, **common)  # 452 * 10^-1
    check(found["body_temperature"], "body_temperature", 36.98, "Cel", at, at, **common)
    check(found["skin_temperature"], "skin_temperature", 33.5, "Cel", at, at, **common)
    alone = by_metric(map_group(group([(12, 3712, -2)])).samples)
    assert alone["body_temperature"].value == pytest.approx(37.12)  # 3712 * 10^-2 °C


def test_objectives_are_skipped_not_rejected() -> None:
    result = map_group(group([(1, 75000, -3)], category=2))
    assert result.samples == [] and result.rejections == [] and result.records_seen == 1


def test_attribution_sets_quality() -> None:
    def quality(attrib: int) -> tuple[float, str | None]:
        [sample] = map_group(group([(1, 75000, -3)], attrib=attrib)).samples
        return sample.quality, sample.quality_reason

    assert quality(0) == quality(8) == quality(7) == (1.0, None)
    assert quality(1)[0] < 0.5  # may be another user's: out of aggregates
    assert quality(2) == (0.8, "entered manually (attrib 2)")
    assert quality(4)[0] == 0.5


def test_no_time_zone_anywhere_means_offset_zero_and_lower_quality() -> None:
    [sample] = map_group(group([(1, 75000, -3)], attrib=2), zone="string").samples
    assert sample.utc_offset_s == 0
    assert sample.quality == 0.8  # the lower of 0.9 (offset) and 0.8 (typed in)
    assert sample.quality_reason == "local offset unknown; entered manually (attrib 2)"


def test_a_bare_group_is_read_too() -> None:
    [sample] = map_payload(envelope("measures", group([(1, 75000, -3)]))).samples
    assert sample.value == 75.0 and sample.utc_offset_s == 0  # no zone at all


# --- activity, workouts, sleep edge cases ---------------------------------------------------------


def test_a_dst_day_is_23_hours_and_heart_rate_is_the_days_mean() -> None:
    day = {"date": "2024-03-31", "timezone": "Europe/Paris", "steps": 10, "hr_average": 71}
    found = by_metric(map_payload(envelope("activity", day)).samples)
    steps = found["steps"]
    assert steps.start == datetime(2024, 3, 30, 23, 0, tzinfo=UTC)
    assert steps.end - steps.start == timedelta(hours=23)
    assert steps.utc_offset_s == 3600  # CET at the day's midnight
    assert found["heart_rate"].value == 71 and found["heart_rate"].start == steps.start


def test_workout_sports_and_typed_stats() -> None:
    def workout(category: int, **data: Any) -> Sample:
        row = {"category": category, "startdate": 1710000000, "enddate": 1710003600, "data": data}
        [sample] = map_payload(envelope("workouts", row)).samples
        return sample

    assert workout(20).details == {"sport": "basket_ball"}
    assert workout(506).details == {"sport": "petanque"}
    assert workout(515).details == {"sport": "pushing_a_wheelchair_running_pace"}
    assert workout(9999).details == {"sport": "category_9999"}
    typed = workout(2, calories=0, manual_calories=350, distance=None, manual_distance=5000)
    assert typed.details == {"sport": "run", "energy_kcal": 350.0, "distance_m": 5000.0}
    assert workout(1, hr_average=0, hr_max=0).details == {"sport": "walk"}  # 0 bpm: no sensor
    no_zone = workout(1)
    assert (no_zone.value, no_zone.utc_offset_s, no_zone.quality) == (3600, 0, 0.9)


def test_sleep_efficiency_and_external_nights() -> None:
    row = {
        "id": 4242,
        "timezone": "Europe/Paris",
        "model": 32,
        "model_id": 63,
        "startdate": 1710021600,  # 2024-03-09T22:00Z
        "enddate": 1710050400,  # 2024-03-10T06:00Z
        "data": {"asleepduration": 25200, "sleep_efficiency": 0.875, "hr_average": 55},
    }
    found = by_metric(map_payload(envelope("sleep", row)).samples)
    # No heart rate sample: the day's activity hr_average covers those hours.
    assert sorted(found) == ["sleep_duration", "sleep_session"]
    night = ("2024-03-09T22:00:00+00:00", "2024-03-10T06:00:00+00:00", 3600)
    common: dict[str, Any] = {"record_id": "4242", "device": "Aura Sensor V2"}
    # External night: only asleepduration (7 h); efficiency 0.875 of one = 87.5 %.
    details: dict[str, JsonValue] = {"efficiency": 87.5}
    check(found["sleep_session"], "sleep_session", 25200, "s", *night, details=details, **common)
    check(found["sleep_duration"], "sleep_duration", 25200, "s", *night, **common)


def test_unscored_records_yield_nothing_and_are_not_rejected() -> None:
    night = {"startdate": 1710021600, "enddate": 1710050400, "timezone": "Europe/Paris"}
    for resource, payload in (
        ("sleep", {**night, "completed": False, "data": {"total_sleep_time": 25000}}),
        ("sleep", {**night, "data": {}}),
        ("sleep", night),
        ("activity", {"date": "2024-03-09", "timezone": "Europe/Paris"}),
    ):
        result = map_payload(envelope(resource, payload))
        assert result.samples == [] and result.rejections == [], (resource, payload)
        assert result.records_seen == 1


# --- rejections, errors, determinism -------------------------------------------------------------


def test_a_malformed_group_is_rejected_alone() -> None:
    good, late = group([(1, 75000, -3)]), group([(1, 76000, -3)], grpid=779)
    bad = group([(1, 75000, -3)], grpid=778)
    bad["measures"][0]["value"] = "heavy"
    page = {"timezone": "Europe/Berlin", "measuregrps": [good, bad, late]}
    result = map_payload(envelope("measures", page))
    assert [s.value for s in result.samples] == [75.0, 76.0]
    [rejection] = result.rejections
    assert rejection.where == "measure group 778"
    assert "value 'heavy'" in rejection.reason
    assert (result.records_seen, result.records_imported) == (3, 2)


@pytest.mark.parametrize(
    ("resource", "payload", "reason"),
    [
        ("activity", {"date": "9 Nov", "steps": 5}, "`date`"),
        ("activity", {"date": "2024-03-09", "steps": "many"}, "`steps` is not a number"),
        ("workouts", {"category": 1, "enddate": 1710003600}, "`startdate`"),
        ("workouts", {"category": 1, "startdate": 1710003600, "enddate": 1710000000}, "ends"),
        ("sleep", {"startdate": 1, "enddate": 2, "data": {"total_sleep_time": True}}, "number"),
        ("measures", {"measuregrps": [{"grpid": 1, "measures": []}]}, "`date`"),
    ],
)
def test_malformed_records_are_rejected_with_a_reason(
    resource: str, payload: dict[str, Any], reason: str
) -> None:
    result = map_payload(envelope(resource, payload))
    assert result.samples == []
    [rejection] = result.rejections
    assert reason in rejection.reason


def test_unknown_resources_and_unreadable_payloads_are_unmappable() -> None:
    with pytest.raises(UnmappablePayload, match="heartv2"):
        map_payload(envelope("heartv2", {}))
    with pytest.raises(UnmappablePayload, match="not an object"):
        map_payload(envelope("sleep", [1, 2]))
    with pytest.raises(UnmappablePayload, match="measuregrps"):
        map_payload(envelope("measures", {"timezone": "Europe/Paris"}))


def test_mapping_twice_gives_identical_samples() -> None:
    envelopes = [
        *measures_envelopes(body("measure.getmeas.recorded.trimmed.json")),
        *(
            envelope("activity", day)
            for day in body("measurev2.getactivity.recorded.trimmed.json")["activities"]
        ),
        envelope("workouts", body("measurev2.getworkouts.docs_example.json")["series"][0]),
        envelope("sleep", body("sleepv2.getsummary.docs_example.json")["series"][0]),
    ]
    first, second = map_all(envelopes), map_all(envelopes)
    assert first == second
    assert len({s.id for s in first}) == len(first)  # no two samples share a natural key
