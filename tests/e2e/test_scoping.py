"""Every user-scoped endpoint of the gateway answers a user with their own data only.

User A has data (a CSV import and a Strava connection with its synced workouts), preferences, an
upload, a CSV preset and a sync; user B has a small import of their own. With B's token, and A's
ids where a path takes one, no answer holds anything of A's, no write touches A's things, and
A's ids are 404; without a token, 401. The endpoints are read from the gateway's /openapi.json:
a new read endpoint is probed automatically, and a new write endpoint fails
`test_every_endpoint_is_accounted_for` until this file says how B's attempt must end.
"""

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from healthmesh.devstack.testing import eventually
from tests.e2e.conftest import Stack, sign_up, wait_until_finished
from tests.e2e.test_connections import connect

pytestmark = pytest.mark.e2e

PUBLIC = {
    ("POST", "/v1/users"),
    ("POST", "/v1/auth/token"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/v1/metrics"),  # the vocabulary: the same for everyone
    ("GET", "/v1/oauth/{provider}/callback"),  # the provider's redirect: auth checks the state
    ("GET", "/v1/webhooks/{provider}"),  # providers call these: the connectors verify them
    ("HEAD", "/v1/webhooks/{provider}"),
    ("POST", "/v1/webhooks/{provider}"),
}
"""Operations anyone may call; every other one needs a token and is scoped to its caller."""

A_OWNED = ("import_id", "upload_id", "name", "sync_id")
"""Path parameters that name one of A's things: B gets 404 for them."""

START, END, DAY = "2024-03-01", "2024-03-31", "2024-03-11"
QUERY = {"start": START, "end": END, "date": DAY, "metric": "steps"}
"""A value for each query parameter a read endpoint may take (window of both users' data)."""

MAPPING = {
    "timestamp": "Date",
    "columns": {
        "Steps": {"metric": "steps", "unit": "count"},
        "Weight": {"metric": "body_mass", "unit": "kg"},
    },
}
A_CSV = "Date,Steps,Weight\n2024-03-11,13579,77.7\n2024-03-12,24680,\n"
B_CSV = "Date,Steps,Weight\n2024-03-11,1111,\n2024-03-12,2222,\n"
# Numbers that appear only if A's data leaks: A's values, their sum (a week or month of A), and
# A's plus B's (a day mixing both).
A_NUMBERS = {13579, 24680, 77.7, 13579 + 24680, 13579 + 1111, 24680 + 2222}
A_PRESET = "a-secret-preset"
A_SLEEP = {"sources": ["whoop", "oura"], "fallback": False}
A_STEPS = {"sources": ["csv", "apple_health"]}


@dataclass
class World:
    a: dict[str, str]
    """A's Authorization header."""
    b: dict[str, str]
    a_user: dict[str, Any]
    """A's GET /v1/me."""
    import_id: str
    upload_id: str
    sync_id: str
    sim_user: str
    paths: dict[str, dict[str, Any]]
    """The gateway's OpenAPI `paths`."""

    def markers(self) -> list[str]:
        """Strings of A's that no answer to B may contain."""
        return [
            self.a_user["id"],
            self.a_user["email"],
            self.import_id,
            self.upload_id,
            self.sync_id,
            self.sim_user,
            A_PRESET,
            "a-secret-upload.csv",
        ]

    def operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for path, methods in sorted(self.paths.items()):
            for method, operation in sorted(methods.items()):
                if method in {"get", "head", "post", "put", "patch", "delete"}:
                    yield method.upper(), path, operation

    def url(self, path: str) -> str:
        values = {
            "import_id": self.import_id,
            "upload_id": self.upload_id,
            "name": A_PRESET,
            "sync_id": self.sync_id,
            "provider": "strava",
            "metric": "steps",
            "category": "sleep",
        }

        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in values, f"{path}: say which value its {{{name}}} takes in this test"
            return str(values[name])

        return re.sub(r"\{([^}]+)\}", value, path)


async def upload_csv(
    client: httpx.AsyncClient, auth: dict[str, str], body: str, filename: str
) -> str:
    accepted = await client.post(
        "/v1/imports",
        headers=auth,
        data={"kind": "csv", "mapping": json.dumps(MAPPING)},
        files={"file": (filename, body, "text/csv")},
    )
    assert accepted.status_code == 202, accepted.text
    import_id = str(accepted.json()["id"])
    assert (await wait_until_finished(client, auth, import_id))["status"] == "done"
    return import_id


@pytest_asyncio.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=30.0) as http:
        yield http


@pytest_asyncio.fixture(scope="module")
async def world(client: httpx.AsyncClient) -> World:
    a, b = await sign_up(client), await sign_up(client)
    a_user = (await client.get("/v1/me", headers=a)).json()
    import_id = await upload_csv(client, a, A_CSV, "a-secret-upload.csv")
    await upload_csv(client, b, B_CSV, "b.csv")

    for path, body in (
        ("/v1/preferences/sleep", A_SLEEP),
        ("/v1/preferences/overrides/steps", A_STEPS),
    ):
        answer = await client.put(path, json=body, headers=a)
        assert answer.status_code == 200, answer.text
    preset = await client.put(f"/v1/csv-presets/{A_PRESET}", json=MAPPING, headers=a)
    assert preset.status_code == 200, preset.text
    upload = await client.post(
        "/v1/uploads", json={"length": 100, "filename": "a-secret-upload.csv"}, headers=a
    )
    assert upload.status_code == 201, upload.text

    # A Strava connection, its sync, and the workouts it brought.
    sim_user = f"strava-{a_user['id'][:8]}"
    assert (await connect(client, a, "strava", sim_user)).status_code == 200
    synced: list[httpx.Response] = []

    async def sync_accepted() -> bool:
        """Once the connectors heard of the connection (connections.changed)."""
        synced.append(await client.post("/v1/connections/strava/sync", headers=a))
        assert synced[-1].status_code in (202, 404), synced[-1].text
        return synced[-1].status_code == 202

    await eventually(sync_accepted, timeout=60, what="the connectors to know A's connection")
    sync = synced[-1]
    recent = {"start": (date.today() - timedelta(days=40)).isoformat(), "resolution": "raw"}

    async def workouts_arrived() -> bool:
        answer = await client.get("/v1/metrics/workout", params=recent, headers=a)
        return answer.status_code == 200 and bool(answer.json()["points"])

    await eventually(workouts_arrived, timeout=180, what="A's Strava workouts")

    spec = await client.get("/openapi.json")
    assert spec.status_code == 200
    return World(
        a,
        b,
        a_user,
        import_id,
        str(upload.json()["id"]),
        str(sync.json()["sync_id"]),
        sim_user,
        spec.json()["paths"],
    )


def numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)


def leaks(world: World, answer: httpx.Response, sent: tuple[str, ...] = ()) -> list[str]:
    """What of A's the answer holds: markers in its text or headers (except what the caller
    `sent` itself, which a refusal may quote back), A's numbers in its JSON."""
    text = answer.text + json.dumps(dict(answer.headers))
    found = [m for m in world.markers() if m in text and m not in sent]
    if answer.headers.get("content-type", "").startswith("application/json") and answer.content:
        found += [
            f"number {n}"
            for n in numbers(answer.json())
            if any(abs(n - a) < 1e-6 for a in A_NUMBERS)
        ]
    return found


def query_of(path: str, operation: dict[str, Any]) -> dict[str, str]:
    params: dict[str, str] = {}
    for parameter in operation.get("parameters", []):
        name = parameter["name"]
        if parameter["in"] != "query":
            continue
        if name in QUERY:
            params[name] = QUERY[name]
        else:
            assert not parameter.get("required"), f"{path}: give the query parameter {name}"
    return params


def reads(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for method, path, operation in world.operations()
        if method in ("GET", "HEAD") and (method, path) not in PUBLIC
    ]


# --- writes: how B's attempt on A's things must end -----------------------------------------

Write = Callable[[httpx.AsyncClient, World], Awaitable[httpx.Response]]


async def _start_connect(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.post("/v1/connections/strava", headers=w.b)


async def _sync(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.post("/v1/connections/strava/sync", headers=w.b)


async def _disconnect(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.delete("/v1/connections/strava?delete_data=true", headers=w.b)


async def _import_a_upload(client: httpx.AsyncClient, w: World) -> httpx.Response:
    fields = {"kind": "csv", "mapping": json.dumps(MAPPING), "upload_id": w.upload_id}
    multipart = {name: (None, value) for name, value in fields.items()}  # no file: multipart
    return await client.post("/v1/imports", files=multipart, headers=w.b)


async def _import_with_a_preset(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.post(
        "/v1/imports",
        data={"kind": "csv", "preset": A_PRESET},
        files={"file": ("b.csv", B_CSV, "text/csv")},
        headers=w.b,
    )


async def _preview_with_a_preset(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.post(
        "/v1/imports/preview",
        data={"preset": A_PRESET},
        files={"file": ("b.csv", B_CSV, "text/csv")},
        headers=w.b,
    )


async def _new_upload(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.post("/v1/uploads", json={"length": 10}, headers=w.b)


async def _patch_a_upload(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.patch(
        f"/v1/uploads/{w.upload_id}",
        content=b"x" * 10,
        headers={
            **w.b,
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
        },
    )


async def _delete_a_upload(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.delete(f"/v1/uploads/{w.upload_id}", headers=w.b)


async def _delete_a_preset(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.delete(f"/v1/csv-presets/{A_PRESET}", headers=w.b)


async def _put_same_preset_name(client: httpx.AsyncClient, w: World) -> httpx.Response:
    mapping = {"timestamp": "Day", "columns": {"Kcal": {"metric": "energy_intake", "unit": "kcal"}}}
    return await client.put(f"/v1/csv-presets/{A_PRESET}", json=mapping, headers=w.b)


async def _put_category(client: httpx.AsyncClient, w: World) -> httpx.Response:
    body = {"sources": ["oura"], "fallback": True}
    return await client.put("/v1/preferences/sleep", json=body, headers=w.b)


async def _delete_category(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.delete("/v1/preferences/sleep", headers=w.b)


async def _put_override(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.put(
        "/v1/preferences/overrides/steps", json={"sources": ["withings"]}, headers=w.b
    )


async def _delete_override(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.delete("/v1/preferences/overrides/steps", headers=w.b)


async def _change_me(client: httpx.AsyncClient, w: World) -> httpx.Response:
    return await client.patch("/v1/me", json={"timezone": "Asia/Tokyo"}, headers=w.b)


# In order: B's own preset of A's preset's name is made after the delete attempt, and removed
# again at the end (by the second DELETE, which must then succeed for B's own).
WRITES: list[tuple[str, str, Write, int]] = [
    ("POST", "/v1/connections/{provider}", _start_connect, 200),  # B's own authorize URL
    ("POST", "/v1/connections/{provider}/sync", _sync, 404),  # B has no Strava connection
    ("DELETE", "/v1/connections/{provider}", _disconnect, 404),
    ("POST", "/v1/imports", _import_a_upload, 404),
    ("POST", "/v1/imports", _import_with_a_preset, 422),
    ("POST", "/v1/imports/preview", _preview_with_a_preset, 422),
    ("POST", "/v1/uploads", _new_upload, 201),  # B's own
    ("PATCH", "/v1/uploads/{upload_id}", _patch_a_upload, 404),
    ("DELETE", "/v1/uploads/{upload_id}", _delete_a_upload, 404),
    ("DELETE", "/v1/csv-presets/{name}", _delete_a_preset, 404),
    ("PUT", "/v1/csv-presets/{name}", _put_same_preset_name, 200),  # B's own, same name
    ("DELETE", "/v1/csv-presets/{name}", _delete_a_preset, 204),  # B's own, not A's
    ("PUT", "/v1/preferences/{category}", _put_category, 200),
    ("DELETE", "/v1/preferences/{category}", _delete_category, 204),
    ("PUT", "/v1/preferences/overrides/{metric}", _put_override, 200),
    ("DELETE", "/v1/preferences/overrides/{metric}", _delete_override, 204),
    ("PATCH", "/v1/me", _change_me, 200),  # B's own profile
]


# --- tests -----------------------------------------------------------------------------------


async def test_every_endpoint_is_accounted_for(world: World) -> None:
    known = PUBLIC | {(m, p) for m, p, _ in reads(world)} | {(m, p) for m, p, _, _ in WRITES}
    found = {(method, path) for method, path, _ in world.operations()}
    assert found - known == set(), "new endpoints: add B's attempt to WRITES (or to PUBLIC)"
    assert {(m, p) for m, p, _, _ in WRITES} <= found, "WRITES names endpoints that are gone"
    # The ones the issue names, if the gateway has them, are probed as reads.
    read_paths = {p for m, p, _ in reads(world)}
    for path in ("/v1/metrics/{metric}", "/v1/preferences", "/v1/connections", "/v1/imports"):
        assert path in read_paths


async def test_without_a_token_every_scoped_endpoint_is_401(
    client: httpx.AsyncClient, world: World
) -> None:
    wrong = []
    for method, path, operation in world.operations():
        if (method, path) in PUBLIC:
            continue
        answer = await client.request(
            method, world.url(path), params=query_of(path, operation), json={}
        )
        if answer.status_code != 401:
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
    assert wrong == []


async def test_reads_with_anothers_token_show_nothing_of_theirs(
    client: httpx.AsyncClient, world: World
) -> None:
    wrong = []
    for method, path, operation in reads(world):
        answer = await client.request(
            method, world.url(path), params=query_of(path, operation), headers=world.b
        )
        takes_a_id = any(f"{{{name}}}" in path for name in A_OWNED)
        expected = 404 if takes_a_id else 200
        if answer.status_code != expected:
            wrong.append(f"{method} {path}: {answer.status_code}, expected {expected}")
        if found := leaks(world, answer):
            wrong.append(f"{method} {path}: shows A's {found}")
    assert wrong == []


async def test_lists_hold_only_the_callers_own(client: httpx.AsyncClient, world: World) -> None:
    imports = (await client.get("/v1/imports", headers=world.b)).json()
    assert len(imports) == 1 and imports[0]["id"] != world.import_id
    assert (await client.get("/v1/connections", headers=world.b)).json() == []
    assert (await client.get("/v1/csv-presets", headers=world.b)).json() == []
    mine = (await client.get("/v1/preferences", headers=world.b)).json()
    assert mine["overrides"] == {}
    assert all(category["default"] for category in mine["categories"].values())
    assert (await client.get("/v1/me", headers=world.b)).json()["id"] != world.a_user["id"]


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"resolution": "raw"},
        {"resolution": "hour"},
        {"resolution": "week"},
        {"resolution": "month"},
        {"source": "all"},
        {"source": "csv"},
        {"tz": "Europe/Berlin"},
    ],
)
async def test_metric_values_are_the_callers_own(
    client: httpx.AsyncClient, world: World, params: dict[str, str]
) -> None:
    answer = await client.get(
        "/v1/metrics/steps", params={"start": START, "end": END, **params}, headers=world.b
    )
    assert answer.status_code == 200, answer.text
    assert leaks(world, answer) == []
    values = [p["value"] for p in answer.json()["points"]]
    if params.get("resolution") == "hour":
        assert values == []  # date-only rows are day-long samples: no hourly values
    elif params.get("resolution") in ("week", "month"):
        assert sum(values) == 1111 + 2222
    else:
        assert sorted(values) == [1111, 2222]
    assert {p["source"] for p in answer.json()["points"]} <= {"csv"}


async def test_a_users_synced_and_imported_data_stays_theirs(
    client: httpx.AsyncClient, world: World
) -> None:
    recent = {"start": (date.today() - timedelta(days=40)).isoformat()}
    for metric, params in (("workout", recent), ("body_mass", {"start": START, "end": END})):
        for resolution in ("raw", "day"):
            answer = await client.get(
                f"/v1/metrics/{metric}",
                params={**params, "resolution": resolution},
                headers=world.b,
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["points"] == [], (metric, resolution)
    strava = await client.get(
        "/v1/metrics/workout", params={**recent, "source": "strava"}, headers=world.b
    )
    assert strava.json()["points"] == []


async def test_writes_with_anothers_token_touch_nothing_of_theirs(
    client: httpx.AsyncClient, world: World
) -> None:
    wrong = []
    for method, path, write, expected in WRITES:
        answer = await write(client, world)
        if answer.status_code != expected:
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        if found := leaks(world, answer, sent=(A_PRESET, world.upload_id)):
            wrong.append(f"{method} {path}: shows A's {found}")
    assert wrong == []

    # A's things are all still A's, as A left them.
    a = world.a
    assert (await client.get(f"/v1/imports/{world.import_id}", headers=a)).status_code == 200
    upload = (await client.get(f"/v1/uploads/{world.upload_id}", headers=a)).json()
    assert upload["offset"] == 0
    preset = await client.get(f"/v1/csv-presets/{A_PRESET}", headers=a)
    assert preset.status_code == 200 and preset.json()["mapping"]["timestamp"] == "Date"
    preferences = (await client.get("/v1/preferences", headers=a)).json()
    assert preferences["categories"]["sleep"] == {**A_SLEEP, "default": False}
    assert preferences["overrides"] == {"steps": A_STEPS["sources"]}
    connections = (await client.get("/v1/connections", headers=a)).json()
    assert [c["provider"] for c in connections] == ["strava"]
    assert connections[0]["status"] in ("connected", "syncing")
    sync = await client.get(f"/v1/connections/strava/syncs/{world.sync_id}", headers=a)
    assert sync.status_code == 200
    steps = await client.get("/v1/metrics/steps", params={"start": START, "end": END}, headers=a)
    assert sorted(p["value"] for p in steps.json()["points"]) == [13579, 24680]
    assert leaks(world, steps) != []  # the probe does see A's data where it belongs
    assert (await client.get("/v1/me", headers=a)).json() == world.a_user


async def test_preferences_through_the_gateway(client: httpx.AsyncClient, world: World) -> None:
    """Refusals pass through with the service's reason; the caller's choice is marked."""
    refused = await client.put(
        "/v1/preferences/overrides/steps", json={"sources": ["strava"]}, headers=world.a
    )
    assert refused.status_code == 422
    assert refused.json()["error"]["message"] == (
        "strava cannot provide steps; its activity metrics are workout"
    )
    sources = {s["id"]: s for s in (await client.get("/v1/sources", headers=world.a)).json()}
    assert sources["strava"]["metrics"] == ["workout"]
    categories = (await client.get("/v1/preferences", headers=world.a)).json()["categories"]
    assert {c: v["default"] for c, v in categories.items()} == {
        "activity": True,
        "sleep": False,
        "body": True,
        "heart": True,
        "recovery": True,
        "nutrition": True,
    }
