"""Apple Health exports cut into raw batches: zipped or not, the same batches every time, what
was read before a broken place kept, unsafe archives refused before anything is read."""

import zipfile
from pathlib import Path

import orjson
import pytest

from healthmesh.common.apple_export import ArchiveLimits, UnsafeArchive
from healthmesh.common.ids import canonical_json
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


def sleep(stage: str, start: str, end: str, source: str = "Watch") -> str:
    return (
        '<Record type="HKCategoryTypeIdentifierSleepAnalysis" '
        f'sourceName="{source}" startDate="{start} +0100" endDate="{end} +0100" '
        f'value="HKCategoryValueSleepAnalysis{stage}"/>\n'
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


def test_a_zip_damaged_past_the_checked_part_keeps_what_was_read(tmp_path: Path) -> None:
    """The gateway checks an export's head; a member whose data fails later (here its checksum,
    which zipfile checks once the member is read to the end) is reported, not a crash."""
    path = zipped(tmp_path, export(3000))  # ~600 kB: read in several chunks
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")  # the export's central directory entry comes first
    data[central + 16 : central + 20] = b"\x00\x00\x00\x00"  # its CRC-32
    path.write_bytes(bytes(data))

    batches = []
    with pytest.raises(ExportError) as error:
        for batch in read_batches(path, LIMITS, max_records=100, max_bytes=1 << 20):
            batches.append(batch)

    read = sum(len(b.records) for b in batches)
    assert 0 < read < 3000  # the chunks parsed before the failing read
    assert "damaged" in error.value.reason
    assert error.value.line == 2 + read  # the last record kept (records start on line 3)


def test_an_unsafe_archive_yields_nothing(tmp_path: Path) -> None:
    bomb = HEADER.encode() + b" " * (20 * 1024**2) + b"</HealthData>\n"
    with pytest.raises(UnsafeArchive, match="zip bomb"):
        list(read_batches(zipped(tmp_path, bomb), LIMITS, 100, 1 << 20))


# --- a night is never cut across batches (the mapper builds sleep_session from one payload) -----


def batch_sources(path: Path, max_records: int) -> list[list[str]]:
    """Each batch as the (sourceName, startDate hh:mm) of its records, to read at a glance."""
    return [
        [f"{r['sourceName']} {r['startDate'][11:16]}" for r in batch.records]
        for batch in read_batches(path, LIMITS, max_records=max_records, max_bytes=1 << 20)
    ]


def test_a_night_is_kept_whole_past_the_batch_size(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_bytes(
        (
            HEADER
            + steps(0)
            + sleep("AsleepCore", "2024-03-01 23:00:00", "2024-03-02 01:00:00")
            + sleep("AsleepDeep", "2024-03-02 01:00:00", "2024-03-02 02:00:00")
            # 1 h 59 min after the night's end (02:00): still the same night
            + sleep("AsleepCore", "2024-03-02 03:59:00", "2024-03-02 06:00:00")
            # 2 h after it (06:00): another night, and the full batch is cut before it
            + sleep("Asleep", "2024-03-02 08:00:00", "2024-03-02 08:30:00")
            + sleep("AsleepCore", "2024-03-02 23:30:00", "2024-03-03 06:00:00")
            + "</HealthData>\n"
        ).encode()
    )
    # 3 a batch: [steps, 23:00, 01:00] is full, but 03:59 continues its night; 08:00 does
    # not, so the batch (4 records, below its overrun limit of 2 * 3) is cut before it
    assert batch_sources(path, max_records=3) == [
        ["Watch 08:00", "Watch 23:00", "Watch 01:00", "Watch 03:59"],
        ["Watch 08:00", "Watch 23:30"],
    ]


def test_two_sources_in_date_order_keep_their_night_together(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_bytes(
        (
            HEADER
            + sleep("InBed", "2024-01-20 23:00:00", "2024-01-21 06:45:00", "iPhone")
            + sleep("Asleep", "2024-01-20 23:20:00", "2024-01-21 06:25:00", "AutoSleep")
            + sleep("AsleepCore", "2024-01-20 23:30:00", "2024-01-21 06:30:00")
            # the next night: 16 h 15 min after the latest end (06:45, the iPhone's)
            + sleep("InBed", "2024-01-21 23:00:00", "2024-01-22 07:00:00", "iPhone")
            + sleep("AsleepCore", "2024-01-21 23:10:00", "2024-01-22 06:50:00")
            + "</HealthData>\n"
        ).encode()
    )
    # [iPhone, AutoSleep] is full; the Watch's first record is no cut place either: in date
    # order, it starts (23:30) while the iPhone's and AutoSleep's nights may still go on.
    assert batch_sources(path, max_records=2) == [
        ["iPhone 23:00", "AutoSleep 23:20", "Watch 23:30"],
        ["iPhone 23:00", "Watch 23:10"],
    ]


def test_sources_listed_apart_are_cut_where_the_next_source_begins(tmp_path: Path) -> None:
    path = tmp_path / "export.xml"
    path.write_bytes(
        (
            HEADER
            + sleep("Asleep", "2024-01-20 23:00:00", "2024-01-21 03:00:00", "AutoSleep")
            + sleep("Asleep", "2024-01-21 03:30:00", "2024-01-21 07:00:00", "AutoSleep")
            # the Watch's records of the same night: they start before AutoSleep's last one,
            # so AutoSleep's records are over and its night is closed
            + sleep("AsleepCore", "2024-01-20 23:30:00", "2024-01-21 03:00:00")
            + sleep("AsleepREM", "2024-01-21 03:00:00", "2024-01-21 04:00:00")
            + "</HealthData>\n"
        ).encode()
    )
    assert batch_sources(path, max_records=2) == [
        ["AutoSleep 23:00", "AutoSleep 03:30"],
        ["Watch 23:30", "Watch 03:00"],
    ]


def test_an_endless_chain_of_sleep_records_is_cut_at_twice_the_batch_size(tmp_path: Path) -> None:
    # 6 half-hour records back to back, 00:00 -> 03:00: one chain, but a batch of 2 records
    # may only run on to 2 * 2 = 4 records
    chain = "".join(
        sleep(
            "Asleep",
            f"2024-02-01 0{m // 60}:{m % 60:02d}:00",
            f"2024-02-01 0{(m + 30) // 60}:{(m + 30) % 60:02d}:00",
        )
        for m in range(0, 180, 30)
    )
    path = tmp_path / "export.xml"
    path.write_bytes((HEADER + chain + "</HealthData>\n").encode())
    assert [len(b) for b in batch_sources(path, max_records=2)] == [4, 2]


def test_a_batch_is_written_once_as_the_canonical_json_of_its_records(tmp_path: Path) -> None:
    """The records' JSON written while reading is the payload as published and hashed (the raw
    event's id): exactly `canonical_json({"records": ...})`, and the byte budget measures it."""
    path = tmp_path / "export.xml"
    path.write_bytes(
        export(5, tail=sleep("AsleepCore", "2024-03-01 23:00:00", "2024-03-02 01:00:00"))
        + b"</HealthData>\n"
    )
    (batch,) = read_batches(path, LIMITS, max_records=100, max_bytes=1 << 20)
    assert len(batch.records) == 6
    assert batch.payload_json() == canonical_json({"records": batch.records})
    assert batch.size == sum(len(orjson.dumps(r)) for r in batch.records)
