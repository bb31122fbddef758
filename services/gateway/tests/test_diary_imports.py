"""Cronometer and MyFitnessPal uploads: what is refused before anything is queued (not one of
the source's exports, an unsafe zip, an unknown timezone), and the profile's zone as default."""

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from healthmesh.common.apple_export import ArchiveLimits
from healthmesh.common.http import ApiError
from healthmesh.gateway.imports import check_diary_export, check_timezone, profile_timezone

ZipOf = Callable[[dict[str, bytes]], Path]
"""conftest.zip_of: writes a zip of `{name: bytes}` entries, a new file each call."""
PostImport = Callable[..., Awaitable[tuple[str, dict[str, Any]]]]
"""conftest.post_import: posts an import, answers its id and its `imports.requested` message."""

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples"
needs_samples = pytest.mark.skipif(
    not REFERENCE.is_dir(), reason=f"the reference samples are not at {REFERENCE}"
)
LIMITS = ArchiveLimits(max_uncompressed_bytes=10 * 1024**2, max_ratio=200)
NUTRITION = b"Date,Meal,Calories,Fat (g),Protein (g),Note\r\n2024-03-01,Lunch,500.0,20.0,30.0,\r\n"


def write(tmp_path: Path, data: bytes, name: str = "upload") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def refusal(path: Path, kind: str) -> ApiError:
    with pytest.raises(ApiError) as refused:
        check_diary_export(path, kind, LIMITS)
    return refused.value


@needs_samples
@pytest.mark.parametrize(
    ("kind", "folder"), [("cronometer", "cronometer"), ("myfitnesspal", "myfitnesspal")]
)
def test_every_sample_export_is_accepted(kind: str, folder: str) -> None:
    for sample in sorted((REFERENCE / folder).iterdir()):
        check_diary_export(sample, kind, LIMITS)


@needs_samples
def test_the_myfitnesspal_zip_is_accepted(zip_of: ZipOf) -> None:
    samples = REFERENCE / "myfitnesspal"
    entries = {f"File-Export/{p.name}": p.read_bytes() for p in samples.glob("*-Summary-*.csv")}
    entries["__MACOSX/File-Export/._x.csv"] = b"\x00\x05\x16\x07"
    check_diary_export(zip_of(entries), "myfitnesspal", LIMITS)


@pytest.mark.parametrize(
    ("kind", "data", "words"),
    [
        ("cronometer", b"Date,Steps\n2024-03-01,5\n", "not a Cronometer export"),
        ("cronometer", b"Day,Time,Group,Note\n2024-03-01,,,hi\n", "Daily Nutrition"),
        ("cronometer", NUTRITION, "Biometrics (biometrics.csv)"),
        ("myfitnesspal", b"Date,Energy (kcal),Completed\n2024-03-01,2000,true\n", "Nutrition-"),
        ("myfitnesspal", b"Date,Steps\n2024-03-01,5\n", "not a MyFitnessPal export"),
        ("myfitnesspal", b"\xff\xfeD\x00a\x00t\x00e\x00\n", "not UTF-8"),
    ],
    ids=["csv", "cronometer notes", "mfp as cronometer", "cronometer as mfp", "csv", "utf-16"],
)
def test_a_file_that_is_not_an_export_of_the_kind_is_415(
    tmp_path: Path, kind: str, data: bytes, words: str
) -> None:
    error = refusal(write(tmp_path, data), kind)
    assert (error.status, error.code) == (415, "unsupported_media_type")
    assert words in error.message


def test_an_empty_file_is_422(tmp_path: Path) -> None:
    error = refusal(write(tmp_path, b"\n"), "cronometer")
    assert (error.status, error.code) == (422, "unreadable_file")


def test_a_zip_is_only_myfitnesspals(zip_of: ZipOf) -> None:
    path = zip_of({"Nutrition-Summary.csv": NUTRITION})
    check_diary_export(path, "myfitnesspal", LIMITS)
    error = refusal(path, "cronometer")
    assert error.status == 415 and "zip archive" in error.message


def test_a_zip_with_another_csv_is_refused_naming_it(zip_of: ZipOf) -> None:
    path = zip_of({"Nutrition-Summary.csv": NUTRITION, "steps.csv": b"Date,Steps\n2024-03-01,5\n"})
    error = refusal(path, "myfitnesspal")
    assert error.status == 415 and error.message.startswith("steps.csv: not a MyFitnessPal")


@pytest.mark.parametrize(
    ("entries", "words"),
    [
        ({"Nutrition-Summary.csv": NUTRITION + b" " * (3 * 1024**2)}, "zip bomb"),
        ({"../Nutrition-Summary.csv": NUTRITION}, "outside the archive"),
    ],
)
def test_an_unsafe_zip_is_422(zip_of: ZipOf, entries: dict[str, bytes], words: str) -> None:
    error = refusal(zip_of(entries), "myfitnesspal")
    assert (error.status, error.code) == (422, "unsafe_archive") and words in error.message


def test_a_zip_without_csv_files_is_415(zip_of: ZipOf) -> None:
    error = refusal(zip_of({"readme.txt": b"hi"}), "myfitnesspal")
    assert error.status == 415 and "no CSV file" in error.message


def test_a_known_timezone_is_kept_and_none_means_the_default() -> None:
    assert check_timezone("cronometer", "Europe/Berlin") == "Europe/Berlin"
    assert check_timezone("myfitnesspal", None) is None
    assert check_timezone("csv", None) is None


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "europe/berlin", "America", "../etc/passwd", "", "localtime"]
)
def test_an_unknown_timezone_is_422(name: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_timezone("cronometer", name)
    assert (refused.value.status, refused.value.code) == (422, "invalid_timezone")


def test_a_timezone_for_a_kind_that_has_none_is_422() -> None:
    with pytest.raises(ApiError) as refused:
        check_timezone("csv", "Europe/Berlin")
    assert refused.value.code == "invalid_request" and "mapping" in refused.value.message


async def test_the_profile_timezone_is_asked_of_auth_as_the_caller() -> None:
    seen: list[httpx.Request] = []

    def auth(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "u", "email": "a@b.c", "timezone": "Asia/Tokyo"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(auth)) as http:
        zone = await profile_timezone(http, "http://auth:8001/", "Bearer t0ken")
    assert zone == "Asia/Tokyo"
    assert [(str(r.url), r.headers["authorization"]) for r in seen] == [
        ("http://auth:8001/v1/me", "Bearer t0ken")
    ]


@pytest.mark.parametrize("status", [500, 401])
async def test_no_profile_answer_is_503_saying_what_to_send(status: int) -> None:
    def auth(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json={"error": {"code": "x"}})

    async with httpx.AsyncClient(transport=httpx.MockTransport(auth)) as http:
        with pytest.raises(ApiError) as refused:
            await profile_timezone(http, "http://auth:8001", "Bearer t0ken")
    assert refused.value.status == 503 and "'timezone'" in refused.value.message


# --- weight_unit: the unit of MyFitnessPal's `Weight` column -----------------------------------

WEIGHTS = b"Date,Weight\r\n2024-07-02,180.0\r\n"
CRONOMETER = b"Date,Energy (kcal),Protein (g),Completed\n2024-03-01,2000,100,true\n"


def files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.integration
async def test_a_given_weight_unit_reaches_the_queued_import_request(
    ada: dict[str, str], post_import: PostImport
) -> None:
    _, request = await post_import(
        data={"kind": "myfitnesspal", "timezone": "America/Chicago", "weight_unit": "lb"},
        files={"file": ("Measurement-Summary.csv", WEIGHTS, "text/csv")},
        headers=ada,
    )
    assert (request["kind"], request["weight_unit"]) == ("myfitnesspal", "lb")
    _, without = await post_import(
        data={"kind": "myfitnesspal", "timezone": "America/Chicago"},
        files={"file": ("Measurement-Summary.csv", WEIGHTS, "text/csv")},
        headers=ada,
    )
    assert without["weight_unit"] is None  # the importer infers it, or the mapper assumes kg


@pytest.mark.integration
@pytest.mark.parametrize(
    ("kind", "data", "unit", "reason"),
    [
        ("myfitnesspal", WEIGHTS, "stone", "unknown weight_unit 'stone': expected one of kg, lb"),
        ("myfitnesspal", WEIGHTS, "pounds", "unknown weight_unit 'pounds'"),
        ("myfitnesspal", WEIGHTS, "", "unknown weight_unit ''"),
        ("cronometer", CRONOMETER, "kg", "weight_unit is for myfitnesspal imports"),
    ],
    ids=["stone", "pounds", "empty", "cronometer"],
)
async def test_a_bad_weight_unit_is_422_and_nothing_is_queued(
    app: FastAPI,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    tmp_path: Path,
    kind: str,
    data: bytes,
    unit: str,
    reason: str,
) -> None:
    answer = await client.post(
        "/v1/imports",
        data={"kind": kind, "timezone": "America/Chicago", "weight_unit": unit},
        files={"file": ("export.csv", data, "text/csv")},
        headers=ada,
    )
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "invalid_request" and reason in error["message"]
    # the import row and its outbox message are written in one transaction: neither was
    assert await app.state.pool.fetchval("SELECT count(*) FROM gateway.imports") == 0
    assert files_under(tmp_path / "uploads") == []
