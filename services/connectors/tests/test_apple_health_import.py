"""Apple Health exports cut into raw batches: zipped or not, the same batches every time, what
was read before a broken place kept, unsafe archives refused before anything is read."""

import zipfile
from pathlib import Path

import pytest

from healthmesh.common.apple_export import ArchiveLimits, UnsafeArchive
from healthmesh.connectors.importers.apple_health import read_batches
from healthmesh.connectors.importers.apple_health_xml import ExportError

LIMITS = ArchiveLimits(max_uncompressed_bytes=50 * 1024**2, max_ratio=200)
HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n<HealthData locale="en_US">\n'


def steps(minute: int) -> str:
    return (
        '<Record type="HKQuantityTypeIdentifierStepCount" sourceName="Watch" unit="count" '
        f'startDate="2024-03-01 08:{minute:02d}:00 +0100" '
        f'endDate="2024-03-01 08:{minute:02d}:59 +0100" value="{minute + 1}"/>\n'
    )


def export(records: int, tail: str = "</HealthData>\n") -> bytes:
    return (HEADER + "".join(steps(m % 60) for m in range(records)) + tail).encode()


def zipped(tmp_path: Path, data: bytes, name: str = "apple_health_export/export.xml") -> Path:
    path = tmp_path / "export.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
        archive.writestr("apple_health_export/export_cda.xml", b"<ClinicalDocument/>")
    return path


def test_a_zipped_export_is_cut_into_batches_the_same_way_every_time(tmp_path: Path) -> None:
    path = zipped(tmp_path, export(250))
    batches = list(read_batches(path, LIMITS, max_records=100, max_bytes=1 << 20))
    assert [len(b.records) for b in batches] == [100, 100, 50]
    assert [r["value"] for r in batches[0].records[:3]] == ["1", "2", "3"]
    # Progress is how far into the zip reading got (a parsed import then counts the whole file).
    progress = [b.bytes_read for b in batches]
    assert progress == sorted(progress) and 0 < progress[-1] <= path.stat().st_size
    again = list(read_batches(path, LIMITS, max_records=100, max_bytes=1 << 20))
    assert [b.records for b in again] == [b.records for b in batches]


def test_a_plain_export_xml_and_a_byte_budget(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_bytes(export(30))
    batches = list(read_batches(path, LIMITS, max_records=1000, max_bytes=2000))
    assert sum(len(b.records) for b in batches) == 30
    assert len(batches) > 1  # cut by size before the count


def test_a_truncated_export_keeps_what_was_read_and_says_where(tmp_path: Path) -> None:
    path = zipped(tmp_path, export(10, tail='<Record type="HKQuantityTypeIdentifierStepC'))
    batches = []
    with pytest.raises(ExportError) as error:
        for batch in read_batches(path, LIMITS, max_records=4, max_bytes=1 << 20):
            batches.append(batch)
    assert sum(len(b.records) for b in batches) == 10
    assert error.value.line == 13


def test_an_unsafe_archive_yields_nothing(tmp_path: Path) -> None:
    bomb = HEADER.encode() + b" " * (20 * 1024**2) + b"</HealthData>\n"
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        list(read_batches(zipped(tmp_path, bomb), LIMITS, 100, 1 << 20))
