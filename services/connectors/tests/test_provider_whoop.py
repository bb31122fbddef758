"""The WHOOP module against the simulator: a year's backfill of every resource in the fewest
calls, deterministic event ids across window cuts, error classification, signed webhooks."""

import base64
import hashlib
import hmac
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest

from healthmesh.connectors.fetching import envelopes, pages, windows
from healthmesh.connectors.provider_http import CallRefused, ProviderHttp, http_answer
from healthmesh.connectors.providers.base import (
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
)
from healthmesh.connectors.providers.whoop import (
    OVERLAP,
    PROVIDER,
    check_answer,
    usage_from_headers,
    verify_webhook,
)
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.providers.whoop_data import as_of, whoop_day
from healthmesh.simulator.settings import Settings as SimulatorSettings
from healthmesh.simulator.synth import days_between
from healthmesh.simulator.testing import client_secret, connect

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The simulator's fixed clock (conftest.NOW)."""
START = NOW - timedelta(days=365)
SEED = 1  # the simulator's default seed
PAGE_SIZE = 25  # WHOOP's largest `limit`
SAMPLES = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "whoop"
USER = "whoop-person"
"""One simulated person throughout: the simulator caches a person's generated days."""
USER_ID = UUID("0b6f1f5e-5a43-4c1e-8f6e-3f1d2c9a7e21")
SECRETS = WebhookSecrets(
    client_secret=client_secret("whoop"),
    verify_token=None,
    authorization=None,
    public_key_pem=None,
)
HOOK = "http://app.test/webhooks/whoop"
ROUTE = {
    "cycle": "/developer/v2/cycle",
    "recovery": "/developer/v2/recovery",
    "sleep": "/developer/v2/activity/sleep",
    "workout": "/developer/v2/activity/workout",
}

ProviderHttpFactory = Callable[[Provider, str], Awaitable[ProviderHttp]]


@pytest.fixture
def simulator_settings() -> SimulatorSettings:
    """Roomy limits: the fixed clock never starts a new minute, so a regression past WHOOP's 100
    calls would wait on a 429 forever instead of failing (the backfill test asserts it stays
    under 100). A `timeout` fault answers its 504 at once instead of hanging two minutes."""
    return SimulatorSettings(
        days=400, fault_timeout_s=0, whoop_limit_minute=100_000, whoop_limit_day=1_000_000
    )


# --- what the simulator holds, read from its data module ----------------------------------------


async def identity(sim: httpx.AsyncClient, user: str) -> dict[str, Any]:
    answer = await sim.get(f"/_control/users/{user}")
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()["whoop"]
    return result


def held(who: dict[str, Any], user: str, name: str, start: datetime, end: datetime) -> list[Any]:
    """Every record of `name` starting in [start, end) that WHOOP lists at NOW (a cycle from its
    start, the others once they ended), as WHOOP shows it at NOW."""
    now = NOW.timestamp()
    first, last = date.fromisoformat(who["first_day"]), date.fromisoformat(who["last_day"])
    out = []
    for day in days_between(first, last):
        value = getattr(whoop_day(SEED, user, day), name)  # WhoopDay names them as we do
        for rec in value if isinstance(value, tuple) else (value,):
            listed = rec.start <= now and (name == "cycle" or rec.end <= now)
            if listed and start.timestamp() <= rec.start < end.timestamp():
                out.append(as_of(rec, now))
    return out


def key_of(name: str, record: dict[str, Any]) -> str:
    return str(record["cycle_id"] if name == "recovery" else record["id"])


# --- fetching as the syncer does ----------------------------------------------------------------


async def fetch(
    http: ProviderHttp,
    resource: Resource,
    size: timedelta | None = None,
    start: datetime = START,
    end: datetime = NOW,
) -> list[list[Item]]:
    """Each window's items for [start, end), windows cut at `size` (default: max_window)."""
    out = []
    for window_start, window_end in windows(start, end, size or resource.max_window):
        items: list[Item] = []
        async for page in pages(resource, window_start, window_end, http.send):
            items.extend(page.items)
        out.append(items)
    return out


@dataclass(frozen=True)
class Keyed:
    key: str
    event_id: UUID
    payload: Any


def envelopes_by_key(resource: Resource, items: list[Item], fetched_at: datetime) -> list[Keyed]:
    """Each item's raw event id beside its key (`envelopes` keeps items in order)."""
    events = envelopes(PROVIDER, resource, USER_ID, items, fetched_at)
    assert len(events) == len(items)
    return [Keyed(i.key, e.id, e.payload) for i, e in zip(items, events, strict=True)]


async def whoop_calls(sim: httpx.AsyncClient) -> int:
    stats = (await sim.get("/_control/stats")).json()
    return sum(stats["calls"].get("whoop", {}).values())


def assert_all_once(name: str, items: list[Item], expected: list[Any]) -> None:
    keys = [i.key for i in items]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    assert {i.key: i.payload for i in items} == {key_of(name, r): r for r in expected}


# --- backfill ---------------------------------------------------------------------------------


async def test_a_year_of_every_resource_in_one_window_and_the_fewest_calls(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    assert [r.name for r in PROVIDER.resources] == ["cycle", "recovery", "sleep", "workout"]
    before = await whoop_calls(sim)
    minimum = 0
    for resource in PROVIDER.resources:
        assert resource.page_size == PAGE_SIZE
        assert len(windows(START, NOW, resource.max_window)) == 1
        calls_before = http.stats.calls
        (items,) = await fetch(http, resource)
        expected = held(who, USER, resource.name, START, NOW)
        assert len(expected) > 200, resource.name
        assert_all_once(resource.name, items, expected)
        # No range limit, so one window: the fewest calls are the pages of 25 the records need
        # (the last page of an exact multiple carries no next_token, so no empty page follows).
        fewest = max(1, math.ceil(len(expected) / PAGE_SIZE))
        assert http.stats.calls - calls_before == fewest, resource.name
        minimum += fewest
    assert http.stats.retries == http.stats.rate_limited == 0
    assert await whoop_calls(sim) - before == minimum
    assert minimum < 100  # a year of one user fits in WHOOP's per-minute limit


async def test_items_carry_the_records_own_keys_and_utc_times(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    start = NOW - timedelta(days=20)
    for resource in PROVIDER.resources:
        (items,) = await fetch(http, resource, start=start)
        assert items, resource.name
        for item in items:
            doc: Any = item.payload
            if resource.name == "recovery":
                assert item.key == str(doc["cycle_id"])
                assert item.start is None and item.end is None  # a recovery has no times
                continue
            assert item.key == str(doc["id"])
            assert item.start == datetime.fromisoformat(doc["start"])
            assert item.start is not None and item.start.utcoffset() == timedelta(0)
            assert start <= item.start < NOW
            assert item.end == (datetime.fromisoformat(doc["end"]) if "end" in doc else None)
    (cycles,) = await fetch(http, PROVIDER.resource("cycle"), start=start)
    current: Any = cycles[0].payload  # newest first: the cycle in progress has no end yet
    assert cycles[0].end is None and "end" not in current
    assert all(c.end is not None for c in cycles[1:])


async def test_event_ids_do_not_depend_on_window_cuts(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    start = NOW - timedelta(days=90, hours=7)  # not on a midnight, as a real cursor
    for resource in PROVIDER.resources:
        ids: list[set[UUID]] = []
        for size in (resource.max_window, timedelta(days=30), timedelta(days=7)):
            cut = [
                e.id
                for items in await fetch(http, resource, size, start)
                for e in envelopes(PROVIDER, resource, USER_ID, items, NOW)
            ]
            assert len(cut) == len(set(cut)), (resource.name, size)
            ids.append(set(cut))
        assert ids[0] == ids[1] == ids[2], resource.name
        assert len(ids[0]) == len(held(who, USER, resource.name, start, NOW)) > 30


async def test_the_overlap_rereads_a_record_until_it_is_scored(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory, clock: FakeClock
) -> None:
    """Synced five minutes after waking, the night is PENDING_SCORE; the next sync, from the
    cursor minus the overlap, reads it again scored: a new event for the same key."""
    who = await identity(sim, USER)
    first, last = date.fromisoformat(who["first_day"]), date.fromisoformat(who["last_day"])
    night = min(
        (rec for day in days_between(first, last + timedelta(days=1))
         for rec in whoop_day(SEED, USER, day).sleep if rec.end > NOW.timestamp()),
        key=lambda rec: rec.end,
    )  # fmt: skip
    clock.advance(night.end - NOW.timestamp() + 300)
    http = await provider_http(PROVIDER, USER)  # connected now: tokens live an hour
    cursor = datetime.fromtimestamp(clock.now(), UTC)
    synced: dict[str, list[Item]] = {}
    for resource in PROVIDER.resources:
        (synced[resource.name],) = await fetch(
            http, resource, start=cursor - resource.overlap, end=cursor
        )
    pending: Any = synced["sleep"][0].payload
    assert pending["id"] == night.doc["id"] and pending["score_state"] == "PENDING_SCORE"
    clock.advance(15 * 60)
    now = datetime.fromtimestamp(clock.now(), UTC)
    for name, key in [("sleep", night.doc["id"]), ("recovery", str(night.doc["cycle_id"]))]:
        resource = PROVIDER.resource(name)
        (again,) = await fetch(http, resource, start=cursor - resource.overlap, end=now)
        assert len(synced[name]) == len(again) == OVERLAP.days  # one a night, one page
        before = {e.key: e for e in envelopes_by_key(resource, synced[name], cursor)}
        after = {e.key: e for e in envelopes_by_key(resource, again, now)}
        assert before[key].payload["score_state"] == "PENDING_SCORE"
        assert after[key].payload["score_state"] == "SCORED" and "score" in after[key].payload
        assert after[key].event_id != before[key].event_id, name  # new content: a new event
        assert {k: e.event_id for k, e in after.items() if k != key} == {
            k: e.event_id for k, e in before.items() if k != key
        }  # the older, scored records: the same events again


async def test_an_incremental_sync_rereads_the_cycle_in_progress_in_one_page(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    """The newest cycle is in progress at NOW; an incremental sync from a cursor at NOW minus
    the overlap still reads it (and every record that ended since), in one page."""
    http = await provider_http(PROVIDER, USER)
    for resource in PROVIDER.resources:
        assert resource.overlap >= timedelta(days=2)
        calls = http.stats.calls
        (recent,) = await fetch(http, resource, start=NOW - resource.overlap)
        assert http.stats.calls - calls == 1, resource.name  # the overlap fits one page
        (year,) = await fetch(http, resource)
        assert year[0].key == recent[0].key, resource.name  # newest first: the latest record
    (cycles,) = await fetch(http, PROVIDER.resource("cycle"), start=NOW - OVERLAP)
    assert cycles[0].end is None  # the cycle in progress, read again by every sync


async def test_a_malformed_page_is_retried_and_nothing_is_lost(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    for resource in PROVIDER.resources:
        items: list[Item] = []
        ((window_start, window_end),) = windows(START, NOW, resource.max_window)
        async for page in pages(resource, window_start, window_end, http.send):
            if not items:  # after the first page: the next page's call and its retry break
                assert page.next is not None
                fault = {
                    "provider": "whoop",
                    "path_prefix": ROUTE[resource.name],
                    "kind": "malformed_json",
                }
                assert (await sim.post("/_control/faults", json={**fault, "count": 2})).is_success
            items.extend(page.items)
        assert_all_once(resource.name, items, held(who, USER, resource.name, START, NOW))
    stats = (await sim.get("/_control/stats")).json()
    assert (await sim.get("/_control/faults")).json()["armed"] == []
    assert http.stats.retries == stats["faults"]["whoop"] == 2 * len(PROVIDER.resources)


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
    token = (await connect(sim, "whoop", user=USER))["access_token"]
    fault = {"provider": "whoop", "path_prefix": "/developer/v2", "kind": kind, "count": 1}
    assert (await sim.post("/_control/faults", json=fault)).is_success
    response = await sim.get(
        "/whoop/developer/v2/recovery", headers={"Authorization": f"Bearer {token}"}
    )
    answer = check_answer(http_answer(response))
    assert isinstance(answer, verdict), (response.status_code, response.text, answer)
    if isinstance(answer, RateLimited):
        assert answer.retry_after_s == 60.0  # from X-RateLimit-Reset (no Retry-After)


async def test_real_refusals_are_classified(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "whoop", user=USER, scope="offline read:cycles"))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    base = "/whoop/developer/v2"
    cases = [
        (await sim.get(f"{base}/activity/sleep", headers=auth), Refused),  # scope unticked: 403
        (await sim.get(f"{base}/cycle/1", headers=auth), Refused),  # 404
        (await sim.get(f"{base}/cycle", params={"limit": "26"}, headers=auth), Refused),  # 400
        (await sim.get(f"{base}/cycle", headers={"Authorization": "Bearer nope"}), Unauthorized),
        (await sim.get(f"{base}/cycle", headers=auth), Ok),
    ]
    for response, verdict in cases:
        assert isinstance(check_answer(http_answer(response)), verdict), response.text
    assert [r.status_code for r, _ in cases] == [403, 404, 400, 401, 200]


async def test_a_missing_scope_stops_that_resource(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "whoop", user=USER, scope="offline read:cycles"))["access_token"]

    async def tokens(rejected: str | None) -> str:
        return str(token)

    http = ProviderHttp(sim, PROVIDER, "http://sim/whoop", USER_ID, tokens, budget=None)
    with pytest.raises(CallRefused):
        await fetch(http, PROVIDER.resource("workout"))
    assert http.stats.calls == 1


@pytest.mark.parametrize(
    "simulator_settings",
    [SimulatorSettings(days=400, whoop_limit_minute=3, whoop_limit_day=10_000)],
)
async def test_usage_headers_and_the_real_429(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "whoop", user=USER))["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    used = []
    for _ in range(3):
        response = await sim.get("/whoop/developer/v2/cycle", headers=auth)
        assert isinstance(check_answer(http_answer(response)), Ok)
        used.append(usage_from_headers(response.headers))
    assert used == [{"requests_minute": n} for n in (1, 2, 3)]
    limited = await sim.get("/whoop/developer/v2/cycle", headers=auth)
    assert limited.status_code == 429
    answer = check_answer(http_answer(limited))
    assert answer == RateLimited(float(limited.headers["x-ratelimit-reset"]))
    assert answer.retry_after_s is not None and 0 < answer.retry_after_s <= 60
    assert usage_from_headers(limited.headers) == {"requests_minute": 3}


def test_usage_from_headers_reads_the_window_closest_to_exhaustion() -> None:
    policies = "100;window=60, 10000;window=86400"
    assert usage_from_headers(
        {"X-RateLimit-Limit": f"100, {policies}", "X-RateLimit-Remaining": "98",
         "X-RateLimit-Reset": "3"}
    ) == {"requests_minute": 2}  # fmt: skip
    assert usage_from_headers(
        {"x-ratelimit-limit": f"10000, {policies}", "x-ratelimit-remaining": "40",
         "x-ratelimit-reset": "5000"}
    ) == {"requests_day": 9960}  # fmt: skip
    equal = {"x-ratelimit-limit": "5, 5;window=60, 5;window=86400", "x-ratelimit-remaining": "1"}
    assert usage_from_headers(equal) == {"requests_day": 4}
    for broken in [
        {},
        {"x-ratelimit-limit": f"100, {policies}"},
        {"x-ratelimit-limit": "lots", "x-ratelimit-remaining": "1"},
        {"x-ratelimit-limit": "100, 100;window=3600", "x-ratelimit-remaining": "1"},
    ]:
        assert usage_from_headers(broken) == {}
    assert {limit.name: (limit.capacity, limit.seconds, limit.per_user) for limit in
            PROVIDER.limits} == {"requests_minute": (100, 60, False),
                                 "requests_day": (10_000, 86_400, False)}  # fmt: skip


def test_odd_answers_are_classified() -> None:
    assert check_answer(
        HttpAnswer(429, {"retry-after": "7", "x-ratelimit-reset": "30"}, None, "")
    ) == RateLimited(7.0)
    assert check_answer(HttpAnswer(429, {}, {"message": "Too Many Requests"}, "")) == RateLimited(
        None
    )
    assert isinstance(check_answer(HttpAnswer(504, {}, None, "Gateway Timeout")), Transient)
    assert isinstance(check_answer(HttpAnswer(502, {}, None, "Bad Gateway")), Transient)
    assert isinstance(check_answer(HttpAnswer(200, {}, None, '{"records": [')), Transient)
    assert isinstance(check_answer(HttpAnswer(400, {}, {"message": "bad"}, "")), Refused)
    refused = check_answer(HttpAnswer(403, {}, {"message": "Missing required scope: x"}, ""))
    assert refused == Refused("403 Missing required scope: x")


@pytest.mark.parametrize(
    "sample",
    [
        "cycle.collection.composed.json",
        "recovery.collection.composed.json",
        "sleep.collection.composed.json",
        "workout.collection.composed.json",
    ],
)
def test_documented_pages_are_read(sample: str) -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    body = orjson.loads((SAMPLES / sample).read_bytes())
    resource = PROVIDER.resource(sample.split(".")[0])
    answer = check_answer(HttpAnswer(200, {}, body, ""))
    assert answer == Ok(body)
    first = resource.first_call(START, NOW)
    page = resource.read_page(body, first)
    assert [i.payload for i in page.items] == body["records"]
    assert page.items[0].key == ("93845" if resource.name in {"cycle", "recovery"} else
                                 "ecfc6a15-4661-442f-a9a4-f160dd7afae8")  # fmt: skip
    if resource.name != "recovery":
        assert page.items[0].start == datetime(2022, 4, 24, 2, 25, 44, 774000, tzinfo=UTC)
        assert page.items[0].end == datetime(2022, 4, 24, 10, 25, 44, 774000, tzinfo=UTC)
    assert page.next is not None
    assert dict(page.next.params) == {**first.params, "nextToken": "MTIzOjEyMzEyMw"}


@pytest.mark.parametrize(
    "body",
    [
        {"message": "x"},
        {"records": {}},
        {"records": [1]},
        {"records": [{"score_state": "SCORED"}]},  # neither an id nor a cycle_id
        {"records": [], "next_token": 3},
        {"data": []},  # another provider's shape
        [],
    ],
)
def test_pages_not_shaped_as_documented_are_refused(body: Any) -> None:
    for resource in PROVIDER.resources:
        with pytest.raises(MalformedPage):
            resource.read_page(body, resource.first_call(START, NOW))


def test_a_timed_record_needs_a_readable_start() -> None:
    for resource in (PROVIDER.resource(n) for n in ("cycle", "sleep", "workout")):
        for record in [{"id": "a"}, {"id": "a", "start": "yesterday"}, {"id": 1, "start": 5}]:
            with pytest.raises(MalformedPage):
                resource.read_page({"records": [record]}, resource.first_call(START, NOW))


def test_pagination_repeats_the_query_with_the_token() -> None:
    resource = PROVIDER.resource("sleep")
    first = resource.first_call(START, NOW)
    assert first.path == "/developer/v2/activity/sleep"
    assert dict(first.params) == {
        "start": "2025-03-15T12:00:00.000Z",
        "end": "2026-03-15T12:00:00.000Z",
        "limit": "25",
    }
    page = resource.read_page({"records": [], "next_token": "abc"}, first)
    assert page.next is not None
    assert dict(page.next.params) == {**first.params, "nextToken": "abc"}
    again = resource.read_page({"records": [], "next_token": "def"}, page.next)
    assert again.next is not None and dict(again.next.params)["nextToken"] == "def"
    assert resource.read_page({"records": []}, again.next).next is None  # absent: last page
    assert resource.read_page({"records": [], "next_token": None}, first).next is None
    assert {r.first_call(START, NOW).path for r in PROVIDER.resources} == set(ROUTE.values())


# --- webhooks ---------------------------------------------------------------------------------


async def send_event(sim: httpx.AsyncClient, user: str, **extra: str) -> WebhookRequest:
    """A genuine WHOOP event, as the simulator delivered it to our receiver."""
    await connect(sim, "whoop", user=user)
    answer = await sim.post(
        "/_control/webhooks/send", json={"provider": "whoop", "user": user, "url": HOOK, **extra}
    )
    assert answer.status_code == 200, answer.text
    sent = answer.json()["requests"][0]
    return WebhookRequest(
        method=sent["method"],
        query={},
        headers={k.lower(): v for k, v in sent["headers"].items()},
        body=sent["body"].encode(),
    )


def sign(body: bytes, millis: int, secret: str = client_secret("whoop")) -> dict[str, str]:
    digest = hmac.new(secret.encode(), str(millis).encode() + body, hashlib.sha256).digest()
    return {
        "x-whoop-signature": base64.b64encode(digest).decode(),
        "x-whoop-signature-timestamp": str(millis),
    }


@pytest.mark.parametrize(
    ("event", "resources"),
    [
        ("recovery.updated", ("recovery", "cycle")),
        ("recovery.deleted", ("recovery", "cycle")),
        ("sleep.updated", ("sleep", "recovery", "cycle")),
        ("sleep.deleted", ("sleep", "recovery", "cycle")),
        ("workout.updated", ("workout", "cycle")),
        ("workout.deleted", ("workout", "cycle")),
    ],
)
async def test_a_genuine_event_yields_its_notice(
    sim: httpx.AsyncClient, event: str, resources: tuple[str, ...]
) -> None:
    request = await send_event(sim, USER, type=event)
    assert request.method == "POST"
    assert request.headers["x-whoop-signature-timestamp"] == str(int(NOW.timestamp() * 1000))
    outcome = verify_webhook(request, SECRETS, now=NOW.timestamp() + 10)
    who = await identity(sim, USER)
    # A deletion names its record (for a recovery, the sleep's UUID); the resources stay those a
    # sync would need, should the notice ever not be trusted.
    sent = orjson.loads(request.body)
    kind, _, action = event.partition(".")
    deleted = Deletion(kind, sent["id"], sent) if action == "deleted" else None
    assert outcome == Notices(
        [
            Notice(
                provider_user_id=str(who["user_id"]),
                resources=resources,
                start=NOW - timedelta(days=1),
                end=NOW,
                deleted=deleted,
            )
        ]
    )
    assert set(resources) <= {r.name for r in PROVIDER.resources}
    if deleted is not None:
        assert deleted.resource in {r.name for r in PROVIDER.resources}
        assert UUID(deleted.record_id)  # v2: a UUID, the sleep's for a recovery


async def test_unverified_events_are_refused(sim: httpx.AsyncClient) -> None:
    genuine = await send_event(sim, USER, type="sleep.updated")
    at = NOW.timestamp()
    millis = genuine.headers["x-whoop-signature-timestamp"]
    tampered = WebhookRequest(
        "POST", {}, genuine.headers, genuine.body.replace(b"sleep.updated", b"sleep.deleted")
    )
    resigned = {**genuine.headers, "x-whoop-signature-timestamp": str(int(millis) + 1)}
    unsigned = {k: v for k, v in genuine.headers.items() if k != "x-whoop-signature"}
    untimed = {k: v for k, v in genuine.headers.items() if k != "x-whoop-signature-timestamp"}
    not_base64 = {**genuine.headers, "x-whoop-signature": "not base64!"}
    hex_signature = {
        **genuine.headers,
        "x-whoop-signature": base64.b64decode(genuine.headers["x-whoop-signature"]).hex(),
    }
    stale_but_signed = {**genuine.headers, **sign(genuine.body, int(millis) - 301_000)}
    refusals = [
        (tampered, SECRETS, at, 401),
        (WebhookRequest("POST", {}, resigned, genuine.body), SECRETS, at, 401),
        (WebhookRequest("POST", {}, unsigned, genuine.body), SECRETS, at, 401),
        (WebhookRequest("POST", {}, untimed, genuine.body), SECRETS, at, 401),
        (WebhookRequest("POST", {}, not_base64, genuine.body), SECRETS, at, 401),
        (WebhookRequest("POST", {}, hex_signature, genuine.body), SECRETS, at, 401),
        (WebhookRequest("POST", {}, stale_but_signed, genuine.body), SECRETS, at, 401),
        (genuine, WebhookSecrets("not-the-secret", None, None, None), at, 401),
        (genuine, SECRETS, at + 301, 401),  # stale
        (genuine, SECRETS, at - 301, 401),  # from the future
        (genuine, WebhookSecrets(None, None, None, None), at, 403),
    ]
    for request, secrets, now, status in refusals:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(request, secrets, now=now)
        assert refused.value.status == status, refused.value.reason
    # The genuine one passes, within five minutes either way; the provider's own entry point
    # checks against the real clock, long after the simulator's fixed NOW.
    for now in (at, at + 299, at - 299):
        assert isinstance(verify_webhook(genuine, SECRETS, now=now), Notices)
    with pytest.raises(WebhookRefused):
        PROVIDER.verify_webhook(genuine, SECRETS)


def test_a_freshly_signed_event_passes_on_the_real_clock() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    body = (SAMPLES / "webhook.v2.sleep_updated.json").read_bytes()
    millis = int(time.time() * 1000)
    outcome = PROVIDER.verify_webhook(WebhookRequest("POST", {}, sign(body, millis), body), SECRETS)
    assert isinstance(outcome, Notices)
    (notice,) = outcome.items
    assert notice.provider_user_id == "456"
    assert notice.resources == ("sleep", "recovery", "cycle")
    assert notice.end == datetime.fromtimestamp(millis / 1000, UTC)


def test_signed_events_we_do_not_sync_or_cannot_read() -> None:
    millis = int(NOW.timestamp() * 1000)

    def verify(event: Any) -> Notices:
        body = orjson.dumps(event)
        return verify_webhook(
            WebhookRequest("POST", {}, sign(body, millis), body), SECRETS, now=NOW.timestamp()
        )

    # A type we do not sync is acknowledged without a notice (WHOOP would retry a refusal).
    assert verify({"user_id": 1, "id": 2, "type": "body.updated", "trace_id": "t"}) == Notices([])
    legacy = verify({"user_id": 10129, "id": 10235, "type": "workout.updated", "trace_id": "t"})
    assert [(n.provider_user_id, n.resources) for n in legacy.items] == [
        ("10129", ("workout", "cycle"))
    ]
    unreadable_events: list[Any] = [
        [],
        {"id": 2, "type": "sleep.updated"},
        {"user_id": True},
        {"user_id": 1, "type": "sleep.deleted", "trace_id": "t"},  # which record?
        {"user_id": 1, "id": "", "type": "workout.deleted", "trace_id": "t"},
    ]
    for unreadable in unreadable_events:
        with pytest.raises(WebhookRefused) as refused:
            verify(unreadable)
        assert refused.value.status == 400
    body = b"{not json"
    with pytest.raises(WebhookRefused) as refused:
        verify_webhook(
            WebhookRequest("POST", {}, sign(body, millis), body), SECRETS, now=NOW.timestamp()
        )
    assert refused.value.status == 400


def test_whoop_has_no_handshake_to_answer() -> None:
    """A GET posing as a verification handshake (Strava's, Oura's) gets no challenge back, with
    or without a token; WHOOP verifies each event by its signature instead."""
    for query in [
        {"challenge": "c", "verification_token": "x"},
        {"hub.mode": "subscribe", "hub.challenge": "c", "hub.verify_token": "x"},
    ]:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(WebhookRequest("GET", query, {}, b""), SECRETS, now=NOW.timestamp())
        assert refused.value.status == 405
