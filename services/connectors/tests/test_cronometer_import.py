"""Cronometer CSV exports cut into raw batches: which export a file is told by its header, a day
never split across batches, rows as read with their line numbers, a cut or garbled line
rejected alone, what was read before an unreadable place kept."""

from pathlib import Path

import pytest

from healthmesh.connectors.importers.cronometer import read_batches
from healthmesh.connectors.importers.csv_file import UnreadableFile
from healthmesh.connectors.importers.diary_csv import DayBatch

SAMPLES = (
    Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "samples" / "cronometer"
)
needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the reference samples are not at {SAMPLES}"
)
SERVINGS_HEADER = "Day,Time,Group,Food Name,Amount,Energy (kcal),Protein (g),Category\n"


def write(tmp_path: Path, content: str | bytes, name: str = "export.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def batches(path: Path, max_rows: int = 500, max_bytes: int = 1 << 20) -> list[DayBatch]:
    return list(read_batches(path, max_rows, max_bytes))


def serving(day: str, food: str, kcal: str = "100") -> str:
    return f'{day},8:00 AM,"Breakfast","{food}","1 cup",{kcal},5,"Dairy"\n'


@needs_samples
def test_the_daily_summary_sample_is_one_row_with_every_column() -> None:
    path = SAMPLES / "dailysummary.csv"
    [batch] = batches(path)
    assert batch.export.resource == "dailysummary"
    [row] = batch.rows
    assert row["row"] == 2  # the header is line 1
    values = row["values"]
    # Every column of the header is kept, vitamins and "Completed" included (54 of them).
    assert len(values) == 54
    assert (values["Date"], values["Energy (kcal)"], values["Protein (g)"]) == (
        "2025-03-06",
        "1477.23",
        "102.79",
    )
    assert (values["B12 (Cobalamin) (µg)"], values["Completed"]) == ("7.86", "false")
    assert batch.bytes_read == path.stat().st_size


@needs_samples
@pytest.mark.parametrize(
    ("name", "resource", "lines", "first"),
    [
        ("dailysummary.variant_b.csv", "dailysummary", [2, 3], ("Date", "2023-09-17")),
        ("servings.csv", "servings", [2, 3], ("Food Name", "Black Pepper, Ground")),
    ],
)
def test_the_other_samples_are_recognised_by_their_header(
    name: str, resource: str, lines: list[int], first: tuple[str, str]
) -> None:
    [batch] = batches(SAMPLES / name)
    assert batch.export.resource == resource
    assert [r["row"] for r in batch.rows] == lines
    assert batch.rows[0]["values"][first[0]] == first[1]


@pytest.mark.parametrize(
    ("header", "resource"),
    [
        ("Date,Energy (kJ),Protein (g),Completed", "dailysummary"),
        ("Day,Time,Group,Exercise,Minutes,Calories Burned", "exercises"),
        ("Day,Time,Group,Metric,Unit,Amount", "biometrics"),
        ("\ufeffDay,Time,Group,Food Name,Amount,Energy (kcal),Category", "servings"),
    ],
)
def test_each_export_is_told_by_its_header(tmp_path: Path, header: str, resource: str) -> None:
    [batch] = batches(write(tmp_path, f"{header}\n2024-03-01{',' * header.count(',')}\n"))
    assert batch.export.resource == resource


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("Day,Time,Group,Note\n2024-03-01,,,hello\n", "not a Cronometer export"),
        ("Date,Steps\n2024-03-01,5\n", "Daily Nutrition (dailysummary.csv)"),
        ("", "empty"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00\xff\xfe junk", "not UTF-8"),
    ],
    ids=["notes export", "another csv", "empty", "a zip"],
)
def test_a_file_that_is_no_cronometer_export_is_refused(
    tmp_path: Path, content: str | bytes, reason: str
) -> None:
    with pytest.raises(UnreadableFile) as refused:
        batches(write(tmp_path, content))
    assert refused.value.where == "line 1" and reason in refused.value.reason


def test_a_batch_is_cut_only_where_a_new_day_starts(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVINGS_HEADER
        + serving("2024-03-01", "Milk")
        + serving("2024-03-01", "Oats")
        + serving("2024-03-01", "Honey")
        + serving("2024-03-02", "Eggs")
        + serving("2024-03-02", "Toast")
        + serving("2024-03-03", "Tea"),
    )
    # At most 2 rows a batch, but the 3 rows of March 1 stay together: the batch is full only
    # once the next day starts.
    cut = batches(path, max_rows=2)
    assert [[r["row"] for r in b.rows] for b in cut] == [[2, 3, 4], [5, 6], [7]]
    assert [b.bytes_read for b in cut] == sorted(b.bytes_read for b in cut)
    assert cut[-1].bytes_read == path.stat().st_size
    # Cut by size too (each row is ~150 bytes as JSON): still whole days.
    by_size = batches(path, max_bytes=1)
    assert [len(b.rows) for b in by_size] == [3, 2, 1]


def test_spreadsheet_dates_group_their_days_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVINGS_HEADER
        + serving("3/1/2024", "Milk")
        + serving("2024-03-01", "Oats")
        + serving("3/2/2024", "Eggs"),
    )
    assert [len(b.rows) for b in batches(path, max_rows=1)] == [2, 1]


def test_a_day_seen_again_after_its_batch_went_out_is_rejected_alone(tmp_path: Path) -> None:
    body = (
        SERVINGS_HEADER
        + serving("2024-03-01", "Milk")
        + serving("2024-03-02", "Eggs")
        + serving("2024-03-01", "Late snack")
    )
    path = write(tmp_path, body)
    # Within one batch, the day's rows still sum together: nothing to reject.
    [whole] = batches(path)
    assert [("values" in r) for r in whole.rows] == [True, True, True]
    # Cut after each day: March 1 already went out when line 4 comes.
    cut = batches(path, max_rows=1)
    assert [[r["row"] for r in b.rows] for b in cut] == [[2], [3], [4]]
    assert cut[2].rows == [
        {
            "row": 4,
            "error": "rows of 2024-03-01 are not together in the file and the earlier ones were "
            "already imported, so this one is left out: sort the file by date",
        }
    ]


def test_a_bad_row_goes_out_as_read_for_the_normalizer_to_reject(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        SERVINGS_HEADER
        + serving("2024-03-01", "Milk", kcal="lots")
        + serving("yesterday", "Oats")
        + serving("2024-03-02", "Eggs"),
    )
    [batch] = batches(path)
    assert batch.rows[0]["values"]["Energy (kcal)"] == "lots"
    assert batch.rows[1] == {
        "row": 3,
        "values": {
            "Day": "yesterday",
            "Time": "8:00 AM",
            "Group": "Breakfast",
            "Food Name": "Oats",
            "Amount": "1 cup",
            "Energy (kcal)": "100",
            "Protein (g)": "5",
            "Category": "Dairy",
        },
    }


def test_a_truncated_file_rejects_its_cut_line_alone(tmp_path: Path) -> None:
    header = "Date,Energy (kcal),Protein (g),Fat (g),Completed\n"
    cut_mid_row = header + "2024-03-01,2000,100,70,true\n2024-03-02,1800,9"
    [batch] = batches(write(tmp_path, cut_mid_row))
    assert batch.rows == [
        {
            "row": 2,
            "values": {
                "Date": "2024-03-01",
                "Energy (kcal)": "2000",
                "Protein (g)": "100",
                "Fat (g)": "70",
                "Completed": "true",
            },
        },
        {"row": 3, "error": "3 cells where the header has 5: the line is cut short or garbled"},
    ]
    # Cut inside a quoted field: the rest of the file is that one field.
    cut_in_quotes = SERVINGS_HEADER + serving("2024-03-01", "Milk") + '2024-03-01,9:00 AM,"Bre'
    [batch] = batches(write(tmp_path, cut_in_quotes, "servings.csv"))
    assert [r["row"] for r in batch.rows] == [2, 3] and "error" in batch.rows[1]
    # A line with more cells than the header (an unquoted comma) is garbled too.
    extra = header + "2024-03-01,2000,100,70,true,oops\n2024-03-02,1800,90,60,true,\n"
    [batch] = batches(write(tmp_path, extra, "extra.csv"))
    assert "error" in batch.rows[0] and "values" in batch.rows[1]  # a blank extra cell is fine


def test_a_garbled_file_stops_at_its_line_keeping_what_came_before(tmp_path: Path) -> None:
    body = (
        SERVINGS_HEADER.encode()
        + serving("2024-03-01", "Milk").encode()
        + serving("2024-03-02", "Eggs").encode()
        + b"2024-03-03,\xff\xfe\x00garbage\n"
        + serving("2024-03-04", "Tea").encode()
    )
    read = read_batches(write(tmp_path, body), 1, 1 << 20)
    kept = [next(read), next(read)]
    assert [[r["row"] for r in b.rows] for b in kept] == [[2], [3]]
    with pytest.raises(UnreadableFile) as stopped:
        next(read)
    assert stopped.value.where == "line 4" and "not UTF-8" in stopped.value.reason
