"""Reading CSV files into raw batches: streaming, batch limits, line numbers, unreadable files."""

from pathlib import Path

import pytest

from healthmesh.common.events import CsvMapping
from healthmesh.connectors.importers.csv_file import UnreadableFile, read_batches

MAPPING = CsvMapping.model_validate(
    {"timestamp": "Date", "columns": {"Steps": {"metric": "steps", "unit": "count"}}}
)


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "f.csv"
    path.write_bytes(content)
    return path


def test_rows_keep_their_line_numbers_and_only_mapped_columns(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfDate,Notes,Steps\n2024-03-01,hi,5\n\n2024-03-02,,6\n")
    [batch] = list(read_batches(path, MAPPING, max_rows=100, max_bytes=10_000))
    assert batch.rows == [
        {"row": 2, "values": {"Date": "2024-03-01", "Steps": "5"}},
        {"row": 4, "values": {"Date": "2024-03-02", "Steps": "6"}},
    ]
    assert batch.bytes_read == path.stat().st_size


def test_batches_are_cut_by_rows_and_by_bytes(tmp_path: Path) -> None:
    body = b"Date,Steps\n" + b"".join(b"2024-03-01,%d\n" % i for i in range(1050))
    path = write(tmp_path, body)
    by_rows = [len(b.rows) for b in read_batches(path, MAPPING, max_rows=500, max_bytes=10**9)]
    assert by_rows == [500, 500, 50]
    by_bytes = list(read_batches(path, MAPPING, max_rows=10**9, max_bytes=4096))
    assert sum(len(b.rows) for b in by_bytes) == 1050 and len(by_bytes) > 5
    assert [b.bytes_read for b in by_bytes] == sorted(b.bytes_read for b in by_bytes)


def test_a_quoted_field_with_a_newline_counts_its_lines(tmp_path: Path) -> None:
    path = write(tmp_path, b'Date,Steps\n"2024-03-01",5\n2024-03-02,"6"\n')
    [batch] = list(read_batches(path, MAPPING, max_rows=100, max_bytes=10_000))
    assert [r["values"]["Steps"] for r in batch.rows] == ["5", "6"]


@pytest.mark.parametrize(
    ("content", "where", "reason"),
    [
        (b"", "line 1", "empty"),
        (b"Day,Steps\n2024-03-01,5\n", "line 1", "Date"),
    ],
)
def test_unreadable_files_say_where(
    tmp_path: Path, content: bytes, where: str, reason: str
) -> None:
    with pytest.raises(UnreadableFile) as refused:
        list(read_batches(write(tmp_path, content), MAPPING, max_rows=10, max_bytes=10_000))
    assert refused.value.where == where and reason in refused.value.reason


def test_invalid_utf8_stops_with_the_line_and_keeps_what_was_read(tmp_path: Path) -> None:
    good = b"".join(b"2024-03-01,%d\n" % i for i in range(25))
    path = write(tmp_path, b"Date,Steps\n" + good + b"2024-03-02,\xff\xfe\n")
    batches = []
    with pytest.raises(UnreadableFile) as refused:
        for batch in read_batches(path, MAPPING, max_rows=10, max_bytes=10**6):
            batches.append(batch)
    assert sum(len(b.rows) for b in batches) == 25
    assert refused.value.where == "line 27"
