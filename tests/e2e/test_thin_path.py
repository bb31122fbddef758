"""The walking skeleton's path through every service, over HTTP and the real broker."""

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack, sign_up, wait_until_finished

pytestmark = pytest.mark.e2e

MAPPING = {
    "timestamp": "Date",
    "timezone": "Europe/Berlin",
    "columns": {
        "Steps": {"metric": "steps", "unit": "count"},
        "Weight (lb)": {"metric": "body_mass", "unit": "lb"},
    },
}
CSV = (
    "Date,Steps,Weight (lb),Notes\n"
    "2024-03-11,8123,180.0,first\n"
    "2024-03-12,9500,,no weigh-in\n"
    "2024-03-13,lots,181.2,typo\n"
    "2024-03-14,10001,179.5,\n"
)


async def upload(
    client: httpx.AsyncClient,
    auth: dict[str, str],
    body: str | bytes,
    mapping: Any = MAPPING,
    kind: str = "csv",
) -> httpx.Response:
    data = {"kind": kind}
    if mapping is not None:
        data["mapping"] = mapping if isinstance(mapping, str) else json.dumps(mapping)
    return await client.post(
        "/v1/imports", headers=auth, data=data, files={"file": ("steps.csv", body, "text/csv")}
    )


async def test_a_csv_upload_becomes_queryable_metrics_with_their_source(
    client: httpx.AsyncClient,
) -> None:
    auth = await sign_up(client)
    me = await client.get("/v1/me", headers=auth)
    assert me.status_code == 200 and me.json()["timezone"] == "UTC"

    accepted = await upload(client, auth, CSV)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "queued"

    finished = await wait_until_finished(client, auth, accepted.json()["id"])
    assert finished["status"] == "done"
    assert (
        finished["records_seen"],
        finished["records_imported"],
        finished["records_rejected"],
    ) == (4, 3, 1)
    assert finished["errors"] == [
        {"where": "row 4", "reason": "column 'Steps': 'lots' is not a number"}
    ]
    assert finished["bytes_read"] == finished["bytes_total"] == len(CSV.encode())

    steps = await client.get(
        "/v1/metrics/steps",
        params={"start": "2024-03-10", "end": "2024-03-20", "resolution": "day"},
        headers=auth,
    )
    assert steps.status_code == 200, steps.text
    assert steps.json()["unit"] == "count"
    assert [
        (p["date"], p["value"], p["source"], p["fallback"]) for p in steps.json()["points"]
    ] == [
        ("2024-03-11", 8123, "csv", False),
        ("2024-03-12", 9500, "csv", False),
        ("2024-03-14", 10001, "csv", False),
    ]
    assert steps.json()["points"][0]["start"] == "2024-03-11T00:00:00+01:00"

    weight = await client.get(
        "/v1/metrics/body_mass", params={"start": "2024-03-10", "end": "2024-03-20"}, headers=auth
    )
    assert [round(p["value"], 3) for p in weight.json()["points"]] == [81.647, 81.420]

    listed = await client.get("/v1/imports", headers=auth)
    assert [i["id"] for i in listed.json()] == [accepted.json()["id"]]


async def test_preferences_answer_with_the_defaults(client: httpx.AsyncClient) -> None:
    auth = await sign_up(client)
    answer = await client.get("/v1/preferences", headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body["categories"]) == {
        "activity",
        "sleep",
        "body",
        "heart",
        "recovery",
        "nutrition",
    }
    assert body["categories"]["body"]["sources"][0] == "withings"
    assert body["overrides"] == {}


async def test_the_same_file_imported_twice_counts_each_day_once(client: httpx.AsyncClient) -> None:
    auth = await sign_up(client)
    for _ in range(2):
        accepted = await upload(client, auth, CSV)
        assert (await wait_until_finished(client, auth, accepted.json()["id"]))["status"] == "done"
    steps = await client.get(
        "/v1/metrics/steps", params={"start": "2024-03-10", "end": "2024-03-20"}, headers=auth
    )
    assert sum(p["value"] for p in steps.json()["points"]) == 8123 + 9500 + 10001


class TestBadInputChangesNothing:
    async def test_unknown_kind(self, client: httpx.AsyncClient, stack: Stack) -> None:
        auth = await sign_up(client)
        answer = await upload(client, auth, CSV, kind="spreadsheet")
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "unknown_kind"
        assert "spreadsheet" in answer.json()["error"]["message"]
        await self._nothing_imported(client, auth, stack)

    async def test_a_mapping_naming_a_missing_column(
        self, client: httpx.AsyncClient, stack: Stack
    ) -> None:
        auth = await sign_up(client)
        mapping = {**MAPPING, "columns": {"Stepz": {"metric": "steps", "unit": "count"}}}
        answer = await upload(client, auth, CSV, mapping=mapping)
        assert answer.status_code == 422
        assert "Stepz" in answer.json()["error"]["message"]
        await self._nothing_imported(client, auth, stack)

    @pytest.mark.parametrize(
        ("mapping", "reason"),
        [
            (None, "needs a 'mapping'"),
            ("{not json", "not valid JSON"),
            (
                {"timestamp": "Date", "columns": {"Steps": {"metric": "stepz", "unit": "count"}}},
                "unknown metric",
            ),
            (
                {"timestamp": "Date", "columns": {"Steps": {"metric": "steps", "unit": "kg"}}},
                "does not measure steps",
            ),
        ],
    )
    async def test_an_invalid_mapping(
        self, client: httpx.AsyncClient, stack: Stack, mapping: Any, reason: str
    ) -> None:
        auth = await sign_up(client)
        answer = await upload(client, auth, CSV, mapping=mapping)
        assert answer.status_code == 422
        assert reason in answer.json()["error"]["message"]
        await self._nothing_imported(client, auth, stack)

    async def test_an_upload_over_the_size_limit(
        self, client: httpx.AsyncClient, stack: Stack
    ) -> None:
        auth = await sign_up(client)
        big = CSV + "2024-03-15,1,1,x\n" * 1_300_000
        answer = await upload(client, auth, big)
        assert answer.status_code == 413
        await self._nothing_imported(client, auth, stack)

    async def _nothing_imported(
        self, client: httpx.AsyncClient, auth: dict[str, str], stack: Stack
    ) -> None:
        listed = await client.get("/v1/imports", headers=auth)
        assert listed.json() == []
        incoming = stack.data_dir / "uploads" / ".incoming"
        assert not incoming.exists() or list(incoming.iterdir()) == []


class TestTokens:
    async def test_no_token(self, client: httpx.AsyncClient) -> None:
        answer = await client.get("/v1/imports")
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"

    async def test_forged_token(self, client: httpx.AsyncClient) -> None:
        auth = await sign_up(client)
        header, payload, _ = auth["authorization"].removeprefix("Bearer ").split(".")
        forged = f"{header}.{payload}.{'A' * 342}"
        answer = await client.get("/v1/imports", headers={"authorization": f"Bearer {forged}"})
        assert answer.status_code == 401

    async def test_garbage_token(self, client: httpx.AsyncClient) -> None:
        answer = await client.get("/v1/metrics/steps", headers={"authorization": "Bearer x.y.z"})
        assert answer.status_code == 401

    async def test_another_users_import_is_not_found(self, client: httpx.AsyncClient) -> None:
        alice, bob = await sign_up(client), await sign_up(client)
        accepted = await upload(client, alice, CSV)
        import_id = accepted.json()["id"]
        assert (await client.get(f"/v1/imports/{import_id}", headers=bob)).status_code == 404
        assert (await client.get(f"/v1/imports/{uuid.uuid4()}", headers=bob)).status_code == 404
        assert (await client.get("/v1/imports/not-a-uuid", headers=bob)).status_code == 404
        await wait_until_finished(client, alice, import_id)
        steps = await client.get(
            "/v1/metrics/steps", params={"start": "2024-03-10", "end": "2024-03-20"}, headers=bob
        )
        assert steps.json()["points"] == []
