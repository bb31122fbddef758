"""The Fitbit (Google Health API v4) module against the simulator: a year's backfill of every
resource in the fewest calls, deterministic event ids across window cuts, error classification,
webhooks (the endpoint check and signed notifications)."""

import base64
import math
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI

from healthmesh.connectors.fetching import envelopes, pages, windows
from healthmesh.connectors.provider_http import CallRefused, ProviderHttp, http_answer
from healthmesh.connectors.providers.base import (
    Challenge,
    HttpAnswer,
    Item,
    MalformedPage,
    Notice,
    Notices,
    Ok,
    Provider,
    RateLimited,
    Refused,
    Resource,
    Transient,
    Unauthorized,
    WebhookRefused,
    WebhookRequest,
    WebhookSecrets,
)
from healthmesh.connectors.providers.fitbit import PROVIDER, check_answer, verify_webhook
from healthmesh.simulator.app import create_app
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.providers.fitbit_data import Point, google_day
from healthmesh.simulator.settings import Settings as SimulatorSettings
from healthmesh.simulator.synth import days_between
from healthmesh.simulator.testing import connect

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The simulator's fixed clock (conftest.NOW)."""
START = NOW - timedelta(days=365)
RECENT = NOW - timedelta(days=90)
"""A shorter range for tests that fetch everything more than once."""
FIRST_DAY, STOP_DAY = date(2025, 3, 15), date(2026, 3, 16)
"""The civil dates of the UTC days [START, NOW) touches, closed-open: 366 of them."""


def civil_days(since: datetime) -> tuple[date, date]:
    """The civil dates of the UTC days [since, NOW) touches, closed-open."""
    return since.date(), NOW.date() + timedelta(days=1)


SEED = 1  # the simulator's default seed
USER = "fitbit-year"
"""One simulated person for every data test: the simulator renders each day once per process
(a year of Google heart rate takes seconds), so a second person would double the run time."""
LIST_PAGE, SESSION_PAGE = 10_000, 25  # Google's largest pageSize; sleep and exercise
ROLLUP_DAYS = {"steps": 90, "distance": 90, "total-calories": 14}  # dailyRollUp range caps
ROLLUP_MEMBERS = {"steps": "steps", "distance": "distance", "total-calories": "totalCalories"}
SECRET = "Bearer sandbox-webhook-secret"  # the simulator's default subscriber secret
HOOK = "http://app.test/webhooks/fitbit"
USER_ID = UUID("0b7e5f0e-3c43-4f0c-8a3c-2b1f1b3c9d21")
SAMPLES = (
    Path(__file__).resolve().parents[3].parent
    / "shared"
    / "reference"
    / "samples"
    / "google_health"
)
PER_SOURCE = {
    # resource: how its records fall in [START, NOW)
    "steps": "start",
    "distance": "start",
    "heart-rate": "start",
    "weight": "start",
    "body-fat": "start",
    "sleep": "end",
    "exercise": "civil",
    "daily-resting-heart-rate": "civil",
}
"""The list resources the simulator has data for, and how their records fall in the range."""
SERVED_EMPTY = frozenset(
    ("active-minutes", "active-zone-minutes", "daily-heart-rate-variability",
     "daily-oxygen-saturation")
)  # fmt: skip
"""Real data types the simulator lists empty."""

ProviderHttpFactory = Callable[[Provider, str], Awaitable[ProviderHttp]]


# --- a simulator whose webhooks reach our verify_webhook ----------------------------------------


@dataclass
class Receiver:
    """Our webhook endpoint, as the simulator reaches it: every request and what we made of it."""

    secrets: WebhookSecrets = field(
        default_factory=lambda: WebhookSecrets(None, None, SECRET, None)
    )
    requests: list[WebhookRequest] = field(default_factory=list)
    outcomes: list[Challenge | Notices | WebhookRefused] = field(default_factory=list)

    def answer(self, request: httpx.Request) -> httpx.Response:
        hook = WebhookRequest(
            method=request.method,
            query=dict(request.url.params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=request.content,
        )
        self.requests.append(hook)
        try:
            outcome = verify_webhook(hook, self.secrets)
        except WebhookRefused as refused:
            self.outcomes.append(refused)
            return httpx.Response(refused.status)
        self.outcomes.append(outcome)
        return httpx.Response(outcome.status)


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def simulator_settings() -> SimulatorSettings:
    """A `timeout` fault answers its 504 at once instead of hanging two minutes."""
    return SimulatorSettings(days=400, fault_timeout_s=0)


@pytest.fixture
async def simulator(
    simulator_settings: SimulatorSettings, clock: FakeClock, receiver: Receiver
) -> AsyncIterator[FastAPI]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver.answer)) as outbound:
        app = create_app(simulator_settings, clock=clock, http=outbound)
        async with app.router.lifespan_context(app):
            yield app


# --- what the simulator holds, read from its data module ----------------------------------------


async def who(sim: httpx.AsyncClient, user: str = USER) -> dict[str, Any]:
    answer = await sim.get(f"/_control/users/{user}")
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()["fitbit"]
    return result


def points(ids: dict[str, Any], kebab: str) -> list[Point]:
    """Every point of `kebab` in the user's history that exists at NOW."""
    first, last = date.fromisoformat(ids["first_day"]), date.fromisoformat(ids["last_day"])
    return [
        point
        for day in days_between(first, last)
        for point in google_day(SEED, USER, day)[kebab]
        if point.at <= NOW.timestamp()
    ]


def held_points(ids: dict[str, Any], name: str, since: datetime = START) -> list[Any]:
    if name not in PER_SOURCE:
        return []
    lo, hi = since.timestamp(), NOW.timestamp()
    first, stop = civil_days(since)
    rule = PER_SOURCE[name]
    return [
        p.doc
        for p in points(ids, name)
        if (rule == "start" and lo <= p.start < hi)
        or (rule == "end" and lo <= p.end < hi)
        or (rule == "civil" and first <= p.civil_start.date() < stop)
    ]


def held_rollups(ids: dict[str, Any], kebab: str, since: datetime = START) -> dict[str, Any]:
    """The daily total of every civil day of [since, NOW) that has data, by day."""
    first, stop = civil_days(since)
    by_day: dict[date, list[dict[str, Any]]] = {}
    for p in points(ids, kebab):
        if first <= p.civil_start.date() < stop:
            by_day.setdefault(p.civil_start.date(), []).append(p.doc)
    totals: dict[str, Any] = {}
    for day, docs in by_day.items():
        if kebab == "steps":
            totals[day.isoformat()] = {"countSum": str(sum(int(d["steps"]["count"]) for d in docs))}
        elif kebab == "distance":
            mm = sum(int(d["distance"]["millimeters"]) for d in docs)
            totals[day.isoformat()] = {"millimetersSum": str(mm)}
        else:
            totals[day.isoformat()] = {"kcalSum": float(sum(d["kcal"] for d in docs))}
    return totals


def dumped(payloads: list[Any]) -> list[bytes]:
    return sorted(orjson.dumps(p, option=orjson.OPT_SORT_KEYS) for p in payloads)


# --- fetching as the syncer does ----------------------------------------------------------------


async def fetch(
    http: ProviderHttp, resource: Resource, size: timedelta | None = None, since: datetime = START
) -> list[list[Item]]:
    """Each window's items for [since, NOW), windows cut at `size` (default: max_window)."""
    out = []
    for window_start, window_end in windows(since, NOW, size or resource.max_window):
        items: list[Item] = []
        async for page in pages(resource, window_start, window_end, http.send):
            items.extend(page.items)
        out.append(items)
    return out


async def fitbit_calls(sim: httpx.AsyncClient) -> int:
    stats = (await sim.get("/_control/stats")).json()
    return sum(stats["calls"].get("fitbit", {}).values())


def assert_all_once(
    ids: dict[str, Any], resource: Resource, items: list[Item], since: datetime = START
) -> None:
    keys = [i.key for i in items]
    if resource.name.endswith(":dailyRollUp"):
        kebab = resource.name.removesuffix(":dailyRollUp")
        assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
        totals = held_rollups(ids, kebab, since)
        assert totals
        rows: list[Any] = [i.payload for i in items]
        assert {i.key: row[ROLLUP_MEMBERS[kebab]] for i, row in zip(items, rows, strict=True)} == (
            totals
        )
        for item, row in zip(items, rows, strict=True):  # one civil day per row
            end = date(**row["civilEndTime"]["date"])
            assert end == date.fromisoformat(item.key) + timedelta(days=1)
        return
    docs = held_points(ids, resource.name, since)
    assert dumped([i.payload for i in items]) == dumped(docs)  # each record exactly once
    if resource.series is not None:
        assert all(i.start is not None and i.key == i.start.date().isoformat() for i in items)
    else:
        assert len(keys) == len(set(keys)), Counter(keys).most_common(3)


def minimum_calls(ids: dict[str, Any], resource: Resource) -> int:
    """The fewest calls Google's range caps and page sizes allow for [START, NOW)."""
    if resource.name.endswith(":dailyRollUp"):
        cap = ROLLUP_DAYS[resource.name.removesuffix(":dailyRollUp")]
        return math.ceil((STOP_DAY - FIRST_DAY).days / cap)  # one answer per range
    page = SESSION_PAGE if resource.name in ("sleep", "exercise") else LIST_PAGE
    return max(1, math.ceil(len(held_points(ids, resource.name)) / page))


# --- backfill ---------------------------------------------------------------------------------


async def test_a_year_of_every_resource_in_the_fewest_calls(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    ids = await who(sim)
    assert {r.name for r in PROVIDER.resources} == {
        "steps", "distance", "active-minutes", "active-zone-minutes", "heart-rate", "exercise",
        "sleep", "weight", "body-fat", "daily-resting-heart-rate",
        "daily-heart-rate-variability", "daily-oxygen-saturation",
        "steps:dailyRollUp", "distance:dailyRollUp", "total-calories:dailyRollUp",
    }  # fmt: skip
    before = await fitbit_calls(sim)
    total = 0
    for resource in PROVIDER.resources:
        calls_before = http.stats.calls
        items = [item for window in await fetch(http, resource) for item in window]
        assert_all_once(ids, resource, items)
        fewest = minimum_calls(ids, resource)
        if not resource.name.endswith(":dailyRollUp"):
            # list has no range cap: one window, then as many pages as the page size forces.
            assert len(windows(START, NOW, resource.max_window)) == 1
        assert http.stats.calls - calls_before == fewest, resource.name
        total += fewest
    assert http.stats.retries == 0
    assert await fitbit_calls(sim) - before == total
    counts = {name: len(held_points(ids, name)) for name in PER_SOURCE}
    assert counts["heart-rate"] > 100_000 and counts["sleep"] > 300 and counts["weight"] > 100


async def test_items_carry_utc_times_from_the_records(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    for name, member, at in [
        ("sleep", "sleep", ("interval", "startTime", "endTime")),
        ("exercise", "exercise", ("interval", "startTime", "endTime")),
        ("weight", "weight", ("sampleTime", "physicalTime", "physicalTime")),
    ]:
        (items,) = await fetch(http, PROVIDER.resource(name))
        assert items
        for item in items:
            doc: Any = item.payload
            assert item.key == doc["name"]  # identifiable types keep Google's own id
            times = doc[member][at[0]]
            assert item.start == datetime.fromisoformat(times[at[1]])
            assert item.end == datetime.fromisoformat(times[at[2]])
            assert item.start is not None and item.start.utcoffset() == timedelta(0)
    (resting,) = await fetch(http, PROVIDER.resource("daily-resting-heart-rate"))
    first: Any = resting[0].payload
    civil = first["dailyRestingHeartRate"]["date"]
    assert resting[0].key.startswith(f"{civil['year']}-{civil['month']:02}-{civil['day']:02}@")
    assert first["dailyRestingHeartRate"]["beatsPerMinute"].isdigit()  # int64 kept a string


@pytest.mark.parametrize("name", [r.name for r in PROVIDER.resources])
async def test_event_ids_do_not_depend_on_window_cuts(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory, name: str
) -> None:
    """The last 90 days, whole and cut in 30-day windows (7 where the cap is 14 days). One
    resource per test: the simulator's clock stands still, so its 300 calls a minute never come
    back within one test."""
    http = await provider_http(PROVIDER, USER)
    resource = PROVIDER.resource(name)
    smaller = min(timedelta(days=30), resource.max_window / 2)
    fetched = {
        size: await fetch(http, resource, size, since=RECENT)
        for size in (resource.max_window, smaller)
    }
    assert all(len(cuts) > 1 for size, cuts in fetched.items() if size == smaller)
    whole, cut = (
        [
            e.id
            for items in windows_items
            for e in envelopes(PROVIDER, resource, USER_ID, items, NOW)
        ]
        for windows_items in fetched.values()
    )
    assert len(whole) == len(set(whole))
    assert set(cut) == set(whole)
    assert bool(whole) == (name not in SERVED_EMPTY)
    if resource.series is not None:
        events = envelopes(PROVIDER, resource, USER_ID, fetched[resource.max_window][0], NOW)
        days = [e.window.start.date() for e in events if e.window.start is not None]
        assert len(events) == len(set(days))  # one event per UTC day
    if name == "heart-rate":
        assert len(events) == 91  # the partial first and last days included
        payload: Any = events[1].payload
        assert set(payload) == {"dataPoints"} and len(payload["dataPoints"]) == 288


async def test_a_malformed_page_is_retried_and_nothing_is_lost(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    """Over the last 90 days: heart rate, sleep and exercise still take several pages."""
    http = await provider_http(PROVIDER, USER)
    ids = await who(sim)
    armed = 0
    for resource in PROVIDER.resources:
        path = resource.first_call(RECENT, NOW).path
        fault = {"provider": "fitbit", "path_prefix": path, "kind": "malformed_json", "count": 1}
        assert (await sim.post("/_control/faults", json=fault)).is_success  # the first call
        armed += 1
        items: list[Item] = []
        for window_start, window_end in windows(RECENT, NOW, resource.max_window):
            async for page in pages(resource, window_start, window_end, http.send):
                if page.next is not None and not items:  # and one in the middle of the pages
                    assert (await sim.post("/_control/faults", json=fault)).is_success
                    armed += 1
                items.extend(page.items)
        assert_all_once(ids, resource, items, since=RECENT)
    stats = (await sim.get("/_control/stats")).json()
    assert (await sim.get("/_control/faults")).json()["armed"] == []
    assert http.stats.retries == stats["faults"]["fitbit"] == armed > len(PROVIDER.resources)


# --- answers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [
        ("status_500", Transient),
        ("status_503", Transient),
        ("timeout", Transient),
        ("malformed_json", Transient),
        ("rate_limit", RateLimited),
        ("unauthorized", Unauthorized),
    ],
)
async def test_simulated_faults_are_classified(
    sim: httpx.AsyncClient, kind: str, verdict: type
) -> None:
    token = (await connect(sim, "fitbit", user="fitbit-errors"))["access_token"]
    fault = {"provider": "fitbit", "path_prefix": "/v4/users/me", "kind": kind, "count": 1}
    assert (await sim.post("/_control/faults", json=fault)).is_success
    response = await sim.get(
        "/fitbit/v4/users/me/dataTypes/weight/dataPoints",
        headers={"Authorization": f"Bearer {token}"},
    )
    answer = check_answer(http_answer(response))
    assert isinstance(answer, verdict), (response.status_code, response.text, answer)
    if isinstance(answer, RateLimited):
        assert answer.retry_after_s is None  # Google documents no Retry-After


async def test_real_refusals_are_classified(sim: httpx.AsyncClient) -> None:
    sleep_only = "https://www.googleapis.com/auth/googlehealth.sleep.readonly"
    token = (await connect(sim, "fitbit", user=USER, scope=sleep_only))["access_token"]
    unlinked = (await connect(sim, "fitbit", user="unlinked-fitbit"))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    base = "/fitbit/v4/users/me/dataTypes"
    rollup = {
        "range": {
            "start": {"date": {"year": 2025, "month": 3, "day": 1}},
            "end": {"date": {"year": 2025, "month": 6, "day": 1}},
        },
        "windowSizeDays": 1,
    }
    cases = [
        (await sim.get(f"{base}/steps/dataPoints", headers=auth), 403, Refused),  # scope
        (
            await sim.get(
                f"{base}/steps/dataPoints", headers={"Authorization": f"Bearer {unlinked}"}
            ),
            400,
            Refused,
        ),  # ACCOUNT_NOT_LINKED
        (await sim.get(f"{base}/heartRate/dataPoints", headers=auth), 400, Refused),
        (
            await sim.get(
                f"{base}/sleep/dataPoints",
                params={"filter": 'sleep.interval.start_time >= "2026-01-01T00:00:00Z"'},
                headers=auth,
            ),
            400,
            Refused,
        ),  # INVALID_DATA_POINT_FILTER: sleep filters on its end
        (
            await sim.post(
                f"{base}/steps/dataPoints:dailyRollUp",
                json=rollup,
                headers={"Authorization": f"Bearer {unlinked}"},
            ),
            400,
            Refused,
        ),
        (
            await sim.get(f"{base}/sleep/dataPoints", headers={"Authorization": "Bearer x"}),
            401,
            Unauthorized,
        ),
        (
            await sim.get(
                f"{base}/sleep/dataPoints",
                params={"filter": 'sleep.interval.end_time >= "2026-03-13T00:00:00Z"'},
                headers=auth,
            ),
            200,
            Ok,
        ),
    ]
    for response, status, verdict in cases:
        assert response.status_code == status, response.text
        assert isinstance(check_answer(http_answer(response)), verdict), response.text


async def test_an_unlinked_account_stops_the_resource_at_once(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, "unlinked-fitbit")
    with pytest.raises(CallRefused, match="ACCOUNT_NOT_LINKED"):
        await fetch(http, PROVIDER.resource("weight"))
    assert http.stats.calls == 1 and http.stats.retries == 0


@pytest.mark.parametrize(
    ("sample", "status", "verdict"),
    [
        ("error.400.account_not_linked.fixture.json", 400, Refused),
        ("error.400.invalid_parent_data_type.reconstructed.json", 400, Refused),
        ("error.401.unauthenticated.fixture.json", 401, Unauthorized),
        ("error.403.scope_insufficient.fixture.json", 403, Refused),
        ("error.429.resource_exhausted.fixture.json", 429, RateLimited),
        ("steps.list.reconstructed.json", 200, Ok),
        ("daily_rollup.steps.third_party_doc.json", 200, Ok),
    ],
)
def test_recorded_answers_are_classified(sample: str, status: int, verdict: type) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    raw = (SAMPLES / sample).read_bytes()
    answer = HttpAnswer(status, {"content-type": "application/json"}, orjson.loads(raw), "")
    assert isinstance(check_answer(answer), verdict)


def test_odd_answers_are_classified() -> None:
    def status(code: int, name: str) -> dict[str, Any]:
        return {"error": {"code": code, "message": "m", "status": name}}

    assert check_answer(HttpAnswer(429, {"retry-after": "7"}, status(429, "x"), "")) == (
        RateLimited(7.0)
    )
    assert isinstance(check_answer(HttpAnswer(504, {}, None, "Gateway Timeout")), Transient)
    assert isinstance(check_answer(HttpAnswer(200, {}, None, '{"dataPoints": [')), Transient)
    assert isinstance(check_answer(HttpAnswer(409, {}, status(409, "ABORTED"), "")), Transient)
    assert isinstance(check_answer(HttpAnswer(404, {}, status(404, "NOT_FOUND"), "")), Refused)
    quota = HttpAnswer(403, {}, status(403, "RESOURCE_EXHAUSTED"), "")
    assert isinstance(check_answer(quota), RateLimited)


@pytest.mark.parametrize(
    "body",
    [
        {"error": {"code": 400}},
        {"dataPoints": {}},
        {"dataPoints": [1]},
        {"dataPoints": [], "nextPageToken": 3},
        {"dataPoints": [{"dataSource": {}, "somethingElse": {}}]},
        {"rollupDataPoints": []},
        [],
    ],
)
def test_list_pages_not_shaped_as_documented_are_refused(body: Any) -> None:
    for resource in PROVIDER.resources:
        if not resource.name.endswith(":dailyRollUp"):
            with pytest.raises(MalformedPage):
                resource.read_page(body, resource.first_call(START, NOW))


@pytest.mark.parametrize(
    "body",
    [
        {"dataPoints": []},
        {"rollupDataPoints": {}},
        {"rollupDataPoints": [{"steps": {"countSum": "1"}}]},
        {"rollupDataPoints": [{"civilStartTime": {"date": {"year": 2026}}}]},
        [],
    ],
)
def test_rollup_pages_not_shaped_as_documented_are_refused(body: Any) -> None:
    for resource in PROVIDER.resources:
        if resource.name.endswith(":dailyRollUp"):
            with pytest.raises(MalformedPage):
                resource.read_page(body, resource.first_call(START, NOW))


def test_an_empty_page_is_an_empty_object() -> None:
    """Proto3 JSON leaves an empty list out: `{}` is a complete, empty page."""
    for resource in PROVIDER.resources:
        page = resource.read_page({}, resource.first_call(START, NOW))
        assert page.items == [] and page.next is None


def test_filters_follow_each_record_kind_and_pages_repeat_the_query() -> None:
    def filter_of(name: str) -> str:
        return PROVIDER.resource(name).first_call(START, NOW).params["filter"]

    physical = '>= "2025-03-15T12:00:00Z" AND {0} < "2026-03-15T12:00:00Z"'
    for name, field_name in [
        ("steps", "steps.interval.start_time"),
        ("active-zone-minutes", "active_zone_minutes.interval.start_time"),
        ("heart-rate", "heart_rate.sample_time.physical_time"),
        ("body-fat", "body_fat.sample_time.physical_time"),
        ("sleep", "sleep.interval.end_time"),
    ]:
        assert filter_of(name) == f"{field_name} " + physical.format(field_name)
    for name, field_name in [
        ("daily-heart-rate-variability", "daily_heart_rate_variability.date"),
        ("daily-oxygen-saturation", "daily_oxygen_saturation.date"),
        ("exercise", "exercise.interval.civil_start_time"),
    ]:
        assert filter_of(name) == f'{field_name} >= "2025-03-15" AND {field_name} < "2026-03-16"'
    sleep = PROVIDER.resource("sleep")
    first = sleep.first_call(START, NOW)
    assert first.path == "/v4/users/me/dataTypes/sleep/dataPoints"
    assert first.params["pageSize"] == "25"
    assert PROVIDER.resource("steps").first_call(START, NOW).params["pageSize"] == "10000"
    page = sleep.read_page({"nextPageToken": "abc"}, first)
    assert page.next is not None
    assert dict(page.next.params) == {**first.params, "pageToken": "abc"}
    assert sleep.read_page({"dataPoints": [], "nextPageToken": ""}, page.next).next is None


def test_daily_rollups_tile_civil_days_within_the_caps() -> None:
    steps = PROVIDER.resource("steps:dailyRollUp")
    call = steps.first_call(START, NOW)
    assert (call.method, call.path) == (
        "POST",
        "/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp",
    )
    assert call.json == {
        "range": {
            "start": {"date": {"year": 2025, "month": 3, "day": 15}},
            "end": {"date": {"year": 2026, "month": 3, "day": 16}},
        },
        "windowSizeDays": 1,
    }
    for resource in PROVIDER.resources:
        if not resource.name.endswith(":dailyRollUp"):
            continue
        cap = ROLLUP_DAYS[resource.name.removesuffix(":dailyRollUp")]
        ranges = []
        for window_start, window_end in windows(START, NOW, resource.max_window):
            body: Any = resource.first_call(window_start, window_end).json
            first, stop = (date(**body["range"][end]["date"]) for end in ("start", "end"))
            assert 0 < (stop - first).days <= cap
            ranges.append((first, stop))
        # Closed-open ranges meet exactly: every civil day once, today included.
        assert ranges[0][0] == FIRST_DAY and ranges[-1][1] == STOP_DAY
        assert all(a[1] == b[0] for a, b in pairwise(ranges))


# --- webhooks ---------------------------------------------------------------------------------


async def public_key(sim: httpx.AsyncClient) -> str:
    answer = await sim.get("/_control/webhooks/fitbit/public-key")
    assert answer.status_code == 200
    return answer.text


async def notify(sim: httpx.AsyncClient, receiver: Receiver, **extra: str) -> WebhookRequest:
    """A genuine notification, as the simulator delivered it to our endpoint."""
    await connect(sim, "fitbit", user=USER)
    answer = await sim.post(
        "/_control/webhooks/send",
        json={"provider": "fitbit", "user": USER, "url": HOOK, "day": "2026-03-14", **extra},
    )
    assert answer.status_code == 200, answer.text
    return receiver.requests[-1]


@pytest.mark.parametrize(
    ("data_type", "resources"),
    [
        ("steps", ("steps", "steps:dailyRollUp")),
        ("sleep", ("sleep",)),
        ("heart-rate", ("heart-rate",)),
        ("weight", ("weight",)),
        ("daily-heart-rate-variability", ("daily-heart-rate-variability",)),
        ("total-calories", ("total-calories:dailyRollUp",)),
    ],
)
async def test_a_genuine_notification_yields_its_notice(
    sim: httpx.AsyncClient, receiver: Receiver, data_type: str, resources: tuple[str, ...]
) -> None:
    receiver.secrets = replace(receiver.secrets, public_key_pem=await public_key(sim))
    request = await notify(sim, receiver, data_type=data_type)
    ids = await who(sim)
    zone = ZoneInfo(ids["time_zone"])
    expected = Notices(
        [
            Notice(
                provider_user_id=ids["healthUserId"],
                resources=resources,
                start=datetime(2026, 3, 14, tzinfo=zone).astimezone(UTC),
                end=datetime(2026, 3, 15, tzinfo=zone).astimezone(UTC),
            )
        ]
    )
    assert receiver.outcomes[-1] == expected  # what our endpoint answered the simulator
    assert verify_webhook(request, receiver.secrets) == expected
    assert set(resources) <= {r.name for r in PROVIDER.resources}


async def test_unverified_notifications_are_refused(
    sim: httpx.AsyncClient, receiver: Receiver
) -> None:
    secrets = replace(receiver.secrets, public_key_pem=await public_key(sim))
    genuine = await notify(sim, receiver, data_type="sleep")
    headers = genuine.headers
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = base64.b64encode(other_key.sign(genuine.body, ec.ECDSA(hashes.SHA256()))).decode()
    other_pem = (
        other_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

    def without(name: str) -> dict[str, str]:
        return {k: v for k, v in headers.items() if k != name}

    refusals = [
        (replace(genuine, body=genuine.body.replace(b"sleep", b"steps")), secrets, 401),
        (replace(genuine, headers={**headers, "x-healthapi-signature": forged}), secrets, 401),
        (
            replace(genuine, headers={**headers, "x-healthapi-signature": "not base64!"}),
            secrets,
            401,
        ),
        (replace(genuine, headers=without("x-healthapi-signature")), secrets, 401),
        (replace(genuine, headers=without("authorization")), secrets, 401),
        (replace(genuine, headers={**headers, "authorization": "Bearer guess"}), secrets, 401),
        (genuine, replace(secrets, authorization="Bearer another-secret"), 401),
        (genuine, replace(secrets, public_key_pem=other_pem), 401),
        (genuine, replace(secrets, public_key_pem=None), 403),
        (genuine, replace(secrets, authorization=None), 403),
        (replace(genuine, method="GET"), secrets, 405),
    ]
    for request, given, status in refusals:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(request, given)
        assert refused.value.status == status, refused.value.reason
    # Google signs no timestamp, so there is no stale one to refuse; the genuine call passes.
    assert isinstance(verify_webhook(genuine, secrets), Notices)


async def test_the_endpoint_check_passes_only_with_our_secret(
    sim: httpx.AsyncClient, receiver: Receiver
) -> None:
    check = {"provider": "fitbit", "user": USER, "url": HOOK, "kind": "verification"}
    answer = (await sim.post("/_control/webhooks/send", json=check)).json()
    assert answer["verified"] is True  # the simulator judged our answers: 201, then 401
    signed, anonymous = receiver.outcomes[-2:]
    assert signed == Challenge(201, None)
    assert isinstance(anonymous, WebhookRefused) and anonymous.status == 401
    answer = (
        await sim.post("/_control/webhooks/send", json={**check, "secret": "Bearer no"})
    ).json()
    assert answer["verified"] is False
    assert [r["status"] for r in answer["requests"]] == [401, 401]


def test_notifications_as_observed_are_read() -> None:
    """The observed batch (no end times; the sleep one has only a civil start), signed by a key
    of our own; a data type we do not sync is acknowledged with nothing to do."""
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    batch = orjson.loads((SAMPLES / "webhook.notification.observed_anonymized.json").read_bytes())
    batch.append({"data": {**batch[0]["data"], "dataType": "floors"}})
    body = orjson.dumps(batch)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    signature = base64.b64encode(key.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    headers = {"authorization": SECRET, "x-healthapi-signature": signature}
    request = WebhookRequest("POST", {}, headers, body)
    assert verify_webhook(request, WebhookSecrets(None, None, SECRET, pem)) == Notices(
        [
            Notice("AbC123xyz", ("steps", "steps:dailyRollUp"), datetime(2026, 8, 13, tzinfo=UTC)),
            # A civil time has no offset: widened by a day.
            Notice("AbC123xyz", ("sleep",), datetime(2026, 8, 12, tzinfo=UTC)),
        ]
    )
