"""Data endpoints: pagination and date rules per provider, determinism, no future data."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from healthmesh.simulator.app import create_app
from healthmesh.simulator.clock import FakeClock
from healthmesh.simulator.settings import Settings
from healthmesh.simulator.testing import PROVIDERS, connect


@pytest.fixture
def settings() -> Settings:
    return Settings(days=120)


@pytest.fixture
async def tokens(client: httpx.AsyncClient) -> dict[str, str]:
    return {p: (await connect(client, p, user="walker"))["access_token"] for p in PROVIDERS}


def auth(tokens: dict[str, str], provider: str) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens[provider]}"}


async def identity(client: httpx.AsyncClient, user: str = "walker") -> dict[str, Any]:
    users: dict[str, Any] = (await client.get(f"/_control/users/{user}")).json()
    return users


async def history(client: httpx.AsyncClient) -> list[str]:
    """Every local day of the walker's simulated history, oldest first."""
    oura = (await identity(client))["oura"]
    first, last = date.fromisoformat(oura["first_day"]), date.fromisoformat(oura["last_day"])
    days = [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    assert len(days) == 120
    return days


# --- Oura ---------------------------------------------------------------------------------------


async def test_oura_next_token_walk_returns_every_day_once(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    days = await history(client)
    params: dict[str, str] = {"start_date": "2020-01-01", "end_date": days[-1]}
    seen: list[str] = []
    pages = 0
    while True:
        body = (
            await client.get(
                "/oura/v2/usercollection/daily_activity",
                params=params,
                headers=auth(tokens, "oura"),
            )
        ).json()
        pages += 1
        seen += [doc["day"] for doc in body["data"]]
        if body["next_token"] is None:
            break
        params = {"next_token": body["next_token"]}
    assert pages == 2
    assert seen == days


async def test_oura_dates_are_inclusive_and_checked(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    days = await history(client)
    body = (
        await client.get(
            "/oura/v2/usercollection/daily_readiness",
            params={"start_date": days[10], "end_date": days[12]},
            headers=auth(tokens, "oura"),
        )
    ).json()
    assert [d["day"] for d in body["data"]] == days[10:13]
    wrong = await client.get(
        "/oura/v2/usercollection/daily_sleep",
        params={"start_date": days[12], "end_date": days[10]},
        headers=auth(tokens, "oura"),
    )
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["msg"] == "Start date must be before end date"


async def test_oura_heartrate_window_and_pages(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    start, end = "2026-01-20T00:00:00+00:00", "2026-03-01T00:00:00+00:00"
    params = {"start_datetime": start, "end_datetime": end}
    rows: list[dict[str, Any]] = []
    while True:
        body = (
            await client.get(
                "/oura/v2/usercollection/heartrate", params=params, headers=auth(tokens, "oura")
            )
        ).json()
        rows += body["data"]
        if not body["next_token"]:
            break
        params = {"next_token": body["next_token"]}
    stamps = [r["timestamp"] for r in rows]
    assert len(stamps) > 10_000  # more than one page
    assert stamps == sorted(set(stamps))
    assert start <= stamps[0] and stamps[-1] < end
    assert {r["source"] for r in rows} >= {"awake", "sleep"}


async def test_oura_single_document_and_404(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    listed = (
        await client.get("/oura/v2/usercollection/sleep", headers=auth(tokens, "oura"))
    ).json()["data"]
    one = await client.get(
        f"/oura/v2/usercollection/sleep/{listed[0]['id']}", headers=auth(tokens, "oura")
    )
    assert one.json() == listed[0]
    missing = await client.get("/oura/v2/usercollection/sleep/nope", headers=auth(tokens, "oura"))
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Document not found."}


# --- WHOOP --------------------------------------------------------------------------------------


async def test_whoop_walk_newest_first_every_cycle_once(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    params: dict[str, str] = {"limit": "25"}
    cycles: list[dict[str, Any]] = []
    while True:
        body = (
            await client.get(
                "/whoop/developer/v2/cycle", params=params, headers=auth(tokens, "whoop")
            )
        ).json()
        assert len(body["records"]) <= 25
        cycles += body["records"]
        if "next_token" not in body:
            break
        params = {"limit": "25", "nextToken": body["next_token"]}
    assert len(cycles) == 120
    assert len({c["id"] for c in cycles}) == 120
    starts = [c["start"] for c in cycles]
    assert starts == sorted(starts, reverse=True)
    assert "end" not in cycles[0]  # the current cycle
    assert all("end" in c for c in cycles[1:])
    too_many = await client.get(
        "/whoop/developer/v2/cycle", params={"limit": "26"}, headers=auth(tokens, "whoop")
    )
    assert too_many.status_code == 400


async def test_whoop_start_inclusive_end_exclusive(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    every = (
        await client.get(
            "/whoop/developer/v2/activity/sleep",
            params={"limit": "25"},
            headers=auth(tokens, "whoop"),
        )
    ).json()["records"]
    newest, older = every[0], every[3]
    window = {"start": older["start"], "end": newest["start"], "limit": "25"}
    body = (
        await client.get(
            "/whoop/developer/v2/activity/sleep", params=window, headers=auth(tokens, "whoop")
        )
    ).json()
    assert [r["id"] for r in body["records"]] == [r["id"] for r in every[1:4]]
    recovery = await client.get(
        f"/whoop/developer/v2/cycle/{newest['cycle_id']}/sleep", headers=auth(tokens, "whoop")
    )
    assert recovery.json()["id"] == newest["id"]


# --- Google Health ------------------------------------------------------------------------------


async def google_walk(
    client: httpx.AsyncClient, tokens: dict[str, str], data_type: str, **params: str
) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    query = dict(params)
    while True:
        body = (
            await client.get(
                f"/fitbit/v4/users/me/dataTypes/{data_type}/dataPoints",
                params=query,
                headers=auth(tokens, "fitbit"),
            )
        ).json()
        points += body.get("dataPoints", [])
        if not body.get("nextPageToken"):
            return points
        query = {**params, "pageToken": body["nextPageToken"]}


async def test_google_daily_walk_every_day_once_newest_first(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    days = await history(client)
    points = await google_walk(client, tokens, "daily-resting-heart-rate", pageSize="50")
    seen = [date(**p["dailyRestingHeartRate"]["date"]).isoformat() for p in points]
    assert seen == days[::-1]


async def test_google_civil_filter_and_daily_rollup_agree(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    days = await history(client)
    day, after = days[-5], days[-4]
    steps = await google_walk(
        client,
        tokens,
        "steps",
        filter=f'steps.interval.civil_start_time >= "{day}" AND '
        f'steps.interval.civil_start_time < "{after}"',
    )
    assert steps
    total = sum(int(p["steps"]["count"]) for p in steps)
    y, m, d = (int(x) for x in day.split("-"))
    y2, m2, d2 = (int(x) for x in after.split("-"))
    rollup = await client.post(
        "/fitbit/v4/users/me/dataTypes/steps/dataPoints:dailyRollUp",
        json={
            "range": {
                "start": {"date": {"year": y, "month": m, "day": d}},
                "end": {"date": {"year": y2, "month": m2, "day": d2}},
            },
            "windowSizeDays": 1,
        },
        headers=auth(tokens, "fitbit"),
    )
    assert rollup.json()["rollupDataPoints"][0]["steps"] == {"countSum": str(total)}


async def test_google_filter_rules(client: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    url = "/fitbit/v4/users/me/dataTypes/heart-rate/dataPoints"
    wrong_field = await client.get(
        url,
        params={"filter": 'steps.interval.start_time >= "2026-03-01T00:00:00Z"'},
        headers=auth(tokens, "fitbit"),
    )
    assert wrong_field.json()["error"]["details"][0]["reason"] == "INVALID_DATA_POINT_FILTER"
    camel = await client.get(
        "/fitbit/v4/users/me/dataTypes/heartRate/dataPoints", headers=auth(tokens, "fitbit")
    )
    assert camel.json()["error"]["details"][0]["reason"] == "INVALID_PARENT_DATA_TYPE_COLLECTION"
    sleep = await client.get(
        "/fitbit/v4/users/me/dataTypes/sleep/dataPoints",
        params={"pageSize": "100", "filter": 'sleep.interval.civil_end_time >= "2026-01-01"'},
        headers=auth(tokens, "fitbit"),
    )
    assert len(sleep.json()["dataPoints"]) == 25  # sleep pages are capped at 25
    window = await client.get(
        url,
        params={
            "filter": 'heart_rate.sample_time.physical_time >= "2026-03-10T00:00:00Z" AND '
            'heart_rate.sample_time.physical_time < "2026-03-10T01:00:00Z"'
        },
        headers=auth(tokens, "fitbit"),
    )
    times = [p["heartRate"]["sampleTime"]["physicalTime"] for p in window.json()["dataPoints"]]
    assert times == sorted(times, reverse=True)
    assert all("2026-03-10T00:" in t for t in times) and len(times) >= 10


async def test_google_account_not_linked(client: httpx.AsyncClient) -> None:
    tokens = await connect(client, "fitbit", user="unlinked-bob")
    response = await client.get(
        "/fitbit/v4/users/me/dataTypes/steps/dataPoints",
        headers={"authorization": f"Bearer {tokens['access_token']}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"][0]["reason"] == "ACCOUNT_NOT_LINKED"


# --- Withings -----------------------------------------------------------------------------------


async def withings(
    client: httpx.AsyncClient, tokens: dict[str, str], path: str, **form: str
) -> Any:
    response = await client.post(f"/withings{path}", data=form, headers=auth(tokens, "withings"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == 0, body
    return body["body"]


async def test_withings_getactivity_offset_walk(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    days = await history(client)
    form = {"action": "getactivity", "startdateymd": days[0], "enddateymd": days[-1]}
    seen: list[str] = []
    while True:
        body = await withings(client, tokens, "/v2/measure", **form)
        seen += [a["date"] for a in body["activities"]]
        if not body["more"]:
            break
        form["offset"] = str(body["offset"])
    assert seen == days


async def test_withings_getmeas_types_dates_and_pages(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    form = {"action": "getmeas", "meastypes": "1,6"}
    groups: list[dict[str, Any]] = []
    while True:
        body = await withings(client, tokens, "/measure", **form)
        groups += body["measuregrps"]
        if not body["more"]:
            break
        form["offset"] = str(body["offset"])
    assert len(groups) > 60
    assert len({g["grpid"] for g in groups}) == len(groups)
    assert all({m["type"] for m in g["measures"]} <= {1, 6} for g in groups)
    dates = [g["date"] for g in groups]
    assert dates == sorted(dates, reverse=True)
    weight = next(m for m in groups[0]["measures"] if m["type"] == 1)
    assert 35 < weight["value"] * 10 ** weight["unit"] < 150
    window = await withings(
        client,
        tokens,
        "/measure",
        action="getmeas",
        meastypes="1,6",
        startdate=str(dates[5]),
        enddate=str(dates[2]),
    )
    assert [g["date"] for g in window["measuregrps"]] == dates[2:6]


async def test_withings_refusals_are_http_200(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    unknown = await client.post(
        "/withings/v2/measure", data={"action": "nope"}, headers=auth(tokens, "withings")
    )
    assert unknown.status_code == 200 and unknown.json()["status"] == 2554
    no_dates = await client.post(
        "/withings/v2/sleep", data={"action": "getsummary"}, headers=auth(tokens, "withings")
    )
    assert no_dates.status_code == 200 and no_dates.json()["status"] == 503


# --- Strava -------------------------------------------------------------------------------------


async def strava(
    client: httpx.AsyncClient, tokens: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get(
        "/strava/api/v3/athlete/activities", params=params, headers=auth(tokens, "strava")
    )
    assert response.status_code == 200
    items: list[dict[str, Any]] = response.json()
    return items


async def test_strava_page_walk_until_empty(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    every: list[dict[str, Any]] = []
    page = 1
    while chunk := await strava(client, tokens, page=str(page), per_page="10"):
        every += chunk
        page += 1
    assert page > 3
    assert len({a["id"] for a in every}) == len(every)
    starts = [a["start_date"] for a in every]
    assert starts == sorted(starts, reverse=True)
    assert len(await strava(client, tokens, per_page="200")) == len(every)


async def test_strava_after_sorts_oldest_first(
    client: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    every = await strava(client, tokens, per_page="200")
    pivot = every[5]["start_date"]
    after = int(datetime.fromisoformat(pivot.replace("Z", "+00:00")).timestamp())
    newer = await strava(client, tokens, after=str(after), per_page="200")
    assert [a["id"] for a in newer] == [a["id"] for a in every[:5]][::-1]
    older = await strava(client, tokens, before=str(after), per_page="200")
    assert [a["id"] for a in older] == [a["id"] for a in every[6:]]


async def test_strava_private_activities_need_read_all(client: httpx.AsyncClient) -> None:
    everything = await connect(client, "strava", user="walker", scope="activity:read_all")
    public = await connect(client, "strava", user="walker", scope="activity:read")
    counts = []
    for tokens in (everything, public):
        items = await strava(client, {"strava": tokens["access_token"]}, per_page="200")
        counts.append(Counter(a["private"] for a in items))
    assert counts[0][True] > 0
    assert counts[1][True] == 0 and counts[1][False] == counts[0][False]


# --- every provider -----------------------------------------------------------------------------


async def oura_week(client: httpx.AsyncClient) -> Any:
    tokens = await connect(client, "oura", user="walker")
    response = await client.get(
        "/oura/v2/usercollection/sleep",
        params={"start_date": "2026-03-01", "end_date": "2026-03-15"},
        headers={"authorization": f"Bearer {tokens['access_token']}"},
    )
    return response.json()


async def test_same_seed_same_data_other_seed_other_data(
    client: httpx.AsyncClient, clock: FakeClock
) -> None:
    first = await oura_week(client)
    for seed, same in ((1, True), (2, False)):
        app = create_app(Settings(days=120, seed=seed), clock=FakeClock(clock.now()))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sim") as other:
                assert (await oura_week(other) == first) is same


async def test_nothing_from_the_future(
    client: httpx.AsyncClient, tokens: dict[str, str], clock: FakeClock
) -> None:
    now = datetime.fromtimestamp(clock.now(), UTC)
    sleeps = (
        await client.get(
            "/oura/v2/usercollection/sleep",
            params={"start_date": "2026-03-10", "end_date": "2026-03-20"},
            headers=auth(tokens, "oura"),
        )
    ).json()["data"]
    assert all(datetime.fromisoformat(s["bedtime_end"]) <= now for s in sleeps)
    points = await google_walk(client, tokens, "heart-rate", pageSize="10000")
    newest = datetime.fromisoformat(
        points[0]["heartRate"]["sampleTime"]["physicalTime"].replace("Z", "+00:00")
    )
    assert now - timedelta(minutes=10) < newest <= now
