"""A Cronometer daily summary and a MyFitnessPal nutrition export uploaded through the gateway:
cut into whole days by the connectors, summed per local day by the normalizer, each day's
numbers worked out by hand; bad rows rejected alone; the same files again change nothing; what
is not an export, or names an unknown timezone, refused before anything is queued."""

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import Stack, sign_up, wait_until_finished

pytestmark = pytest.mark.e2e

CRONOMETER = (
    b"Date,Energy (kcal),Water (g),Sodium (mg),Carbs (g),Fiber (g),Sugars (g),Net Carbs (g),"
    b"Fat (g),Protein (g),Vitamin C (mg),Completed\n"
    b"2024-03-01,2104.50,1850.00,2300.00,250.25,30.50,80.00,219.75,70.25,120.75,90.00,true\n"
    b"2024-03-02,1800.00,,2000.00,200.00,25.00,60.00,175.00,65.50,110.00,80.00,false\n"
    b"2024-03-03,lots,1500.00,1900.00,180.00,20.00,50.00,160.00,60.00,100.00,70.00,true\n"
    b"2024-03-04,1900.00,1200.00\n"  # cut short
)
MYFITNESSPAL = (
    b"Date,Meal,Calories,Fat (g),Saturated Fat,Polyunsaturated Fat,Monounsaturated Fat,"
    b"Trans Fat,Cholesterol,Sodium (mg),Potassium,Carbohydrates (g),Fiber,Sugar,Protein (g),"
    b"Vitamin A,Vitamin C,Calcium,Iron,Note\r\n"
    b"2024-03-01,Breakfast,518.0,29.0,7.9,0.0,0.0,0.0,0.0,574.5,740.0,36.7,2.1,14.1,27.6,0,0,0,0,\r\n"
    b"2024-03-01,Lunch,489.5,14.6,8.4,0.0,0.0,0.0,0.0,1.5,0.0,62.0,6.7,20.9,34.8,0,0,0,0,\r\n"
    b"2024-03-01,Dinner,561.25,15.4,9.6,0.0,0.0,0.0,0.0,250.0,0.1,46.7,4.6,0.3,59.3,0,0,0,0,\r\n"
    b"2024-03-02,Breakfast,400.0,10.0,2.0,0.0,0.0,0.0,0.0,100.0,0.0,50.0,5.0,10.0,20.0,0,0,0,0,\r\n"
)


async def upload(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    kind: str,
    body: bytes,
    timezone: str | None = None,
) -> httpx.Response:
    data = {"kind": kind} | ({"timezone": timezone} if timezone else {})
    return await client.post(
        "/v1/imports", headers=auth, data=data, files={"file": ("export.csv", body, "text/csv")}
    )


async def imported(
    client: httpx.AsyncClient, auth: dict[str, str], kind: str, body: bytes, timezone: str | None
) -> dict[str, object]:
    accepted = await upload(client, auth, kind, body, timezone)
    assert accepted.status_code == 202, accepted.text
    finished = await wait_until_finished(client, auth, accepted.json()["id"])
    assert finished["status"] == "done", finished
    assert finished["bytes_read"] == finished["bytes_total"] == len(body)
    return finished


async def days(
    client: httpx.AsyncClient, auth: dict[str, str], metric: str, source: str
) -> list[tuple[str, str, float, str]]:
    answer = await client.get(
        f"/v1/metrics/{metric}",
        params={"start": "2024-02-28", "end": "2024-03-06", "resolution": "day", "source": source},
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    return [
        (p["date"], p["start"], round(p["value"], 6), p["source"]) for p in answer.json()["points"]
    ]


async def everything(client: httpx.AsyncClient, auth: dict[str, str]) -> list[object]:
    return [
        await days(client, auth, metric, source)
        for metric in ("energy_intake", "protein", "water")
        for source in ("cronometer", "myfitnesspal", "resolved")
    ]


async def sample_count(stack: Stack, user_id: str) -> int:
    conn = await asyncpg.connect(stack.database_url)
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM normalizer.samples_v1 WHERE user_id = $1", user_id
        )
    finally:
        await conn.close()
    return count


async def test_nutrition_exports_become_each_days_totals_counted_once(
    client: httpx.AsyncClient, stack: Stack
) -> None:
    auth = await sign_up(client)
    user_id = (await client.get("/v1/me", headers=auth)).json()["id"]
    # The profile's zone is the default for a file sent without one (no API sets it yet).
    conn = await asyncpg.connect(stack.database_url)
    try:
        await conn.execute(
            "UPDATE auth.users SET timezone = 'America/Chicago' WHERE id = $1", user_id
        )
    finally:
        await conn.close()

    cronometer = await imported(client, auth, "cronometer", CRONOMETER, "Europe/Berlin")
    # 4 rows: March 3 has a bad number and March 4's line is cut short, each rejected alone.
    assert (
        cronometer["records_seen"],
        cronometer["records_imported"],
        cronometer["records_rejected"],
    ) == (4, 2, 2)
    assert cronometer["errors"] == [
        {"where": "row 4", "reason": "column 'Energy (kcal)': 'lots' is not a number"},
        {"where": "row 5", "reason": "3 cells where the header has 12: the line is cut short "
                                     "or garbled"},
    ]  # fmt: skip
    mfp = await imported(client, auth, "myfitnesspal", MYFITNESSPAL, None)
    assert (mfp["records_seen"], mfp["records_imported"], mfp["records_rejected"]) == (4, 4, 0)

    # Cronometer: one row a day, in Berlin (CET, +01:00).
    berlin_1, berlin_2 = "2024-03-01T00:00:00+01:00", "2024-03-02T00:00:00+01:00"
    assert await days(client, auth, "energy_intake", "cronometer") == [
        ("2024-03-01", berlin_1, 2104.5, "cronometer"),
        ("2024-03-02", berlin_2, 1800.0, "cronometer"),
    ]
    # MyFitnessPal: meals summed per day, in the profile's Chicago (CST, -06:00):
    # March 1: 518.0 + 489.5 + 561.25 = 1568.75 kcal and 27.6 + 34.8 + 59.3 = 121.7 g protein;
    # March 2: the one breakfast.
    chicago_1, chicago_2 = "2024-03-01T00:00:00-06:00", "2024-03-02T00:00:00-06:00"
    assert await days(client, auth, "energy_intake", "myfitnesspal") == [
        ("2024-03-01", chicago_1, 1568.75, "myfitnesspal"),
        ("2024-03-02", chicago_2, 400.0, "myfitnesspal"),
    ]
    assert await days(client, auth, "protein", "myfitnesspal") == [
        ("2024-03-01", chicago_1, 121.7, "myfitnesspal"),
        ("2024-03-02", chicago_2, 20.0, "myfitnesspal"),
    ]
    assert await days(client, auth, "protein", "cronometer") == [
        ("2024-03-01", berlin_1, 120.75, "cronometer"),
        ("2024-03-02", berlin_2, 110.0, "cronometer"),
    ]
    # "Water (g)": 1850 g = 1850 mL; March 2's cell is empty (not tracked), so no sample.
    assert await days(client, auth, "water", "cronometer") == [
        ("2024-03-01", berlin_1, 1850.0, "cronometer")
    ]
    # Both answer both days; nutrition prefers Cronometer by default.
    assert [(d, s) for d, _, _, s in await days(client, auth, "energy_intake", "resolved")] == [
        ("2024-03-01", "cronometer"),
        ("2024-03-02", "cronometer"),
    ]

    # The same two files again: new imports, nothing new in the data.
    before, samples = await everything(client, auth), await sample_count(stack, user_id)
    # energy, protein, carbohydrate, fat, fiber, sugar, sodium per day from each source, and
    # Cronometer's water on March 1: 7 * 2 * 2 + 1.
    assert samples == 29
    await imported(client, auth, "cronometer", CRONOMETER, "Europe/Berlin")
    await imported(client, auth, "myfitnesspal", MYFITNESSPAL, None)
    assert await everything(client, auth) == before
    assert await sample_count(stack, user_id) == samples


@pytest.mark.parametrize(
    ("kind", "body", "timezone", "status", "code"),
    [
        ("cronometer", MYFITNESSPAL, None, 415, "unsupported_media_type"),
        ("myfitnesspal", b"Date,Steps\n2024-03-01,5\n", None, 415, "unsupported_media_type"),
        ("cronometer", CRONOMETER, "Mars/Olympus", 422, "invalid_timezone"),
    ],
    ids=["another export", "not an export", "unknown timezone"],
)
async def test_a_wrong_file_or_timezone_is_refused_and_nothing_queued(
    client: httpx.AsyncClient,
    stack: Stack,
    kind: str,
    body: bytes,
    timezone: str | None,
    status: int,
    code: str,
) -> None:
    auth = await sign_up(client)
    answer = await upload(client, auth, kind, body, timezone)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert (await client.get("/v1/imports", headers=auth)).json() == []
    incoming = stack.data_dir / "uploads" / ".incoming"
    assert not incoming.exists() or list(incoming.iterdir()) == []
