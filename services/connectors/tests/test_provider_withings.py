"""The Withings module against the simulator: a year's backfill of measures, activity, workouts
and sleep summaries in the fewest calls, deterministic event ids across window cuts, Withings'
HTTP-200 error envelopes, and its unsigned form-encoded notifications."""

import math
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode
from uuid import UUID
from zoneinfo import ZoneInfo

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
    dates_of,
)
from healthmesh.connectors.providers.withings import (
    ACTIVITY_FIELDS,
    MEASTYPES,
    PROVIDER,
    SLEEP_FIELDS,
    check_answer,
    verify_webhook,
)
from healthmesh.simulator.app import create_app
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.providers import withings as simulated
from healthmesh.simulator.providers.withings_data import withings_day
from healthmesh.simulator.settings import Settings as SimulatorSettings
from healthmesh.simulator.synth import days_between
from healthmesh.simulator.testing import connect

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
"""The simulator's fixed clock (conftest.NOW)."""
START = NOW - timedelta(days=365)
SEED = 1  # the simulator's default seed
SAMPLES = (
    Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "withings"
)
USER = "withings-person"
USER_ID = UUID("5d0c7a4e-2b8f-4e61-9a3d-7f1e0c6b2a95")
SECRETS = WebhookSecrets(None, None, None, None)  # Withings verifies with nothing
HOOK = "http://app.test/webhooks/withings"
FORM = {"content-type": "application/x-www-form-urlencoded"}

ProviderHttpFactory = Callable[[Provider, str], Awaitable[ProviderHttp]]


@pytest.fixture
def simulator_settings() -> SimulatorSettings:
    """A `timeout` fault answers its 504 at once instead of hanging two minutes."""
    return SimulatorSettings(days=400, fault_timeout_s=0)


# --- what the simulator holds -------------------------------------------------------------------


async def identity(sim: httpx.AsyncClient, user: str) -> dict[str, Any]:
    answer = await sim.get(f"/_control/users/{user}")
    assert answer.status_code == 200
    result: dict[str, Any] = answer.json()["withings"]
    return result


def held(who: dict[str, Any], user: str, start: datetime, end: datetime) -> dict[str, list[Any]]:
    """From the data module, per resource: what exists by NOW for [start, end) — measure groups
    taken in it, and the activity, workouts and nights of the local days it touches (padded a
    day each side, as the module asks)."""
    first, last = date.fromisoformat(who["first_day"]), date.fromisoformat(who["last_day"])
    lo, hi = (d.isoformat() for d in dates_of(start, end))
    out: dict[str, list[Any]] = {"measures": [], "activity": [], "workouts": [], "sleep": []}
    for day in days_between(first, last):
        plan = withings_day(SEED, user, day)
        for rec in plan.groups:
            if rec.at <= NOW.timestamp() and start.timestamp() <= rec.doc["date"] < end.timestamp():
                out["measures"].append(rec.doc)
        for name, recs in (
            ("activity", (plan.activity,)),
            ("workouts", plan.workouts),
            ("sleep", (plan.sleep,)),
        ):
            for rec in recs:
                if rec.at <= NOW.timestamp() and lo <= rec.doc["date"] <= hi:
                    out[name].append(rec.doc)
    return out


def key_of(resource: str, doc: dict[str, Any]) -> str:
    if resource == "measures":
        return str(doc["grpid"])
    if resource == "activity":
        return str(doc["date"])
    return str(doc.get("id", doc["startdate"]))


async def listed(sim: httpx.AsyncClient, token: str, resource: str) -> list[dict[str, Any]]:
    """From the simulator itself, another way: the whole history (getmeas without dates, the
    v2 services by `lastupdate=0`), page after page."""
    path, form, field = {
        "measures": ("/measure", {"action": "getmeas"}, "measuregrps"),
        "activity": ("/v2/measure", {"action": "getactivity", "lastupdate": "0"}, "activities"),
        "workouts": ("/v2/measure", {"action": "getworkouts", "lastupdate": "0"}, "series"),
        "sleep": ("/v2/sleep", {"action": "getsummary", "lastupdate": "0"}, "series"),
    }[resource]
    out: list[dict[str, Any]] = []
    while True:
        answer = await sim.post(
            f"/withings{path}", data=form, headers={"Authorization": f"Bearer {token}"}
        )
        body = answer.json()
        assert body["status"] == 0, body
        out.extend(body["body"][field])
        if not body["body"]["more"]:
            return out
        form = {**form, "offset": str(body["body"]["offset"])}


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
    """Withings cuts pages of `simulated.PAGE` and says `more` on every page but the last; an
    empty window still costs the one call that says so."""
    return max(1, math.ceil(records / simulated.PAGE))


async def data_calls(sim: httpx.AsyncClient) -> int:
    stats = (await sim.get("/_control/stats")).json()
    calls = stats["calls"].get("withings", {})
    return sum(int(calls.get(route, 0)) for route in ("/measure", "/v2/measure", "/v2/sleep"))


def published(resource: str, doc: dict[str, Any]) -> dict[str, Any]:
    """What an item carries for a document: a measure group goes in getmeas' own shape with
    the page's `timezone` (the simulator's pages and groups both carry the user's zone)."""
    if resource == "measures":
        return {"timezone": doc["timezone"], "measuregrps": [doc]}
    return doc


def assert_all_once(items: list[Item], resource: str, expected: list[dict[str, Any]]) -> None:
    keys = [i.key for i in items]
    assert len(keys) == len(set(keys)), Counter(keys).most_common(3)
    assert {i.key: i.payload for i in items} == {
        key_of(resource, d): published(resource, d) for d in expected
    }


# --- backfill -----------------------------------------------------------------------------------


async def test_a_year_of_every_resource_in_one_window_and_the_fewest_calls(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    expected = held(who, USER, START, NOW)
    assert [r.name for r in PROVIDER.resources] == list(expected)
    before = await data_calls(sim)
    minimum = 0
    for resource in PROVIDER.resources:
        assert resource.series is None and resource.page_size == simulated.PAGE
        assert len(windows(START, NOW, resource.max_window)) == 1
        assert len(windows(NOW - timedelta(days=5 * 365), NOW, resource.max_window)) == 1
        calls = http.stats.calls
        (items,) = await fetch(http, resource)
        records = expected[resource.name]
        assert len(records) > simulated.PAGE  # every resource turns pages
        # Payloads are the documents exactly as the simulator holds them: every field asked for
        # (all measure types, all activity and sleep data_fields), nothing lost, nothing added.
        assert_all_once(items, resource.name, records)
        assert http.stats.calls - calls == fewest_calls(len(records)), resource.name
        minimum += fewest_calls(len(records))
    assert http.stats.retries == 0
    assert http.stats.calls == await data_calls(sim) - before == minimum == 15


async def test_the_simulator_lists_the_same_records_another_way(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    token = str((await connect(sim, "withings", user=USER))["access_token"])
    lo, hi = (d.isoformat() for d in dates_of(START, NOW))
    for resource in PROVIDER.resources:
        (items,) = await fetch(http, resource)
        everything = await listed(sim, token, resource.name)
        if resource.name == "measures":
            wanted = [d for d in everything if START.timestamp() <= d["date"] < NOW.timestamp()]
        else:
            wanted = [d for d in everything if lo <= d["date"] <= hi]
        assert sorted(key_of(resource.name, d) for d in wanted) == sorted(i.key for i in items)


async def test_items_carry_the_times_they_cover(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    start = NOW - timedelta(days=20)
    found = {r.name: (await fetch(http, r, start=start))[0] for r in PROVIDER.resources}
    units = set()
    for item in found["measures"]:
        page: Any = item.payload
        assert sorted(page) == ["measuregrps", "timezone"] and len(page["measuregrps"]) == 1
        ZoneInfo(page["timezone"])  # the page's zone, a real one
        doc: Any = page["measuregrps"][0]
        assert item.start == item.end == datetime.fromtimestamp(doc["date"], UTC)
        assert {m["type"] for m in doc["measures"]} <= set(MEASTYPES)
        units |= {m["unit"] for m in doc["measures"]}
    assert len(units) > 1  # value x 10^unit, published as received whatever the unit
    for item in found["activity"]:
        doc = item.payload
        assert item.start is not None and item.end is not None
        assert item.start.astimezone(UTC).utcoffset() == timedelta(0)
        assert item.end - item.start in (timedelta(hours=h) for h in (23, 24, 25))
        local = item.start.astimezone(ZoneInfo(doc["timezone"]))
        assert (local.hour, local.minute, local.date().isoformat()) == (0, 0, doc["date"])
    for name in ("workouts", "sleep"):
        for item in found[name]:
            doc = item.payload
            assert item.start == datetime.fromtimestamp(doc["startdate"], UTC)
            assert item.end == datetime.fromtimestamp(doc["enddate"], UTC)


async def test_the_window_edges_are_exact(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    """A measure group taken on a window's first second is in that window and only in it."""
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    resource = PROVIDER.resource("measures")
    some = held(who, USER, NOW - timedelta(days=30), NOW)["measures"][3]
    at = datetime.fromtimestamp(some["date"], UTC)
    cuts = [(at - timedelta(days=2), at), (at, at + timedelta(days=2))]
    found: list[list[str]] = []
    for window_start, window_end in cuts:
        items: list[Item] = []
        async for page in pages(resource, window_start, window_end, http.send):
            items.extend(page.items)
        found.append([i.key for i in items])
        expected = held(who, USER, window_start, window_end)["measures"]
        assert sorted(i.key for i in items) == sorted(str(d["grpid"]) for d in expected)
    assert str(some["grpid"]) in found[1] and str(some["grpid"]) not in found[0]


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
            ids.append(set(cut))
        assert ids[0] == ids[1] == ids[2], resource.name
        assert len(ids[0]) > 20


async def test_a_malformed_page_is_retried_and_nothing_is_lost(
    sim: httpx.AsyncClient, provider_http: ProviderHttpFactory
) -> None:
    http = await provider_http(PROVIDER, USER)
    who = await identity(sim, USER)
    resource = PROVIDER.resource("sleep")
    items: list[Item] = []
    ((window_start, window_end),) = windows(START, NOW, resource.max_window)
    async for page in pages(resource, window_start, window_end, http.send):
        if not items:  # after the first page: the next page's call and its retry break
            assert page.next is not None
            fault = {"provider": "withings", "path_prefix": "/v2/sleep", "kind": "malformed_json"}
            assert (await sim.post("/_control/faults", json={**fault, "count": 2})).is_success
        items.extend(page.items)
    expected = held(who, USER, START, NOW)["sleep"]
    assert_all_once(items, "sleep", expected)
    stats = (await sim.get("/_control/stats")).json()
    assert (await sim.get("/_control/faults")).json()["armed"] == []
    assert http.stats.retries == stats["faults"]["withings"] == 2
    assert http.stats.calls == fewest_calls(len(expected)) + 2


async def test_a_missing_scope_stops_the_resource_at_once(sim: httpx.AsyncClient) -> None:
    token = (await connect(sim, "withings", user=USER, scope="user.info"))["access_token"]
    refreshes = 0

    async def tokens(rejected: str | None) -> str:
        nonlocal refreshes
        refreshes += rejected is not None
        return str(token)

    http = ProviderHttp(sim, PROVIDER, "http://sim/withings", USER_ID, tokens, budget=None)
    with pytest.raises(CallRefused):
        await fetch(http, PROVIDER.resource("measures"))
    assert http.stats.calls == 1 and refreshes == 0


# --- answers ------------------------------------------------------------------------------------


async def getmeas(sim: httpx.AsyncClient, token: str, **form: str) -> httpx.Response:
    return await sim.post(
        "/withings/measure",
        data={"action": "getmeas", **form},
        headers={"Authorization": f"Bearer {token}"},
    )


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
    token = str((await connect(sim, "withings", user=USER))["access_token"])
    fault = {"provider": "withings", "path_prefix": "/measure", "kind": kind, "count": 1}
    assert (await sim.post("/_control/faults", json=fault)).is_success
    response = await getmeas(sim, token)
    answer = check_answer(http_answer(response))
    assert isinstance(answer, verdict), (response.status_code, response.text, answer)
    if kind in ("rate_limit", "unauthorized"):  # Withings' way: HTTP 200 and a status
        assert response.status_code == 200
        assert response.json()["status"] == (601 if kind == "rate_limit" else 401)
    if isinstance(answer, RateLimited):
        assert answer.retry_after_s == 60.0  # no header says when: a whole minute


async def test_real_refusals_are_classified(sim: httpx.AsyncClient) -> None:
    token = str((await connect(sim, "withings", user=USER))["access_token"])
    no_scope = str((await connect(sim, "withings", user=USER, scope="user.info"))["access_token"])
    cases = [
        (await getmeas(sim, "nope"), Unauthorized, 401),
        (await getmeas(sim, no_scope), Refused, 401),  # insufficient_scope: a refresh won't help
        (await getmeas(sim, token, startdate="yesterday"), Refused, 503),
        (
            await sim.post(
                "/withings/measure",
                data={"action": "getmeasures"},
                headers={"Authorization": f"Bearer {token}"},
            ),
            Refused,
            2554,
        ),
        (await getmeas(sim, token), Ok, 0),
    ]
    for response, verdict, status in cases:
        assert response.status_code == 200  # whatever happened
        assert response.json()["status"] == status
        assert isinstance(check_answer(http_answer(response)), verdict), response.text


async def test_the_rate_limit_is_a_200_with_status_601() -> None:
    settings = SimulatorSettings(days=30, withings_limit_minute=2)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(204))
    ) as out:
        app = create_app(settings, clock=FakeClock(NOW.timestamp()), http=out)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sim") as sim,
        ):
            token = str((await connect(sim, "withings", user=USER))["access_token"])
            answers = [await getmeas(sim, token) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    verdicts = [check_answer(http_answer(a)) for a in answers]
    assert [type(v) for v in verdicts] == [Ok, Ok, RateLimited]
    assert PROVIDER.limits[0].capacity == 120 and PROVIDER.limits[0].seconds == 60
    assert not PROVIDER.limits[0].per_user  # per application
    assert PROVIDER.usage_from_headers(dict(answers[0].headers)) == {}


def sample(name: str) -> Any:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    return orjson.loads((SAMPLES / name).read_bytes())


def test_recorded_answers_are_classified() -> None:
    invalid_token = sample("error.http200_status401.invalid_token.json")
    assert isinstance(check_answer(HttpAnswer(200, {}, invalid_token, "")), Unauthorized)
    invalid_code = sample("oauth2.requesttoken.error.invalid_code.json")
    assert isinstance(check_answer(HttpAnswer(200, {}, invalid_code, "")), Refused)
    measures = PROVIDER.resource("measures")
    answer = check_answer(HttpAnswer(200, {}, sample("measure.getmeas.recorded.trimmed.json"), ""))
    assert isinstance(answer, Ok)
    call = measures.first_call(START, NOW)
    # The trimmed recording still says `more: 1, offset: 0`: an offset that does not move on
    # cannot be followed (the next call would be the same), so the page is refused.
    with pytest.raises(MalformedPage):
        measures.read_page(answer.body, call)
    page = measures.read_page({**answer.body, "more": 0}, call)
    assert [i.key for i in page.items] == ["3259812118", "3257522193", "3256483900", "3174506440"]
    assert page.items[0].start == datetime.fromtimestamp(1640815445, UTC)
    # The groups carry no zone of their own: each goes out with the page's.
    first_group = answer.body["measuregrps"][0]
    assert page.items[0].payload == {"timezone": "Asia/Tokyo", "measuregrps": [first_group]}
    activity = PROVIDER.resource("activity")
    recorded = check_answer(
        HttpAnswer(200, {}, sample("measurev2.getactivity.recorded.trimmed.json"), "")
    )
    assert isinstance(recorded, Ok)
    days = activity.read_page(recorded.body, activity.first_call(START, NOW))
    assert [i.key for i in days.items] == ["2021-11-06", "2021-11-07", "2021-11-08"]
    assert days.next is None  # `more: false`
    assert days.items[0].start == datetime(2021, 11, 5, 15, 0, tzinfo=UTC)  # Tokyo's midnight


def test_odd_answers() -> None:
    ok = {"status": 0, "body": {"measuregrps": [], "more": 0, "offset": 0}}
    assert check_answer(HttpAnswer(200, {}, ok, "")) == Ok(ok["body"])
    for status, verdict in [
        (100, Unauthorized),
        (283, Unauthorized),
        (601, RateLimited),
        (503, Refused),
        (2554, Refused),
        (342, Refused),
        (247, Refused),
        (522, Transient),
        (2555, Transient),
    ]:
        body = {"status": status, "body": {}, "error": "whatever"}
        assert isinstance(check_answer(HttpAnswer(200, {}, body, "")), verdict), status
    assert check_answer(
        HttpAnswer(200, {"retry-after": "7"}, {"status": 601, "body": {}}, "")
    ) == RateLimited(7.0)
    assert isinstance(check_answer(HttpAnswer(200, {}, {"status": 0}, "")), Transient)
    assert isinstance(check_answer(HttpAnswer(200, {}, {"body": {}}, "")), Transient)
    assert isinstance(check_answer(HttpAnswer(200, {}, [1], "")), Transient)
    assert isinstance(check_answer(HttpAnswer(200, {}, None, '{"status": 0, "bo')), Transient)
    assert isinstance(check_answer(HttpAnswer(502, {}, None, "Bad Gateway")), Transient)
    assert isinstance(check_answer(HttpAnswer(429, {}, None, "")), RateLimited)
    assert isinstance(check_answer(HttpAnswer(404, {}, None, "Not Found")), Refused)


@pytest.mark.parametrize(
    ("resource", "body"),
    [
        ("measures", {"measuregrps": {}, "more": 0, "offset": 0}),
        ("measures", {"more": 0, "offset": 0}),
        ("measures", {"measuregrps": [{"date": 1}], "more": 0}),  # no grpid
        ("measures", {"measuregrps": [{"grpid": 1, "date": 1}], "more": 0}),  # no measures
        ("measures", {"measuregrps": [], "more": "0"}),
        ("measures", {"measuregrps": [], "more": 1, "offset": 0}),  # would loop
        ("activity", {"activities": [{"date": "06/11/2021"}], "more": False}),
        ("activity", {"activities": [{"date": "2021-02-30"}], "more": False}),
        ("activity", [1]),
        ("workouts", {"series": [{"startdate": "1594245600"}], "more": False}),
        ("sleep", {"series": [1], "more": False}),
        ("sleep", {"series": [], "more": True}),  # no offset
    ],
)
def test_pages_not_shaped_as_documented_are_refused(resource: str, body: Any) -> None:
    chosen = PROVIDER.resource(resource)
    with pytest.raises(MalformedPage):
        chosen.read_page(body, chosen.first_call(START, NOW))


def test_the_calls_and_their_pagination() -> None:
    measures = PROVIDER.resource("measures")
    first = measures.first_call(START, NOW)
    assert first.method == "POST" and first.params == {} and first.path == "/measure"
    assert first.form == {
        "action": "getmeas",
        "meastypes": ",".join(str(t) for t in MEASTYPES),
        "category": "1",
        "startdate": str(int(START.timestamp())),
        "enddate": str(int(NOW.timestamp()) - 1),  # inclusive: the window ends before NOW
    }
    page = measures.read_page({"measuregrps": [], "more": 1, "offset": 100}, first)
    assert page.next == Call("/measure", method="POST", form={**first.form, "offset": "100"})
    assert measures.read_page({"measuregrps": [], "more": 0, "offset": 0}, page.next).next is None
    for name, path, action, fields in [
        ("activity", "/v2/measure", "getactivity", ACTIVITY_FIELDS),
        ("workouts", "/v2/measure", "getworkouts", ()),
        ("sleep", "/v2/sleep", "getsummary", SLEEP_FIELDS),
    ]:
        resource = PROVIDER.resource(name)
        call = resource.first_call(START, NOW)
        expected = {"action": action, "startdateymd": "2025-03-14", "enddateymd": "2026-03-16"}
        if fields:
            expected["data_fields"] = ",".join(fields)
        assert call == Call(path, method="POST", form=expected)
        turned = resource.read_page(
            {"activities": [], "series": [], "more": True, "offset": 7}, call
        )
        assert turned.next is not None and turned.next.form == {**expected, "offset": "7"}


def test_ids_when_withings_sends_them() -> None:
    sleep = PROVIDER.resource("sleep")
    night = sample("sleepv2.getsummary.docs_example.json")["body"]["series"][0]
    body = {"series": [night, {**night, "id": 12345}], "more": False, "offset": 0}
    items = sleep.read_page(body, sleep.first_call(START, NOW)).items
    assert [i.key for i in items] == ["1594245600", "12345"]


# --- webhooks -----------------------------------------------------------------------------------


async def send(sim: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    """A notification as the simulator sends it to our receiver."""
    await connect(sim, "withings", user=USER)
    answer = await sim.post(
        "/_control/webhooks/send",
        json={"provider": "withings", "user": USER, "url": HOOK, **extra},
    )
    assert answer.status_code == 200, answer.text
    sent: dict[str, Any] = answer.json()["requests"][0]
    return sent


async def notification(sim: httpx.AsyncClient, **extra: Any) -> WebhookRequest:
    sent = await send(sim, **extra)
    assert sent["method"] == "POST"
    return WebhookRequest(
        method=sent["method"],
        query={},
        headers={k.lower(): v for k, v in sent["headers"].items()},
        body=sent["body"].encode(),
    )


@pytest.mark.parametrize(
    ("appli", "resources"),
    [
        (1, ("measures",)),
        (4, ("measures",)),
        (16, ("activity", "workouts")),
        (44, ("sleep",)),
        (51, ("sleep",)),
    ],
)
async def test_a_notification_re_syncs_its_resources_over_its_range(
    sim: httpx.AsyncClient, appli: int, resources: tuple[str, ...]
) -> None:
    request = await notification(sim, appli=appli)
    who = await identity(sim, USER)
    expected = Notices(
        [
            Notice(
                provider_user_id=who["userid"],
                resources=resources,
                start=NOW - timedelta(days=1),  # the simulator's default: the last day
                end=NOW + timedelta(seconds=1),  # enddate is inclusive
            )
        ]
    )
    assert verify_webhook(request, SECRETS, now=NOW.timestamp()) == expected
    assert PROVIDER.verify_webhook(request, SECRETS) == expected  # on the real clock


async def test_other_notifications(sim: httpx.AsyncClient) -> None:
    who = await identity(sim, USER)
    at = NOW.timestamp()
    unlink = await notification(sim, appli=46, action="unlink")
    assert verify_webhook(unlink, SECRETS, now=at) == Notices(
        [Notice(provider_user_id=who["userid"], deauthorized=True)]
    )
    for quiet in (
        await notification(sim, appli=50),  # in bed: the night is not over
        await notification(sim, appli=46, action="update"),  # a profile change
    ):
        assert verify_webhook(quiet, SECRETS, now=at) == Notices([])
    by_date = WebhookRequest(
        "POST", {}, FORM, urlencode({"userid": "42", "appli": "16", "date": "2026-03-14"}).encode()
    )
    assert verify_webhook(by_date, SECRETS, now=at) == Notices(
        [
            Notice(
                provider_user_id="42",
                resources=("activity", "workouts"),
                start=datetime(2026, 3, 13, tzinfo=UTC),
                end=datetime(2026, 3, 16, tzinfo=UTC),
            )
        ]
    )


def test_the_documented_example_verifies() -> None:
    if not SAMPLES.is_dir():
        pytest.skip(f"the reference samples are not at {SAMPLES}")
    body = (SAMPLES / "notification.callback.form_body.docs_example.txt").read_bytes().strip()
    assert verify_webhook(WebhookRequest("POST", {}, FORM, body), SECRETS) == Notices(
        [
            Notice(
                provider_user_id="12345",
                resources=("measures",),
                start=datetime.fromtimestamp(1530576000, UTC),
                end=datetime.fromtimestamp(1530698754, UTC),
            )
        ]
    )


async def test_notifications_not_shaped_as_withings_sends_them_are_refused(
    sim: httpx.AsyncClient,
) -> None:
    genuine = await notification(sim, appli=1)
    form = dict(parse_qsl(genuine.body.decode()))
    at = NOW.timestamp()

    def encoded(**changes: str | None) -> bytes:
        changed = {**form, **changes}
        return urlencode({k: v for k, v in changed.items() if v is not None}).encode()

    tampered: list[bytes] = [
        b"",
        b"\xff\xfe",
        b"userid=1&&appli",
        encoded(userid=None),
        encoded(userid="12ab"),
        encoded(userid=""),
        encoded(appli=None),
        encoded(appli="999"),  # not a category Withings documents
        encoded(appli="one"),
        encoded(startdate=None),  # half a range
        encoded(startdate=None, enddate=None),  # no range at all
        encoded(startdate="-5"),
        encoded(startdate=str(int(at) + 10), enddate=str(int(at))),  # backwards
        encoded(enddate=str(int(at) + 7 * 86_400)),  # a week in the future
        encoded(startdate=None, enddate=None, date="2026-02-30"),
        genuine.body + b"&userid=666",  # a field twice
    ]
    for body in tampered:
        with pytest.raises(WebhookRefused) as refused:
            verify_webhook(WebhookRequest("POST", {}, genuine.headers, body), SECRETS, now=at)
        assert refused.value.status == 400, body
    as_json = orjson.dumps(form)
    with pytest.raises(WebhookRefused) as refused:
        verify_webhook(
            WebhookRequest("POST", {}, {"content-type": "application/json"}, as_json), SECRETS
        )
    assert refused.value.status == 400
    with pytest.raises(WebhookRefused) as refused:
        verify_webhook(WebhookRequest("PUT", {}, genuine.headers, genuine.body), SECRETS)
    assert refused.value.status == 405
    assert isinstance(verify_webhook(genuine, SECRETS, now=at), Notices)


def test_the_url_check_answers_200() -> None:
    """Withings signs nothing and sends no token: its HEAD/GET only checks the URL answers."""
    for method in ("HEAD", "GET"):
        request = WebhookRequest(method, {}, {}, b"")
        assert verify_webhook(request, SECRETS) == Challenge(200, {})


async def test_the_simulator_gets_a_200_from_our_receiver() -> None:
    """A whole delivery: the simulator's notification reaches a receiver answering with our
    verdict, as the webhook route does."""
    seen: list[Notices | Challenge] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        try:
            outcome = verify_webhook(
                WebhookRequest(
                    request.method,
                    {},
                    {k.lower(): v for k, v in request.headers.items()},
                    request.content,
                ),
                SECRETS,
            )
        except WebhookRefused as refused:
            return httpx.Response(refused.status)
        seen.append(outcome)
        return httpx.Response(200)

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
            await connect(client, "withings", user=USER)
            body = {"provider": "withings", "user": USER, "url": HOOK}
            good = await client.post("/_control/webhooks/send", json={**body, "appli": 44})
            bad = await client.post("/_control/webhooks/send", json={**body, "appli": 7})
    assert good.json()["requests"][0]["status"] == 200
    assert bad.json()["requests"][0]["status"] == 400
    assert len(seen) == 1 and isinstance(seen[0], Notices)
    assert seen[0].items[0].resources == ("sleep",)
