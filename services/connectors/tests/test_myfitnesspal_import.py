"""MyFitnessPal exports cut into raw batches: the emailed zip or one of its CSVs, each file told
by its header, days kept whole, a cut or garbled line rejected alone, unsafe zips refused."""

import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

from healthmesh.common.apple_export import ArchiveLimits, UnsafeArchive
from healthmesh.common.events import ImportRequested, WeightUnit
from healthmesh.connectors.handlers import Importer
from healthmesh.connectors.importers.csv_file import UnreadableFile
from healthmesh.connectors.importers.diary_csv import DayBatch
from healthmesh.connectors.importers.myfitnesspal import read_batches
from healthmesh.connectors.settings import Settings

SAMPLES = (
    Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "myfitnesspal"
)
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the reference samples are not at {SAMPLES}"
)
RANGE = "2024-07-02-to-2026-03-02"
NUTRITION = f"Nutrition-Summary-{RANGE}.head.csv"
EXERCISE = f"Exercise-Summary-{RANGE}.head.csv"
MEASUREMENT = f"Measurement-Summary-{RANGE}.head.csv"
LIMITS = ArchiveLimits(max_uncompressed_bytes=10 * 1024**2, max_ratio=200)
HEADER = "Date,Meal,Calories,Fat (g),Carbohydrates (g),Protein (g),Note\r\n"


def batches(path: Path, max_rows: int = 500, max_bytes: int = 1 << 20) -> list[DayBatch]:
    return list(read_batches(path, LIMITS, max_rows, max_bytes))


def zipped(tmp_path: Path, entries: dict[str, bytes]) -> Path:
    path = tmp_path / f"File-Export-{RANGE}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return path


def write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "Nutrition-Summary.csv"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@needs_samples
def test_the_nutrition_sample_is_one_batch_of_its_four_meals() -> None:
    path = SAMPLES / NUTRITION
    [batch] = batches(path)
    assert batch.export.resource == "nutrition"
    assert [r["row"] for r in batch.rows] == [2, 3, 4, 5]
    first = batch.rows[0]["values"]
    # CRLF line endings: no "\r" left in the last column; every column kept (20).
    assert len(first) == 20 and first["Note"] == ""
    assert (first["Date"], first["Meal"], first["Calories"], first["Protein (g)"]) == (
        "2024-07-02",
        "Breakfast",
        "518.0",
        "27.6",
    )
    assert batch.bytes_read == path.stat().st_size


@needs_samples
def test_the_emailed_zip_gives_each_file_its_batches_in_archive_order(tmp_path: Path) -> None:
    folder = f"File-Export-{RANGE}/"
    path = zipped(
        tmp_path,
        {
            f"{folder}Nutrition-Summary-{RANGE}.csv": (SAMPLES / NUTRITION).read_bytes(),
            f"{folder}Measurement-Summary-{RANGE}.csv": (SAMPLES / MEASUREMENT).read_bytes(),
            f"{folder}Exercise-Summary-{RANGE}.csv": (SAMPLES / EXERCISE).read_bytes(),
            f"__MACOSX/{folder}._Exercise-Summary-{RANGE}.csv": b"\x00\x05\x16\x07junk",
        },
    )
    # Nutrition: 2024-07-02 only (4 meals); measurement: 4 days, one row each; exercise:
    # 07-02, 07-03 (2 rows), 07-04. Two rows a batch: cut where the next day starts.
    cut = batches(path, max_rows=2)
    assert [(b.export.resource, [r["row"] for r in b.rows]) for b in cut] == [
        ("nutrition", [2, 3, 4, 5]),
        ("measurement", [2, 3]),
        ("measurement", [4, 5]),
        ("exercise", [2, 3, 4]),
        ("exercise", [5]),
    ]
    # The literal quotes around an exercise name are the mapper's to strip.
    assert cut[3].rows[1]["values"]["Exercise"] == '"Walking, 3.5 mph, brisk pace"'
    assert [b.bytes_read for b in cut] == sorted(b.bytes_read for b in cut)
    assert cut[-1].bytes_read <= path.stat().st_size


@needs_samples
@pytest.mark.parametrize(
    ("name", "resource"), [(EXERCISE, "exercise"), (MEASUREMENT, "measurement")]
)
def test_each_csv_alone_is_told_by_its_header(name: str, resource: str) -> None:
    [batch] = batches(SAMPLES / name)
    assert batch.export.resource == resource and len(batch.rows) == 4


def test_a_zip_holding_another_csv_is_refused_naming_it(tmp_path: Path) -> None:
    path = zipped(tmp_path, {"steps.csv": b"Date,Steps\r\n2024-03-01,5\r\n"})
    with pytest.raises(UnreadableFile) as refused:
        batches(path)
    assert refused.value.where == "steps.csv, line 1"
    assert "not a MyFitnessPal export" in refused.value.reason


def test_a_zip_without_csv_files_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile) as refused:
        batches(zipped(tmp_path, {"readme.txt": b"hello"}))
    assert "no CSV file" in refused.value.reason


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("Nutrition-Summary.csv", HEADER.encode() + b" " * (3 * 1024**2), "zip bomb"),
        ("../../Nutrition-Summary.csv", HEADER.encode(), "outside the archive"),
    ],
)
def test_an_unsafe_zip_is_refused_before_anything_is_read(
    tmp_path: Path, name: str, data: bytes, reason: str
) -> None:
    with pytest.raises(UnsafeArchive, match=reason):
        batches(zipped(tmp_path, {name: data}))


def test_a_damaged_zip_member_stops_at_its_place_naming_the_file(tmp_path: Path) -> None:
    body = HEADER + "".join(f"2024-03-{d:02d},Lunch,{d}00,1,2,3,\r\n" for d in range(1, 29))
    path = zipped(tmp_path, {"Nutrition-Summary.csv": body.encode()})
    data = bytearray(path.read_bytes())
    data[80] ^= 0xFF  # a byte of the compressed data: the CRC check fails
    path.write_bytes(bytes(data))
    with pytest.raises(UnreadableFile) as stopped:
        batches(path)
    assert stopped.value.where.startswith("Nutrition-Summary.csv, line ")


def test_a_bad_and_a_cut_row_go_out_for_the_normalizer_to_reject_alone(tmp_path: Path) -> None:
    body = (
        HEADER
        + "2024-03-01,Breakfast,500.0,20.0,60.0,25.0,\r\n"
        + "2024-03-01,Lunch,lots,10.0,80.0,30.0,\r\n"
        + "2024-03-02,Dinner,800.0,30"
    )
    [batch] = batches(write(tmp_path, body))
    assert batch.rows[1]["values"]["Calories"] == "lots"
    assert batch.rows[2] == {
        "row": 4,
        "error": "4 cells where the header has 7: the line is cut short or garbled",
    }


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    cronometer = "Date,Energy (kcal),Protein (g),Completed\n2024-03-01,2000,100,true\n"
    with pytest.raises(UnreadableFile) as refused:
        batches(write(tmp_path, cronometer))
    assert refused.value.where == "line 1"
    assert "Nutrition-Summary; Exercise-Summary; Measurement-Summary" in refused.value.reason


# --- the unit of Measurement-Summary's `Weight` ------------------------------------------------

WEIGHTS = b"Date,Weight\r\n2024-07-02,180.0\r\n2024-07-04,179.5\r\n"
NUTRITION_DAY = HEADER.encode() + b"2024-07-02,Lunch,500.0,20.0,60.0,25.0,\r\n"


def exercises(load_column: str) -> bytes:
    """An Exercise-Summary as imperial (`Pounds`) or metric (`Kilograms`) accounts export it."""
    return (
        f"\ufeffDate,Exercise,Type,Exercise Calories,Exercise Minutes,Sets,Reps Per Set,"
        f"{load_column},Steps,Note\r\n2024-07-02,Bench Press,Strength,0.0,0,3,8,135,,\r\n"
    ).encode()


def payloads(tmp_path: Path, upload: Path, weight_unit: WeightUnit | None) -> list[dict[str, Any]]:
    """The raw payloads the importer publishes for `upload` (the batches as read; no broker or
    database is needed to build them)."""
    request = ImportRequested(
        import_id=uuid4(),
        user_id=uuid4(),
        kind="myfitnesspal",
        path=upload.name,
        timezone="America/Chicago",
        weight_unit=weight_unit,
        requested_at=datetime.now(UTC),
    )
    importer = Importer(
        cast(asyncpg.Pool, None), cast(KafkaBroker, None), Settings(upload_dir=tmp_path)
    )
    return [batch.payload for batch in importer._batches(request, upload)]


def measurement_payload(found: list[dict[str, Any]]) -> dict[str, Any]:
    [measured] = [p for p in found if p["file"] == "measurement"]
    assert [r["values"]["Weight"] for r in measured["rows"]] == ["180.0", "179.5"]
    return measured


def emailed(tmp_path: Path, load_column: str) -> Path:
    folder = f"File-Export-{RANGE}/"
    return zipped(
        tmp_path,
        {
            f"{folder}Nutrition-Summary-{RANGE}.csv": NUTRITION_DAY,
            f"{folder}Measurement-Summary-{RANGE}.csv": WEIGHTS,
            f"{folder}Exercise-Summary-{RANGE}.csv": exercises(load_column),
        },
    )


@pytest.mark.parametrize(("load_column", "unit"), [("Pounds", "lb"), ("Kilograms", "kg")])
def test_the_weight_unit_is_inferred_from_the_zips_exercise_summary(
    tmp_path: Path, load_column: str, unit: str
) -> None:
    found = payloads(tmp_path, emailed(tmp_path, load_column), None)
    measured = measurement_payload(found)
    assert (measured["weight_unit"], measured["weight_unit_inferred"]) == (unit, True)
    # only the measurement batches carry it: the other files have no unlabelled weight
    others = [p for p in found if p["file"] != "measurement"]
    assert [p["file"] for p in others] == ["nutrition", "exercise"]
    assert all(sorted(p) == ["file", "rows", "timezone"] for p in others)


def test_the_unit_given_at_upload_wins_and_is_not_inferred(tmp_path: Path) -> None:
    measured = measurement_payload(payloads(tmp_path, emailed(tmp_path, "Pounds"), "kg"))
    assert (measured["weight_unit"], measured["weight_unit_inferred"]) == ("kg", False)


def test_a_lone_measurement_csv_has_nothing_to_infer_the_unit_from(tmp_path: Path) -> None:
    upload = tmp_path / f"Measurement-Summary-{RANGE}.csv"
    upload.write_bytes(WEIGHTS)
    measured = measurement_payload(payloads(tmp_path, upload, None))
    assert sorted(measured) == ["file", "rows", "timezone"]
    given = measurement_payload(payloads(tmp_path, upload, "lb"))
    assert (given["weight_unit"], given["weight_unit_inferred"]) == ("lb", False)


def test_a_zip_without_an_exercise_summary_leaves_the_unit_out(tmp_path: Path) -> None:
    upload = zipped(tmp_path, {f"Measurement-Summary-{RANGE}.csv": WEIGHTS})
    assert sorted(measurement_payload(payloads(tmp_path, upload, None))) == [
        "file",
        "rows",
        "timezone",
    ]


@needs_samples
def test_the_real_metric_accounts_zip_says_kg(tmp_path: Path) -> None:
    upload = zipped(
        tmp_path,
        {
            f"Measurement-Summary-{RANGE}.csv": (SAMPLES / MEASUREMENT).read_bytes(),
            f"Exercise-Summary-{RANGE}.csv": (SAMPLES / EXERCISE).read_bytes(),  # `Kilograms`
        },
    )
    found = [p for p in payloads(tmp_path, upload, None) if p["file"] == "measurement"]
    assert [(p["weight_unit"], p["weight_unit_inferred"]) for p in found] == [("kg", True)]
