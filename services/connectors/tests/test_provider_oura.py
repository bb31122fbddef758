"""The Oura module against the simulator: a year's backfill of every resource in the fewest
calls, deterministic event ids across window cuts, error classification, webhooks."""

import hashlib
import hmac
import math
import time
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
    Challenge,
    Deletion,
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
    dates_of,
    utc_day,
)
from healthmesh.connectors.providers.oura import (
    PROVIDER,
    RESYNC,
    check_answer,
    verify_webhook,
)
from healthmesh.simulator.providers.oura_data import oura_day
from healthmesh.simulator.settings import Settings as SimulatorSettings
from healthmesh.simulator.synth import days_between
from healthmesh.simulator.testing import client_secret, connect

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The simulator's fixed clock (conftest.NOW)."""
START = NOW - timedelta(days=365)
SEED = 1  # the simulator's default seed
DOCS_PER_PAGE = 100  # Oura's page size (not documented; the simulator's, no `limit` parameter)
ROWS_PER_PAGE = 10_000  # heart-rate rows per page
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "oura"
USER = "oura-person"
"""One simulated person throughout: the simulator caches a person's generated days."""
USER_ID = UUID("6f1c2a36-2d1e-4d8e-9a51-0c7a3f0e0b11")
SECRETS = WebhookSecrets(
    client_secret=client_secret("oura"),
    verify_token="oura-verify",
    authorization=None,
    public_key_pem=None,
)
HOOK = "http://app.test/webhooks/oura"

ProviderHttpFactory = Callable[[Provider, str], Awaitable[ProviderHttp]]


@pytest.fixture
def simulator_settings() -> SimulatorSettings:
    """A `timeout` fault answers its 504 at once instead of hanging two minutes."""
    return SimulatorSettings(days=400, fault_timeout_s=0)


# --- what the simulator holds, read from its data module ----------------------------------------


async def identity(sim: httpx.AsyncClient, user: str) -> dict[str, Any]:
    answer = await sim.get(f"/_control/users/{user}")
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()["oura"]
    return result


def held_documents(who: dict[str, Any], user: str, name: str, first: date, last: date) -> list[Any]:
    """Every document of `name` whose `day` is in [first, last] and that exists at NOW."""
    lo = max(first, date.fromisoformat(who["first_day"]))
    hi = min(last, date.fromisoformat(who["last_day"]))
    return [
        rec.doc
        for day in days_between(lo, hi)
        for rec in oura_day(SEED, user, day).collection(name)
        if rec.at <= NOW.timestamp() and first.isoformat() <= rec.doc["day"] <= last.isoformat()
    ]


def held_heartrate(who: dict[str, Any], user: str, start: datetime, end: datetime) -> list[Any]:
    first, last = date.fromisoformat(who["first_day"]), date.fromisoformat(who["last_day"])
    lo, hi = start.timestamp(), min(end.timestamp(), NOW.timestamp())
    return [
        rec.doc
        for day in days_between(first, last)
        for rec in oura_day(SEED, user, day).heartrate
        if lo <= rec.at < hi
    ]


def held(who: dict[str, Any], user: str, resource: Resource, start: datetime, end: datetime) -> Any:
    if resource.name == "heartrate":
        return held_heartrate(who, user, start, end)
    first, last = dates_of(start, end)
    return held_documents(who, user, resource.name, first, last)


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


def minimum_calls(resource: Resource, records: int) -> int:
    per_page = ROWS_PER_PAGE if resource.name == "heartrate" else DOCS_PER_PAGE
    return max(1, math.ceil(records / per_page))


async def oura_calls(sim: httpx.AsyncClient) -> int:
    stats = (await sim.get("/_control/stats")).json()
    return sum(stats["calls"].get("oura", {}).values())


def assert_all_once(resource: Resource, items: list[Item], expected: list[Any]) -> None:
    if resource.name == "heartrate":
        assert [i.payload for i in items] == expected
        assert [i.key for i in items] == [
            utc_day(datetime.fromisoformat(r["timestamp"])) for r in expected
        ]
        return
    keys = [i.key for i in items]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    assert {i.key: i.payload for i in items} == {d["id"]: d for d in expected}


# --- backfill ---------------------------------------------------------------------------------


async def test_a_year_of_every_resource_in_one_window_and_the_fewest_calls(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    assert {r.name for r in PROVIDER.resources} == {
        "daily_activity", "sleep", "daily_sleep", "daily_readiness", "daily_spo2",
        "heartrate", "workout",
    }  # fmt: skip
    before = await oura_calls(sim)
    minimum = 0
    for resource in PROVIDER.resources:
        assert len(windows(START, NOW, resource.max_window)) == 1
        calls_before = http.stats.calls
        (items,) = await fetch(http, resource)
        expected = held(who, USER, resource, START, NOW)
        assert expected, resource.name
        assert_all_once(resource, items, expected)
        # One window, so the fewest calls are the pages Oura's page size forces.
        assert http.stats.calls - calls_before == minimum_calls(resource, len(expected))
        minimum += minimum_calls(resource, len(expected))
    assert http.stats.retries == 0
    assert await oura_calls(sim) - before == minimum


async def test_items_carry_utc_times_from_the_documents(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    (sleeps,) = await fetch(http, PROVIDER.resource("sleep"))
    (workouts,) = await fetch(http, PROVIDER.resource("workout"))
    for item, (first, last) in [(i, ("bedtime_start", "bedtime_end")) for i in sleeps] + [
        (i, ("start_datetime", "end_datetime")) for i in workouts
    ]:
        doc: Any = item.payload
        assert item.start == datetime.fromisoformat(doc[first])
        assert item.end == datetime.fromisoformat(doc[last])
        assert item.start is not None and item.start.utcoffset() == timedelta(0)


async def test_event_ids_do_not_depend_on_window_cuts(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    start = NOW - timedelta(days=90, hours=7)  # not on a midnight, as a real cursor
    for resource in PROVIDER.resources:
        ids: list[set[UUID]] = []
        for size in (resource.max_window, timedelta(days=30), timedelta(days=7)):
            cut = [
                e.id
                for items in await fetch(http, resource, size, start)
                for e in envelopes(PROVIDER, resource, USER_ID, items, NOW)
            ]
            if size == resource.max_window:
                assert len(cut) == len(set(cut))
            ids.append(set(cut))
        assert ids[0] == ids[1] == ids[2], resource.name
    heartrate = PROVIDER.resource("heartrate")
    (items,) = await fetch(http, heartrate, start=start)
    events = envelopes(PROVIDER, heartrate, USER_ID, items, NOW)
    days = {e.window.start.date() for e in events if e.window.start is not None}
    assert len(events) == len(days) == 91  # one event per UTC day, partial first and last days
    payload: Any = events[1].payload
    assert set(payload) == {"data"} and len(payload["data"]) > 200


async def test_a_malformed_page_is_retried_and_nothing_is_lost(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    for resource in PROVIDER.resources:
        path = f"/v2/usercollection/{resource.name}"
        items: list[Item] = []
        ((window_start, window_end),) = windows(START, NOW, resource.max_window)
        async for page in pages(resource, window_start, window_end, http.send):
            if not items:  # after the first page: the next page's call and its retry break
                assert page.next is not None
                fault = {"provider": "oura", "path_prefix": path, "kind": "malformed_json"}
                assert (await sim.post("/_control/faults", json={**fault, "count": 2})).is_success
            items.extend(page.items)
        assert_all_once(resource, items, held(who, USER, resource, START, NOW))
    stats = (await sim.get("/_control/stats")).json()
    assert (await sim.get("/_control/faults")).json()["armed"] == []
    assert http.stats.retries == stats["faults"]["oura"] == 2 * len(PROVIDER.resources)


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
    token = (await connect(sim, "oura", user=USER))["access_token"]
    fault = {"provider": "oura", "path_prefix": "/v2/usercollection", "kind": kind, "count": 1}
    assert (await sim.post("/_control/faults", json=fault)).is_success
    response = await sim.get(
        "/oura/v2/usercollection/daily_sleep", headers={"Authorization": f"Bearer {token}"}
    )
    answer = check_answer(http_answer(response))
    assert isinstance(answer, verdict), (response.status_code, response.text, answer)
    if isinstance(answer, RateLimited):
        assert answer.retry_after_s is None  # Oura sends no Retry-After


async def test_real_refusals_are_classified(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "oura", user=USER, scope="daily"))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    base = "/oura/v2/usercollection"
    cases = [
        (await sim.get(f"{base}/heartrate", headers=auth), Refused),  # scope unticked: 403
        (await sim.get(f"{base}/sleep/nope", headers=auth), Refused),  # 404
        (
            await sim.get(
                f"{base}/sleep",
                params={"start_date": "2026-03-10", "end_date": "2026-03-01"},
                headers=auth,
            ),
            Refused,
        ),  # 422
        (await sim.get(f"{base}/sleep", headers={"Authorization": "Bearer nope"}), Unauthorized),
        (await sim.get(f"{base}/sleep", headers=auth), Ok),
    ]
    for response, verdict in cases:
        assert isinstance(check_answer(http_answer(response)), verdict), response.text
    assert [r.status_code for r, _ in cases] == [403, 404, 422, 401, 200]


async def test_a_missing_scope_stops_that_resource(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "oura", user=USER, scope="daily"))["access_token"]

    async def tokens(rejected: str | None) -> str:
        return str(token)

    http = ProviderHttp(sim, PROVIDER, "http://sim/oura", USER_ID, tokens, budget=None)
    with pytest.raises(CallRefused):
        await fetch(http, PROVIDER.resource("heartrate"))
    assert http.stats.calls == 1


@pytest.mark.parametrize(
    ("sample", "status", "verdict"),
    [
        ("error.403.webhook_forbidden.json", 403, Refused),
        ("error.404.document_not_found.json", 404, Refused),
        ("error.422.malformed_document_id.json", 422, Refused),
        ("error.422.start_after_end.json", 422, Refused),
        ("daily_sleep.list.json", 200, Ok),
    ],
)
def test_recorded_answers_are_classified(sample: str, status: int, verdict: type) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    raw = (SAMPLES / sample).read_bytes()
    answer = HttpAnswer(status, {"content-type": "application/json"}, orjson.loads(raw), "")
    assert isinstance(check_answer(answer), verdict)


def test_429_honours_retry_after_and_odd_answers() -> None:
    limited = check_answer(HttpAnswer(429, {"retry-after": "7"}, {"detail": "x"}, ""))
    assert limited == RateLimited(7.0)
    assert isinstance(check_answer(HttpAnswer(504, {}, None, "Gateway Timeout")), Transient)
    assert isinstance(check_answer(HttpAnswer(200, {}, None, '{"data": [')), Transient)
    assert isinstance(check_answer(HttpAnswer(400, {}, {"detail": "bad"}, "")), Refused)


@pytest.mark.parametrize(
    "body",
    [
        {"detail": "x"},
        {"data": {}},
        {"data": [1]},
        {"data": [{"bpm": 60}]},  # neither an id nor a timestamp
        {"data": [], "next_token": 3},
        [],
    ],
)
def test_pages_not_shaped_as_documented_are_refused(body: Any) -> None:
    for resource in PROVIDER.resources:
        with pytest.raises(MalformedPage):
            resource.read_page(body, resource.first_call(START, NOW))


def test_pagination_repeats_the_query_with_the_token() -> None:
    resource = PROVIDER.resource("sleep")
    first = resource.first_call(START, NOW)
    assert dict(first.params) == {"start_date": "2025-03-14", "end_date": "2026-03-16"}
    page = resource.read_page({"data": [], "next_token": "abc"}, first)
    assert page.next is not None
    assert dict(page.next.params) == {**first.params, "next_token": "abc"}
    last = resource.read_page({"data": [], "next_token": None}, page.next)
    assert last.next is None
    heartrate = PROVIDER.resource("heartrate").first_call(START, NOW)
    assert dict(heartrate.params) == {
        "start_datetime": "2025-03-15T12:00:00Z",
        "end_datetime": "2026-03-15T12:00:00Z",
    }


# --- webhooks ---------------------------------------------------------------------------------


async def send_event(sim: httpx.AsyncClient, user: str, **extra: str) -> WebhookRequest:
    """A genuine Oura event, as the simulator delivered it to our receiver."""
    await connect(sim, "oura", user=user)
    answer = await sim.post(
        "/_control/webhooks/send", json={"provider": "oura", "user": user, "url": HOOK, **extra}
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()["requests"][0]
    return WebhookRequest(
        method=sent["method"],
        query={},
        headers={k.lower(): v for k, v in sent["headers"].items()},
        body=sent["body"].encode(),
    )


@pytest.mark.parametrize(
    ("data_type", "resources"),
    [
        ("daily_sleep", ("daily_sleep",)),
        ("sleep", ("sleep", "heartrate")),
        ("workout", ("workout", "heartrate")),
        ("daily_activity", ("daily_activity", "heartrate")),
    ],
)
async def test_a_genuine_event_yields_its_notice(
    sim: httpx.AsyncClient, data_type: str, resources: tuple[str, ...]
) -> None:
    request = await send_event(sim, USER, data_type=data_type)
    outcome = verify_webhook(request, SECRETS, now=NOW.timestamp() + 10)
    who = await identity(sim, USER)
    assert outcome == Notices(
        [
            Notice(
                provider_user_id=who["user_id"],
                resources=resources,
                start=NOW - timedelta(days=1),
                end=NOW,
            )
        ]
    )
    assert set(resources) <= {r.name for r in PROVIDER.resources}


@pytest.mark.parametrize("data_type", ["sleep", "workout", "daily_activity", "daily_readiness"])
async def test_a_genuine_delete_event_names_the_document_it_deleted(
    sim: httpx.AsyncClient, data_type: str
) -> None:
    request = await send_event(
        sim, USER, data_type=data_type, event_type="delete", object_id="12345abc"
    )
    outcome = verify_webhook(request, SECRETS, now=NOW.timestamp() + 10)
    who = await identity(sim, USER)
    # The resources stay those a sync would need, should the notice ever not be trusted.
    assert outcome == Notices(
        [
            Notice(
                provider_user_id=who["user_id"],
                resources=RESYNC[data_type],
                start=NOW - timedelta(days=1),
                end=NOW,
                deleted=Deletion(data_type, "12345abc", orjson.loads(request.body)),
            )
        ]
    )


def test_every_data_type_we_sync_is_named_as_our_resource() -> None:
    """A deletion's `data_type` is taken as the resource name of the tombstone."""
    assert set(RESYNC) <= {r.name for r in PROVIDER.resources}


def test_a_signed_delete_without_a_document_id_is_refused_and_one_we_do_not_sync_ignored() -> None:
    def verify(event: dict[str, Any]) -> Notices | Challenge:
        body = orjson.dumps(event)
        timestamp = str(int(NOW.timestamp()))
        signature = hmac.new(
            client_secret("oura").encode(), timestamp.encode() + body, hashlib.sha256
        ).hexdigest()
        headers = {"x-oura-timestamp": timestamp, "x-oura-signature": signature.upper()}
        return verify_webhook(
            WebhookRequest("POST", {}, headers, body), SECRETS, now=NOW.timestamp()
        )

    event: dict[str, Any] = {"event_type": "delete", "data_type": "sleep", "user_id": "u1"}
    for unreadable in [event, {**event, "object_id": ""}, {**event, "object_id": 7}]:
        with pytest.raises(WebhookRefused) as refused:
            verify(unreadable)
        assert refused.value.status == 400
    assert verify({**event, "data_type": "tag", "object_id": "x"}) == Notices([])


async def test_unverified_events_are_refused(sim: httpx.AsyncClient) -> None:
    genuine = await send_event(sim, USER)
    at = NOW.timestamp()
    tampered = WebhookRequest(
        "POST", {}, genuine.headers, genuine.body.replace(b"update", b"delete")
    )
    resigned = {**genuine.headers, "x-oura-timestamp": str(int(at) + 1)}
    unsigned = {k: v for k, v in genuine.headers.items() if k != "x-oura-signature"}
    other_secret = WebhookSecrets("not-the-secret", "oura-verify", None, None)
    no_secret = WebhookSecrets(None, "oura-verify", None, None)
    refusals = [
        (tampered, SECRETS, at, 401),
        (WebhookRequest("POST", {}, resigned, genuine.body), SECRETS, at, 401),
        (WebhookRequest("POST", {}, unsigned, genuine.body), SECRETS, at, 401),
        (genuine, other_secret, at, 401),
        (genuine, SECRETS, at + 301, 401),  # stale
        (genuine, SECRETS, at - 301, 401),  # from the future
        (genuine, no_secret, at, 403),
    ]
    for request, secrets, now, status in refusals:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(request, secrets, now=now)
        assert refused.value.status == status
    # The genuine one passes, and the provider's own entry point checks against the real clock.
    assert isinstance(verify_webhook(genuine, SECRETS, now=at), Notices)
    with pytest.raises(WebhookRefused):
        PROVIDER.verify_webhook(genuine, SECRETS)


def test_a_freshly_signed_event_passes_on_the_real_clock() -> None:
    body = orjson.dumps(
        {"event_type": "create", "data_type": "tag", "object_id": "x",
         "event_time": "2026-03-15T12:00:00+00:00", "user_id": "u1"}
    )  # fmt: skip
    timestamp = str(int(time.time()))
    signature = hmac.new(
        client_secret("oura").encode(),
        timestamp.encode() + body,
        hashlib.sha256,
    ).hexdigest()
    headers = {"x-oura-timestamp": timestamp, "x-oura-signature": signature.upper()}
    outcome = PROVIDER.verify_webhook(WebhookRequest("POST", {}, headers, body), SECRETS)
    assert outcome == Notices([])  # a data type we do not sync: acknowledged, nothing to do


async def test_the_handshake_echoes_the_challenge_only_for_our_token(
    sim: httpx.AsyncClient,
) -> None:
    answer = await sim.post(
        "/_control/webhooks/send",
        json={
            "provider": "oura", "user": USER, "url": HOOK,
            "kind": "verification", "verification_token": "oura-verify",
        },
    )  # fmt: skip
    sent = answer.json()["requests"][0]
    query = dict(parse_qsl(urlsplit(sent["url"]).query))
    request = WebhookRequest("GET", query, {}, b"")
    assert verify_webhook(request, SECRETS) == Challenge(200, {"challenge": query["challenge"]})
    for bad_query, secrets in [
        ({**query, "verification_token": "guess"}, SECRETS),
        ({"verification_token": "oura-verify"}, SECRETS),
        (query, WebhookSecrets(client_secret("oura"), None, None, None)),
    ]:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(WebhookRequest("GET", bad_query, {}, b""), secrets)
        assert refused.value.status == 403
