"""The Strava module against the simulator: a year's backfill of activities in the fewest calls,
deterministic event ids across window cuts, error classification, rate-limit headers, webhooks."""

import math
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID

import httpx
import orjson
import pytest

from healthmesh.connectors.fetching import envelopes, pages, windows
from healthmesh.connectors.provider_http import CallRefused, ProviderHttp, http_answer
from healthmesh.connectors.providers.base import (
    Call,
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
from healthmesh.connectors.providers.strava import (
    PROVIDER,
    check_answer,
    until_reset,
    usage_from_headers,
    verify_webhook,
)
from healthmesh.simulator.app import create_app
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.providers.strava_data import strava_day
from healthmesh.simulator.settings import Settings as SimulatorSettings
from healthmesh.simulator.synth import days_between
from healthmesh.simulator.testing import client_secret, connect

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The simulator's fixed clock (conftest.NOW)."""
START = NOW - timedelta(days=365)
SEED = 1  # the simulator's default seed
PER_PAGE = 200  # Strava's largest page
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "strava"
USER = "strava-athlete"
"""One simulated person throughout (over 200 activities a year, so pages really turn)."""
USER_ID = UUID("0b7e3f52-8c1d-4f0a-9e63-5d2a7c41e8b4")
LIST = "/strava/api/v3/athlete/activities"
SECRETS = WebhookSecrets(
    client_secret=client_secret("strava"),
    verify_token="strava-verify",
    authorization=None,
    public_key_pem=None,
)
HOOK = "http://app.test/webhooks/strava"

ProviderHttpFactory = Callable[[Provider, str], Awaitable[ProviderHttp]]


@pytest.fixture
def simulator_settings() -> SimulatorSettings:
    """A `timeout` fault answers its 504 at once instead of hanging two minutes."""
    return SimulatorSettings(days=400, fault_timeout_s=0)


# --- what the simulator holds -------------------------------------------------------------------


async def identity(sim: httpx.AsyncClient, user: str) -> dict[str, Any]:
    answer = await sim.get(f"/_control/users/{user}")
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()["strava"]
    return result


def held(who: dict[str, Any], user: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """From the data module: every activity started in [start, end) and finished by NOW
    (private ones too: the test grant has activity:read_all)."""
    first, last = date.fromisoformat(who["first_day"]), date.fromisoformat(who["last_day"])
    return [
        activity.summary
        for day in days_between(first, last)
        for activity in strava_day(SEED, user, day)
        if start.timestamp() <= activity.start < end.timestamp()
        and activity.start + activity.summary["elapsed_time"] <= NOW.timestamp()
    ]


async def listed(sim: httpx.AsyncClient, token: str, start: datetime, end: datetime) -> list[Any]:
    """From the simulator itself: the whole list, newest first, in small pages, cut to range."""
    out: list[Any] = []
    for page in range(1, 1000):
        answer = await sim.get(
            LIST,
            params={"page": page, "per_page": 30},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200, answer.text
        if not answer.json():
            break
        out.extend(answer.json())
    return [a for a in out if start <= datetime.fromisoformat(a["start_date"]) < end]


# --- fetching as the syncer does ----------------------------------------------------------------


async def fetch(
    http: ProviderHttp, resource: Resource, size: timedelta | None = None, start: datetime = START
) -> list[list[Item]]:
    """Each window's items for [start, NOW), windows cut at `size` (default: max_window)."""
    out = []
    for window_start, window_end in windows(start, NOW, size or resource.max_window):
        items: list[Item] = []
        async for page in pages(resource, window_start, window_end, http.send):
            items.extend(page.items)
        out.append(items)
    return out


def fewest_calls(records: int) -> int:
    """Full pages, then the empty page that alone tells the end: Strava documents that a short
    page may come before the last one, so a window cannot stop at a short page."""
    return math.ceil(records / PER_PAGE) + 1


async def list_calls(sim: httpx.AsyncClient) -> int:
    stats = (await sim.get("/_control/stats")).json()
    return int(stats["calls"].get("strava", {}).get("/api/v3/athlete/activities", 0))


def assert_all_once(items: list[Item], expected: list[dict[str, Any]]) -> None:
    keys = [i.key for i in items]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    assert {i.key: i.payload for i in items} == {str(a["id"]): a for a in expected}


# --- backfill -----------------------------------------------------------------------------------


async def test_a_year_of_activities_in_one_window_and_the_fewest_calls(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    assert [r.name for r in PROVIDER.resources] == ["activities"]
    resource = PROVIDER.resource("activities")
    assert resource.series is None and resource.page_size == PER_PAGE
    assert len(windows(START, NOW, resource.max_window)) == 1
    assert len(windows(NOW - timedelta(days=3 * 365), NOW, resource.max_window)) == 1
    before = await list_calls(sim)
    (items,) = await fetch(http, resource)
    made = await list_calls(sim) - before
    expected = held(who, USER, START, NOW)
    assert len(expected) > PER_PAGE  # more than one page, so pagination is exercised
    assert_all_once(items, expected)
    assert any(a["private"] for a in expected)  # "Only Me" activities come with activity:read_all
    # And the same as the simulator serves when listed without `after`/`before`, 30 at a time.
    token = str((await connect(sim, "strava", user=USER))["access_token"])
    direct = await listed(sim, token, START, NOW)
    assert sorted(str(a["id"]) for a in direct) == sorted(i.key for i in items)
    # With `after`, oldest first: the items come in start order.
    starts = [i.start for i in items if i.start is not None]
    assert len(starts) == len(items) and starts == sorted(starts)
    # One window: the pages Strava's page size forces, plus the empty one that ends it.
    assert http.stats.calls == fewest_calls(len(expected)) == 3
    assert http.stats.retries == 0
    assert made == http.stats.calls


async def test_items_carry_utc_times_from_start_date(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    (items,) = await fetch(http, PROVIDER.resource("activities"), start=NOW - timedelta(days=60))
    assert items
    for item in items:
        doc: Any = item.payload
        assert item.key == str(doc["id"])
        assert item.start == datetime.fromisoformat(doc["start_date"])
        assert item.start is not None and item.start.utcoffset() == timedelta(0)
        assert item.end == item.start + timedelta(seconds=doc["elapsed_time"])
    # start_date_local is local wall time with a misleading Z: never used for the item's time.
    docs: list[Any] = [i.payload for i in items]
    assert any(d["start_date_local"] != d["start_date"] for d in docs)


async def test_the_window_edges_are_exact(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    """An activity starting on a window's first second is in that window and only in it."""
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    resource = PROVIDER.resource("activities")
    some = held(who, USER, NOW - timedelta(days=30), NOW)[3]
    at = datetime.fromisoformat(some["start_date"])
    cuts = [(at - timedelta(days=2), at), (at, at + timedelta(days=2))]
    found: list[list[str]] = []
    for window_start, window_end in cuts:
        items: list[Item] = []
        async for page in pages(resource, window_start, window_end, http.send):
            items.extend(page.items)
        found.append([i.key for i in items])
        assert {i.key for i in items} == {
            str(a["id"]) for a in held(who, USER, window_start, window_end)
        }
    assert str(some["id"]) in found[1] and str(some["id"]) not in found[0]


async def test_event_ids_do_not_depend_on_window_cuts(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    resource = PROVIDER.resource("activities")
    start = NOW - timedelta(days=90, hours=7)  # not on a midnight, as a real cursor
    ids: list[set[UUID]] = []
    for size in (resource.max_window, timedelta(days=30), timedelta(days=7)):
        cut = [
            e.id
            for items in await fetch(http, resource, size, start)
            for e in envelopes(PROVIDER, resource, USER_ID, items, NOW)
        ]
        assert len(cut) == len(set(cut))
        ids.append(set(cut))
    assert ids[0] == ids[1] == ids[2]
    assert len(ids[0]) > 20


async def test_a_malformed_page_is_retried_and_nothing_is_lost(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    resource = PROVIDER.resource("activities")
    items: list[Item] = []
    ((window_start, window_end),) = windows(START, NOW, resource.max_window)
    async for page in pages(resource, window_start, window_end, http.send):
        if not items:  # after the first page: the next page's call and its retry break
            assert page.next is not None
            fault = {"provider": "strava", "path_prefix": "/api/v3", "kind": "malformed_json"}
            assert (await sim.post("/_control/faults", json={**fault, "count": 2})).is_success
        items.extend(page.items)
    expected = held(who, USER, START, NOW)
    assert_all_once(items, expected)
    stats = (await sim.get("/_control/stats")).json()
    assert (await sim.get("/_control/faults")).json()["armed"] == []
    assert http.stats.retries == stats["faults"]["strava"] == 2
    assert http.stats.calls == fewest_calls(len(expected)) + 2


# --- answers ------------------------------------------------------------------------------------


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
    token = (await connect(sim, "strava", user=USER))["access_token"]
    fault = {"provider": "strava", "path_prefix": "/api/v3", "kind": kind, "count": 1}
    assert (await sim.post("/_control/faults", json=fault)).is_success
    response = await sim.get(LIST, headers={"Authorization": f"Bearer {token}"})
    at = datetime(2026, 3, 15, 12, 7, 30, tzinfo=UTC).timestamp()
    answer = check_answer(http_answer(response), now=at)
    assert isinstance(answer, verdict), (response.status_code, response.text, answer)
    if isinstance(answer, RateLimited):
        # No Retry-After; the injected 429 reports every window spent, the daily ones too:
        # wait for UTC midnight (plus a second).
        assert "retry-after" not in response.headers
        assert answer.retry_after_s == pytest.approx(11 * 3600 + 52 * 60 + 30 + 1)


async def test_real_refusals_are_classified(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "strava", user=USER))["access_token"]
    read_only = (await connect(sim, "strava", user=USER, scope="read"))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    no_scope = await sim.get(LIST, headers={"Authorization": f"Bearer {read_only}"})
    assert no_scope.status_code == 401
    assert no_scope.json()["errors"] == [
        {"resource": "AccessToken", "field": "activity:read_permission", "code": "missing"}
    ]
    cases = [
        (no_scope, Refused),  # a refresh gives the same scopes: refused for good
        (await sim.get(LIST, headers={"Authorization": "Bearer nope"}), Unauthorized),
        (await sim.get("/strava/api/v3/activities/12", headers=auth), Refused),  # 404
        (await sim.get(LIST, params={"page": "x"}, headers=auth), Refused),  # 400
        (await sim.get(LIST, headers=auth), Ok),
    ]
    for response, verdict in cases:
        assert isinstance(check_answer(http_answer(response)), verdict), response.text
    assert [r.status_code for r, _ in cases] == [401, 401, 404, 400, 200]


async def test_a_missing_scope_stops_the_resource_at_once(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "strava", user=USER, scope="read"))["access_token"]
    refreshes = 0

    async def tokens(rejected: str | None) -> str:
        nonlocal refreshes
        refreshes += rejected is not None
        return str(token)

    http = ProviderHttp(sim, PROVIDER, "http://sim/strava", USER_ID, tokens, budget=None)
    with pytest.raises(CallRefused):
        await fetch(http, PROVIDER.resource("activities"))
    assert http.stats.calls == 1 and refreshes == 0


def test_recorded_answers_are_classified() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    raw = (SAMPLES / "athlete_activities.list.swagger_example.json").read_bytes()
    answer = check_answer(
        HttpAnswer(200, {"content-type": "application/json"}, orjson.loads(raw), "")
    )
    assert isinstance(answer, Ok)
    resource = PROVIDER.resource("activities")
    page = resource.read_page(answer.body, resource.first_call(START, NOW))
    assert [i.key for i in page.items] == ["154504250376823", "1234567809"]
    assert page.items[0].start == datetime(2018, 5, 2, 12, 15, 9, tzinfo=UTC)  # not 05:15 local


def test_odd_answers() -> None:
    fault = {"message": "Rate Limit Exceeded", "errors": []}
    assert check_answer(HttpAnswer(429, {"retry-after": "7"}, fault, "")) == RateLimited(7.0)
    assert isinstance(check_answer(HttpAnswer(504, {}, None, "Gateway Timeout")), Transient)
    assert isinstance(check_answer(HttpAnswer(200, {}, None, '[{"id": ')), Transient)
    assert isinstance(check_answer(HttpAnswer(403, {}, {"message": "Forbidden"}, "")), Refused)


def test_rate_limit_waits_until_the_window_that_is_spent_resets() -> None:
    at = datetime(2026, 3, 15, 12, 7, 30, tzinfo=UTC).timestamp()
    short = {
        "x-ratelimit-limit": "200,2000",
        "x-ratelimit-usage": "180,640",
        "x-readratelimit-limit": "100,1000",
        "x-readratelimit-usage": "101,640",
    }
    assert until_reset(short, now=at) == 7 * 60 + 30 + 1  # the next quarter hour, 12:15
    daily = {**short, "x-readratelimit-usage": "12,1003"}
    assert until_reset(daily, now=at) == 11 * 3600 + 52 * 60 + 30 + 1  # UTC midnight
    dated = {**short, "date": "Sun, 15 Mar 2026 12:14:00 GMT"}
    assert until_reset(dated) == 60 + 1  # Strava's own clock when it sends one
    answer = check_answer(HttpAnswer(429, short, {"message": "Rate Limit Exceeded"}, ""), now=at)
    assert answer == RateLimited(7 * 60 + 30 + 1)


async def test_usage_headers_of_a_real_answer(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "strava", user=USER))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    await sim.get(LIST, headers=auth)
    response = await sim.get(LIST, headers=auth)
    assert usage_from_headers(response.headers) == {
        "overall_15min": 2,
        "overall_daily": 2,
        "read_15min": 2,
        "read_daily": 2,
    }
    limits = {limit.name: limit for limit in PROVIDER.limits}
    assert set(limits) == set(usage_from_headers(response.headers))
    announced = (
        response.headers["x-ratelimit-limit"] + "," + response.headers["x-readratelimit-limit"]
    )
    assert [limits[n].capacity for n in limits] == [int(v) for v in announced.split(",")]
    assert [limits[n].seconds for n in limits] == [900, 86_400, 900, 86_400]
    assert not any(limit.per_user for limit in PROVIDER.limits)  # per application
    assert usage_from_headers({"X-RateLimit-Usage": "3,9"}) == {
        "overall_15min": 3,
        "overall_daily": 9,
    }
    assert usage_from_headers({"x-ratelimit-usage": "garbage"}) == {}


@pytest.mark.parametrize(
    "body",
    [
        {"message": "Record Not Found", "errors": []},
        {"activities": []},
        [1],
        [{"name": "no id", "start_date": "2026-03-01T10:00:00Z"}],
        [{"id": "12", "start_date": "2026-03-01T10:00:00Z"}],
        [{"id": 12}],  # no start_date
        [{"id": 12, "start_date": "yesterday"}],
    ],
)
def test_pages_not_shaped_as_documented_are_refused(body: Any) -> None:
    resource = PROVIDER.resource("activities")
    with pytest.raises(MalformedPage):
        resource.read_page(body, resource.first_call(START, NOW))


def test_pagination_turns_pages_until_an_empty_one() -> None:
    resource = PROVIDER.resource("activities")
    first = resource.first_call(START, NOW)
    assert first == Call(
        "/api/v3/athlete/activities",
        {
            "after": str(int(START.timestamp()) - 1),
            "before": str(int(NOW.timestamp())),
            "page": "1",
            "per_page": "200",
        },
    )
    one = [{"id": 5, "start_date": "2026-03-01T10:00:00Z", "elapsed_time": 60}]
    short = resource.read_page(one, first)  # short, yet not the end
    assert short.next == Call(first.path, {**first.params, "page": "2"})
    assert resource.read_page([], short.next).next is None


# --- webhooks -----------------------------------------------------------------------------------


async def send(sim: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    await connect(sim, "strava", user=USER)
    answer = await sim.post(
        "/_control/webhooks/send",
        json={"provider": "strava", "user": USER, "url": HOOK, **extra},
    )
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


async def send_event(sim: httpx.AsyncClient, **extra: Any) -> WebhookRequest:
    """A genuine Strava event, as the simulator delivered it to our receiver."""
    sent = (await send(sim, **extra))["requests"][0]
    return WebhookRequest(
        method=sent["method"],
        query=dict(parse_qsl(urlsplit(sent["url"]).query)),
        headers={k.lower(): v for k, v in sent["headers"].items()},
        body=sent["body"].encode(),
    )


@pytest.mark.parametrize("aspect", ["create", "update", "delete"])
async def test_an_activity_event_re_syncs_activities_before_it(
    sim: httpx.AsyncClient, aspect: str
) -> None:
    updates = {"title": "Messy"} if aspect == "update" else {}
    request = await send_event(sim, aspect_type=aspect, updates=updates)
    event = orjson.loads(request.body)
    assert event["object_type"] == "activity" and event["aspect_type"] == aspect
    who = await identity(sim, USER)
    assert verify_webhook(request, SECRETS) == Notices(
        [
            Notice(
                provider_user_id=str(who["athlete_id"]),
                resources=("activities",),
                start=NOW - timedelta(days=30),
                end=NOW,
            )
        ]
    )


async def test_a_deauthorization_is_a_notice(sim: httpx.AsyncClient) -> None:
    request = await send_event(
        sim, object_type="athlete", aspect_type="update", updates={"authorized": "false"}
    )
    who = await identity(sim, USER)
    outcome = PROVIDER.verify_webhook(request, SECRETS)
    assert outcome == Notices([Notice(provider_user_id=str(who["athlete_id"]), deauthorized=True)])
    other = await send_event(
        sim, object_type="athlete", aspect_type="update", updates={"firstname": "Ada"}
    )
    assert verify_webhook(other, SECRETS) == Notices([])  # nothing we sync


async def test_events_not_shaped_as_strava_sends_them_are_refused(sim: httpx.AsyncClient) -> None:
    genuine = await send_event(sim)
    event = orjson.loads(genuine.body)
    tampered: list[bytes] = [
        b"",
        b"not json",
        orjson.dumps([event]),
        orjson.dumps({k: v for k, v in event.items() if k != "owner_id"}),
        orjson.dumps({**event, "owner_id": str(event["owner_id"])}),
        orjson.dumps({**event, "event_time": True}),
        orjson.dumps({**event, "subscription_id": None}),
        orjson.dumps({**event, "aspect_type": "destroy"}),
        orjson.dumps({**event, "object_type": "club"}),
        orjson.dumps({**event, "updates": ["authorized"]}),
    ]
    for body in tampered:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(WebhookRequest("POST", {}, genuine.headers, body), SECRETS)
        assert refused.value.status == 403, body
    with pytest.raises(WebhookRefused) as refused:
        verify_webhook(WebhookRequest("PUT", {}, genuine.headers, genuine.body), SECRETS)
    assert refused.value.status == 405
    assert isinstance(verify_webhook(genuine, SECRETS), Notices)


async def test_the_handshake_echoes_the_challenge_only_for_our_token(
    sim: httpx.AsyncClient,
) -> None:
    result = await send(sim, kind="validation", verify_token="strava-verify")
    sent = result["requests"][0]
    assert sent["method"] == "GET"
    query = dict(parse_qsl(urlsplit(sent["url"]).query))
    request = WebhookRequest("GET", query, {}, b"")
    assert verify_webhook(request, SECRETS) == Challenge(
        200, {"hub.challenge": query["hub.challenge"]}
    )
    without_challenge = {k: v for k, v in query.items() if k != "hub.challenge"}
    for bad_query, secrets in [
        ({**query, "hub.verify_token": "guess"}, SECRETS),
        ({k: v for k, v in query.items() if k != "hub.verify_token"}, SECRETS),
        ({**query, "hub.mode": "unsubscribe"}, SECRETS),
        (without_challenge, SECRETS),
        (query, WebhookSecrets(client_secret("strava"), None, None, None)),
    ]:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(WebhookRequest("GET", bad_query, {}, b""), secrets)
        assert refused.value.status == 403


async def test_the_simulator_sees_its_challenge_echoed(sim: httpx.AsyncClient) -> None:
    """The whole handshake through the simulator's own check, with our answer as receiver."""

    def receiver(request: httpx.Request) -> httpx.Response:
        query = dict(parse_qsl(request.url.query.decode()))
        try:
            outcome = verify_webhook(WebhookRequest("GET", query, {}, b""), SECRETS)
        except WebhookRefused as refused:
            return httpx.Response(refused.status)
        assert isinstance(outcome, Challenge)
        return httpx.Response(outcome.status, json=outcome.body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as outbound:
        app = create_app(
            SimulatorSettings(days=30), clock=FakeClock(NOW.timestamp()), http=outbound
        )
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://sim"
            ) as client,
        ):
            await connect(client, "strava", user=USER)
            body = {"provider": "strava", "user": USER, "url": HOOK, "kind": "validation"}
            good = await client.post(
                "/_control/webhooks/send", json={**body, "verify_token": "strava-verify"}
            )
            bad = await client.post(
                "/_control/webhooks/send", json={**body, "verify_token": "guess"}
            )
    assert good.json()["verified"] is True
    assert bad.json()["verified"] is False
    assert bad.json()["requests"][0]["status"] == 403
