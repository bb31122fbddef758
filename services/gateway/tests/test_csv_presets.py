"""CSV presets (saved column mappings, scoped to their owner), imports by preset, and the preview
of a file's first rows: over the real gateway app, its PostgreSQL schema and the broker."""

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import orjson
import pytest
from fastapi import FastAPI

from healthmesh.common.events import CsvMapping
from healthmesh.gateway.csv_mappings import preview_rows

PostImport = Callable[..., Awaitable[tuple[str, dict[str, Any]]]]
"""conftest.post_import: posts an import, answers its id and its `imports.requested` message."""

STEPS_AND_WEIGHT = {
    "timestamp": "Date",
    "timezone": "Europe/Berlin",
    "columns": {
        "Steps": {"metric": "steps", "unit": "count"},
        "Weight (lb)": {"metric": "body_mass", "unit": "lb"},
    },
}
STORED = {**STEPS_AND_WEIGHT, "format": None}
"""The mapping as saved: validated, every field spelled out."""
ONLY_STEPS = {"timestamp": "Day", "columns": {"Steps": {"metric": "steps", "unit": "count"}}}

CSV = (
    b"Date,Steps,Weight (lb)\n"
    b"2024-03-11,8123,180\n"
    b"yesterday,5,\n"
    b"\n"
    b"2024-03-12T07:15:00-07:00,40,\n"
    b"2024-03-13,,181.2\n"
)


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


async def imports_stored(app: FastAPI) -> int:
    count: int = await app.state.pool.fetchval("SELECT count(*) FROM gateway.imports")
    return count


# --- presets --------------------------------------------------------------------------------


@pytest.mark.integration
async def test_a_preset_is_saved_listed_replaced_and_deleted(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    saved = await client.put(
        "/v1/csv-presets/Withings export (v2)", json=STEPS_AND_WEIGHT, headers=ada
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["name"] == "Withings export (v2)"
    assert saved.json()["mapping"] == STORED

    listed = await client.get("/v1/csv-presets", headers=ada)
    assert [(p["name"], p["mapping"]) for p in listed.json()] == [("Withings export (v2)", STORED)]
    one = await client.get("/v1/csv-presets/Withings export (v2)", headers=ada)
    assert one.json() == saved.json()

    replaced = await client.put(
        "/v1/csv-presets/Withings export (v2)", json=ONLY_STEPS, headers=ada
    )
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["created_at"] == saved.json()["created_at"]
    listed = await client.get("/v1/csv-presets", headers=ada)
    assert [p["mapping"]["timestamp"] for p in listed.json()] == ["Day"]

    deleted = await client.delete("/v1/csv-presets/Withings export (v2)", headers=ada)
    assert deleted.status_code == 204
    gone = await client.get("/v1/csv-presets/Withings export (v2)", headers=ada)
    assert gone.status_code == 404
    again = await client.delete("/v1/csv-presets/Withings export (v2)", headers=ada)
    assert again.status_code == 404
    assert (await client.get("/v1/csv-presets", headers=ada)).json() == []


@pytest.mark.integration
@pytest.mark.parametrize(
    ("name", "mapping", "reason"),
    [
        (
            "steps",
            {"timestamp": "Date", "columns": {"Steps": {"metric": "stepz", "unit": "count"}}},
            "unknown metric 'stepz'",
        ),
        (
            "steps",
            {"timestamp": "Date", "columns": {"Steps": {"metric": "steps", "unit": "kg"}}},
            "column 'Steps': unit 'kg' does not measure steps",
        ),
        ("steps", {**ONLY_STEPS, "timezone": "Mars/Olympus"}, "unknown time zone 'Mars/Olympus'"),
        ("steps", {**ONLY_STEPS, "timezone": "localtime"}, "unknown time zone 'localtime'"),
        ("steps", {"timestamp": "Date", "columns": {}}, "mapping columns"),
        ("steps", {"columns": ONLY_STEPS["columns"]}, "mapping timestamp: Field required"),
        ("steps*", ONLY_STEPS, "name"),
    ],
    ids=[
        "unknown-metric",
        "wrong-unit-family",
        "unknown-zone",
        "host-only-zone",
        "no-columns",
        "no-time",
        "name",
    ],
)
async def test_a_bad_preset_is_422_with_the_reason_and_nothing_is_saved(
    client: httpx.AsyncClient,
    ada: dict[str, str],
    name: str,
    mapping: dict[str, Any],
    reason: str,
) -> None:
    answer = await client.put(f"/v1/csv-presets/{name}", json=mapping, headers=ada)
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["error"]["message"]
    assert (await client.get("/v1/csv-presets", headers=ada)).json() == []


@pytest.mark.integration
async def test_presets_are_seen_and_changed_only_by_their_owner(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    await client.put("/v1/csv-presets/daily", json=STEPS_AND_WEIGHT, headers=ada)

    assert (await client.get("/v1/csv-presets", headers=bob)).json() == []
    assert (await client.get("/v1/csv-presets/daily", headers=bob)).status_code == 404
    assert (await client.delete("/v1/csv-presets/daily", headers=bob)).status_code == 404
    bobs = await client.put("/v1/csv-presets/daily", json=ONLY_STEPS, headers=bob)
    assert bobs.status_code == 200, bobs.text

    adas = await client.get("/v1/csv-presets/daily", headers=ada)
    assert adas.json()["mapping"] == STORED
    assert (await client.get("/v1/csv-presets/daily", headers=bob)).json()["mapping"][
        "timestamp"
    ] == "Day"
    assert (await client.delete("/v1/csv-presets/daily", headers=bob)).status_code == 204
    assert (await client.get("/v1/csv-presets/daily", headers=ada)).status_code == 200
    assert (await client.get("/v1/csv-presets")).status_code == 401


# --- imports by preset ----------------------------------------------------------------------


@pytest.mark.integration
async def test_an_import_by_preset_queues_the_presets_mapping(
    app: FastAPI,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    post_import: PostImport,
) -> None:
    await client.put("/v1/csv-presets/daily", json=STEPS_AND_WEIGHT, headers=ada)
    import_id, request = await post_import(
        data={"kind": "csv", "preset": "daily"},
        files={"file": ("steps.csv", CSV, "text/csv")},
        headers=ada,
    )
    assert request["mapping"] == STORED
    stored = await app.state.pool.fetchval(
        "SELECT mapping FROM gateway.imports WHERE id = $1", UUID(import_id)
    )
    assert stored == STORED


@pytest.mark.integration
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"kind": "csv", "preset": "nope"}, "unknown_preset"),
        (
            {"kind": "csv", "preset": "daily", "mapping": orjson.dumps(ONLY_STEPS).decode()},
            "invalid_request",
        ),
        ({"kind": "csv"}, "invalid_request"),
    ],
    ids=["unknown", "both", "neither"],
)
async def test_an_import_without_one_usable_mapping_is_422_and_nothing_is_stored(
    app: FastAPI,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    tmp_path: Path,
    fields: dict[str, Any],
    code: str,
) -> None:
    await client.put("/v1/csv-presets/daily", json=STEPS_AND_WEIGHT, headers=ada)
    answer = await client.post(
        "/v1/imports", data=fields, files={"file": ("s.csv", CSV, "text/csv")}, headers=ada
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == code
    assert await imports_stored(app) == 0
    assert files_under(tmp_path / "uploads") == []


@pytest.mark.integration
async def test_another_users_preset_cannot_be_imported_with(
    client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    await client.put("/v1/csv-presets/adas", json=STEPS_AND_WEIGHT, headers=ada)
    answer = await client.post(
        "/v1/imports",
        data={"kind": "csv", "preset": "adas"},
        files={"file": ("s.csv", CSV, "text/csv")},
        headers=bob,
    )
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "unknown_preset"


# --- preview ----------------------------------------------------------------------------------


@pytest.mark.integration
async def test_the_preview_shows_each_row_as_it_would_be_imported_and_stores_nothing(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str], tmp_path: Path
) -> None:
    answer = await client.post(
        "/v1/imports/preview",
        data={"mapping": orjson.dumps(STEPS_AND_WEIGHT).decode()},
        files={"file": ("steps.csv", CSV, "text/csv")},
        headers=ada,
    )
    assert answer.status_code == 200, answer.text
    # Berlin is UTC+1 until 31 March: the local day 2024-03-11 is 2024-03-10T23:00Z to
    # 2024-03-11T23:00Z. 180 lb x 0.45359237 kg/lb = 81.6466266 kg; 181.2 lb = 82.190937444 kg.
    # The blank line 4 is skipped, and line numbers are the file's, as the import reports them.
    berlin_11 = ("2024-03-10T23:00:00+00:00", "2024-03-11T23:00:00+00:00", 3600)
    berlin_13 = ("2024-03-12T23:00:00+00:00", "2024-03-13T23:00:00+00:00", 3600)
    # 07:15 at -07:00 is 14:15 UTC; the offset in the data wins over the mapping's zone.
    seattle = ("2024-03-12T14:15:00+00:00", "2024-03-12T14:15:00+00:00", -25200)

    def sample(metric: str, value: float, unit: str, when: tuple[str, str, int]) -> dict[str, Any]:
        return {
            "metric": metric,
            "value": pytest.approx(value),
            "unit": unit,
            "start": when[0],
            "end": when[1],
            "utc_offset_s": when[2],
        }

    assert answer.json() == {
        "rows": [
            {
                "row": 2,
                "samples": [
                    sample("steps", 8123, "count", berlin_11),
                    sample("body_mass", 81.6466266, "kg", berlin_11),
                ],
            },
            {
                "row": 3,
                "reason": "time 'yesterday' is not ISO 8601 (and the mapping gives no format)",
            },
            {"row": 5, "samples": [sample("steps", 40, "count", seattle)]},
            {"row": 6, "samples": [sample("body_mass", 82.190937444, "kg", berlin_13)]},
        ]
    }
    assert await imports_stored(app) == 0
    assert files_under(tmp_path / "uploads") == []


@pytest.mark.integration
async def test_the_preview_takes_a_preset_and_a_row_limit(
    client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    await client.put("/v1/csv-presets/daily", json=STEPS_AND_WEIGHT, headers=ada)
    answer = await client.post(
        "/v1/imports/preview?rows=2",
        data={"preset": "daily"},
        files={"file": ("steps.csv", CSV, "text/csv")},
        headers=ada,
    )
    assert answer.status_code == 200, answer.text
    assert [row["row"] for row in answer.json()["rows"]] == [2, 3]


@pytest.mark.integration
@pytest.mark.parametrize(
    ("mapping", "reason"),
    [
        (
            {"timestamp": "Date", "columns": {"Steps": {"metric": "steps", "unit": "lb"}}},
            "column 'Steps': unit 'lb' does not measure steps (canonical unit 'count')",
        ),
        (
            {"timestamp": "Date", "columns": {"Weight": {"metric": "body_mass", "unit": "kg"}}},
            "the mapping names columns the file does not have: Weight",
        ),
    ],
    ids=["unit-of-the-wrong-family", "column-not-in-the-file"],
)
async def test_a_preview_with_an_unusable_mapping_is_422_with_the_reason(
    client: httpx.AsyncClient, ada: dict[str, str], mapping: dict[str, Any], reason: str
) -> None:
    answer = await client.post(
        "/v1/imports/preview",
        data={"mapping": orjson.dumps(mapping).decode()},
        files={"file": ("steps.csv", CSV, "text/csv")},
        headers=ada,
    )
    assert answer.status_code == 422, answer.text
    assert reason in answer.json()["error"]["message"]


ROW_BYTES = 20_000
HEADER = b"Date,Steps,Note\n"  # 16 bytes


def long_row() -> bytes:
    """One 20,000-byte row: 16 bytes of data, a 19,983-character note, a newline."""
    return b"2024-03-01,1000," + b"x" * (ROW_BYTES - 17) + b"\n"


@pytest.mark.integration
async def test_the_preview_of_a_huge_file_reads_only_its_head(
    client: httpx.AsyncClient, ada: dict[str, str], tmp_path: Path
) -> None:
    """A 20 MB upload streamed in chunks: the preview keeps its first MiB only, so with room
    for 100 rows it shows the 52 complete rows that fit in it:
    (1,048,576 - 16 header bytes) / 20,000 = 52.4; the 53rd row, cut, is left out."""
    boundary = b"b0undary"
    rows = 1000  # 20,000,016 bytes

    async def body() -> AsyncIterator[bytes]:
        yield b"--" + boundary + b'\r\nContent-Disposition: form-data; name="mapping"\r\n\r\n'
        yield orjson.dumps({**ONLY_STEPS, "timestamp": "Date"}) + b"\r\n"
        yield b"--" + boundary + b"\r\n"
        yield b'Content-Disposition: form-data; name="file"; filename="big.csv"\r\n\r\n'
        yield HEADER
        for _ in range(rows):
            yield long_row()
        yield b"\r\n--" + boundary + b"--\r\n"

    answer = await client.post(
        "/v1/imports/preview?rows=100",
        content=body(),
        headers={**ada, "content-type": f"multipart/form-data; boundary={boundary.decode()}"},
    )
    assert answer.status_code == 200, answer.text
    shown = answer.json()["rows"]
    assert [row["row"] for row in shown] == list(range(2, 54))
    assert {row["samples"][0]["value"] for row in shown} == {1000}
    assert files_under(tmp_path / "uploads") == []


def test_the_preview_stops_where_the_import_would_at_a_line_that_is_not_utf8(
    tmp_path: Path,
) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbfDay,Steps\n2024-03-01,5\n2024-03-02,\xff\n2024-03-03,7\n")
    mapping = CsvMapping.model_validate(ONLY_STEPS)
    shown = preview_rows(path, mapping, 20, cut=False)
    assert shown == [
        {
            "row": 2,
            "samples": [
                {
                    "metric": "steps",
                    "value": 5.0,
                    "unit": "count",
                    "start": "2024-03-01T00:00:00+00:00",
                    "end": "2024-03-02T00:00:00+00:00",
                    "utc_offset_s": 0,
                }
            ],
        },
        {
            "row": 3,
            "reason": "not UTF-8 text (invalid start byte); the import stops at this line",
        },
    ]
