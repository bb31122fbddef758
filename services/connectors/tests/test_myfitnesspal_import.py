"""MyFitnessPal exports cut into raw batches: the emailed zip or one of its CSVs, each file told
by its header, days kept whole, a cut or garbled line rejected alone, unsafe zips refused."""

import zipfile
from pathlib import Path

import pytest

from healthmesh.common.apple_export import ArchiveLimits, UnsafeArchive
from healthmesh.connectors.importers.csv_file import UnreadableFile
from healthmesh.connectors.importers.diary_csv import DayBatch
from healthmesh.connectors.importers.myfitnesspal import read_batches

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
