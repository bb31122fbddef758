"""Every simulated answer has the field paths of the matching real sample, and no others.

A JSON document flattens into dotted paths, `[]` standing for list items (`data[].met.items[]`).
For each endpoint: every path of the sample is in the simulated answer (minus the `optional`
ones, each with its reason), and every simulated path is in the sample (plus the documented
`extra` ones). The samples live in ../shared/reference/samples (see SOURCES.md there).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from healthmesh.simulator.testing import (
    PROVIDERS,
    authorize,
    authorize_params,
    connect,
    refresh,
    token_answer,
    token_request,
)

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples"
pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the reference samples are not at {SAMPLES}"
)


def paths(value: Any, prefix: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out |= {path} | paths(item, path)
    elif isinstance(value, list):
        for item in value:
            out |= {prefix + "[]"} | paths(item, prefix + "[]")
    return out


def sample(name: str) -> Any:
    return orjson.loads((SAMPLES / name).read_bytes())


@dataclass(frozen=True)
class Case:
    provider: str
    method: str
    path: str
    samples: tuple[str, ...]  # the first is required; the others widen what is allowed
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None
    optional: frozenset[str] = frozenset()  # sample paths the simulator may leave out (why: below)
    extra: frozenset[str] = frozenset()  # paths the sample lacks but the API has (why: below)


def oura(name: str, sample_file: str, **params: str) -> Case:
    return Case(
        "oura",
        "GET",
        f"/oura/v2/usercollection/{name}",
        (f"oura/{sample_file}",),
        {"start_date": "2026-02-20", "end_date": "2026-03-15", **params},
    )


def whoop(path: str, sample_file: str, optional: frozenset[str] = frozenset()) -> Case:
    return Case(
        "whoop",
        "GET",
        f"/whoop/developer/v2/{path}",
        (f"whoop/{sample_file}",),
        {"limit": "10"} if "user" not in path else {},
        optional=optional,
    )


def google(data_type: str, sample_file: str, extra: frozenset[str] = frozenset()) -> Case:
    """Most Google samples are one point without the list envelope's `nextPageToken`."""
    return Case(
        "fitbit",
        "GET",
        f"/fitbit/v4/users/me/dataTypes/{data_type}/dataPoints",
        (f"google_health/{sample_file}",),
        {"pageSize": "5"},
        extra=extra | {"nextPageToken"},
    )


# WHOOP documents v1_id and sport_id as removed after 2025-09-01; the simulator is past that date.
V1_GONE = frozenset({"records[].v1_id", "records[].sport_id"})
# Outdoor Strava activities carry coordinates; the list example was an indoor ride.
LATLNG = frozenset({"[].start_latlng[]", "[].end_latlng[]"})
# No segments, kudosers or photos are simulated: those lists are empty and `primary` is null.
NO_SOCIAL = frozenset(
    p
    for p in paths(sample("strava/activity.detailed.swagger_example.json"))
    if p.startswith(("segment_efforts[]", "highlighted_kudosers[]", "photos.primary."))
)
# A DetailedActivity is a SummaryActivity plus details; the detailed example lacks these summary
# fields (it had no heart rate and no location).
SUMMARY_FIELDS = frozenset(
    {"average_heartrate", "max_heartrate", "location_city", "location_state", "location_country"}
)
# Simulated sleep comes from the tracker (a device); the sample night was logged by hand.
DEVICE = frozenset({"dataPoints[].dataSource.device", "dataPoints[].dataSource.device.displayName"})
# Only entries typed into the app carry these two (1 weigh-in in 10).
APP_ENTRY = frozenset(
    {"body.measuregrps[].measures[].apppfmid", "body.measuregrps[].measures[].appliver"}
)

CASES = {
    "oura daily_activity": oura("daily_activity", "daily_activity.list.json"),
    "oura daily_sleep": oura("daily_sleep", "daily_sleep.list.json"),
    "oura daily_readiness": oura("daily_readiness", "daily_readiness.list.json"),
    "oura daily_spo2": oura("daily_spo2", "daily_spo2.list.json"),
    "oura sleep": oura("sleep", "sleep.list.trimmed.json"),
    "oura workout": oura("workout", "workout.list.trimmed.json"),
    "oura heartrate": Case(
        "oura",
        "GET",
        "/oura/v2/usercollection/heartrate",
        ("oura/heartrate.list.trimmed.json",),
        {
            "start_datetime": "2026-03-13T00:00:00+00:00",
            "end_datetime": "2026-03-14T00:00:00+00:00",
        },
    ),
    "oura personal_info": Case(
        "oura", "GET", "/oura/v2/usercollection/personal_info", ("oura/personal_info.json",)
    ),
    "whoop cycle": whoop("cycle", "cycle.collection.composed.json"),
    "whoop recovery": whoop("recovery", "recovery.collection.composed.json"),
    "whoop sleep": whoop("activity/sleep", "sleep.collection.composed.json", V1_GONE),
    "whoop workout": whoop("activity/workout", "workout.collection.composed.json", V1_GONE),
    "whoop profile": whoop("user/profile/basic", "user_profile_basic.json"),
    "whoop body": whoop("user/measurement/body", "user_body_measurement.json"),
    "google steps": google("steps", "steps.list.reconstructed.json"),
    "google heart-rate": google("heart-rate", "heart_rate.list.fixture.json"),
    "google weight": google("weight", "weight.list.reconstructed.json"),
    "google body-fat": google("body-fat", "body_fat.list.reconstructed.json"),
    "google daily-resting-heart-rate": google(
        "daily-resting-heart-rate", "daily_resting_heart_rate.list.reconstructed.json"
    ),
    "google sleep": google("sleep", "sleep.list.observed_redacted.json", extra=DEVICE),
    "google exercise": google("exercise", "exercise.list.fixture.json"),
    "google dailyRollUp": Case(
        "fitbit",
        "POST",
        "/fitbit/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp",
        ("google_health/daily_rollup.steps.third_party_doc.json",),
        json={
            "range": {
                "start": {"date": {"year": 2026, "month": 3, "day": 1}},
                "end": {"date": {"year": 2026, "month": 3, "day": 8}},
            },
            "windowSizeDays": 1,
        },
    ),
    "google identity": Case(
        "fitbit",
        "GET",
        "/fitbit/v4/users/me/identity",
        ("google_health/identity.reconstructed.json",),
    ),
    "withings getmeas": Case(
        "withings",
        "POST",
        "/withings/measure",
        (
            "withings/measure.getmeas.recorded.trimmed.json",
            "withings/measure.getmeas.docs_example.json",
        ),
        {"action": "getmeas"},
        optional=APP_ENTRY,
    ),
    "withings getactivity": Case(
        "withings",
        "POST",
        "/withings/v2/measure",
        ("withings/measurev2.getactivity.recorded.trimmed.json",),
        {"action": "getactivity", "startdateymd": "2026-02-20", "enddateymd": "2026-03-15"},
    ),
    "withings getworkouts": Case(
        "withings",
        "POST",
        "/withings/v2/measure",
        ("withings/measurev2.getworkouts.docs_example.json",),
        {"action": "getworkouts", "startdateymd": "2026-02-20", "enddateymd": "2026-03-15"},
    ),
    "withings getsummary": Case(
        "withings",
        "POST",
        "/withings/v2/sleep",
        ("withings/sleepv2.getsummary.docs_example.json",),
        {"action": "getsummary", "startdateymd": "2026-02-20", "enddateymd": "2026-03-15"},
    ),
    "strava activities": Case(
        "strava",
        "GET",
        "/strava/api/v3/athlete/activities",
        ("strava/athlete_activities.list.swagger_example.json",),
        {"per_page": "200"},
        extra=LATLNG,
    ),
    "strava athlete": Case(
        "strava", "GET", "/strava/api/v3/athlete", ("strava/athlete.detailed.swagger_example.json",)
    ),
}


def compare(simulated: Any, case: Case) -> None:
    required = paths(sample(case.samples[0])) - case.optional
    allowed = set().union(*(paths(sample(s)) for s in case.samples)) | case.extra
    got = paths(simulated)
    if case.provider == "fitbit":  # proto3 JSON leaves zero time fields out
        times = {
            p for p in got | required if p.endswith((".time", ".hours", ".minutes", ".seconds"))
        }
        required -= times
        allowed |= times
    assert not required - got, f"missing: {sorted(required - got)}"
    assert not got - allowed, f"not in the sample: {sorted(got - allowed)}"


@pytest.fixture
async def tokens(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    return {provider: await connect(client, provider) for provider in PROVIDERS}


@pytest.mark.parametrize("name", CASES)
async def test_simulated_answers_match_the_samples(
    client: httpx.AsyncClient, tokens: dict[str, dict[str, Any]], name: str
) -> None:
    case = CASES[name]
    headers = {"authorization": f"Bearer {tokens[case.provider]['access_token']}"}
    if case.json is not None:
        response = await client.post(case.path, json=case.json, headers=headers)
    elif case.method == "POST":
        response = await client.post(case.path, data=case.params, headers=headers)
    else:
        response = await client.get(case.path, params=case.params, headers=headers)
    assert response.status_code == 200, response.text
    compare(response.json(), case)


async def test_google_distance_has_the_steps_shape(
    client: httpx.AsyncClient, tokens: dict[str, dict[str, Any]]
) -> None:
    """No distance sample exists: it is the steps sample with `distance.millimeters`."""
    text = (SAMPLES / "google_health/steps.list.reconstructed.json").read_text()
    expected = paths(
        orjson.loads(text.replace('"steps"', '"distance"').replace('"count"', '"millimeters"'))
    )
    response = await client.get(
        "/fitbit/v4/users/me/dataTypes/distance/dataPoints",
        params={"pageSize": "5"},
        headers={"authorization": f"Bearer {tokens['fitbit']['access_token']}"},
    )
    assert paths(response.json()) == expected


async def test_strava_detailed_activity(
    client: httpx.AsyncClient, tokens: dict[str, dict[str, Any]]
) -> None:
    headers = {"authorization": f"Bearer {tokens['strava']['access_token']}"}
    listed = (await client.get("/strava/api/v3/athlete/activities", headers=headers)).json()
    ride = next(a for a in listed if a["type"] == "Ride" and a["start_latlng"])
    detail = (await client.get(f"/strava/api/v3/activities/{ride['id']}", headers=headers)).json()
    case = Case(
        "strava",
        "GET",
        "",
        ("strava/activity.detailed.swagger_example.json",),
        optional=NO_SOCIAL,
        extra=SUMMARY_FIELDS,
    )
    compare(detail, case)


@pytest.mark.parametrize(
    ("provider", "sample_file"),
    [
        ("whoop", "whoop/token.refresh.response.docs_example.json"),
        ("strava", "strava/oauth.token.refresh.response.docs_example.json"),
        ("withings", "withings/oauth2.requesttoken.refresh_token.response.json"),
    ],
)
async def test_refresh_answers_match_the_samples(
    client: httpx.AsyncClient, tokens: dict[str, dict[str, Any]], provider: str, sample_file: str
) -> None:
    response = await refresh(client, provider, tokens[provider]["refresh_token"])
    token_answer(provider, response)
    compare(response.json(), Case(provider, "POST", "", (sample_file,)))


async def test_withings_code_answer_and_refusal_match_the_samples(
    client: httpx.AsyncClient,
) -> None:
    code = await authorize(client, "withings", **authorize_params("withings"))
    answer = await token_request(client, "withings", "authorization_code", code)
    compare(
        answer.json(),
        Case(
            "withings",
            "POST",
            "",
            ("withings/oauth2.requesttoken.authorization_code.response.json",),
        ),
    )
    refused = await token_request(client, "withings", "authorization_code", code)
    assert refused.json() == sample("withings/oauth2.requesttoken.error.invalid_code.json")
    probe = await client.post(
        "/withings/measure", data={"action": "getmeas"}, headers={"authorization": "Bearer nope"}
    )
    assert probe.json() == sample("withings/error.http200_status401.invalid_token.json")
