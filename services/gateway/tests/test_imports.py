"""An import's status from both read models, and what an upload is refused for."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthmesh.common.apple_export import ArchiveLimits
from healthmesh.common.events import CsvMapping
from healthmesh.common.http import ApiError
from healthmesh.gateway.csv_mappings import check_csv_header
from healthmesh.gateway.imports import check_apple_export, check_kind, import_view

ZipOf = Callable[[dict[str, bytes]], Path]
"""conftest.zip_of: writes a zip of `{name: bytes}` entries, a new file each call."""

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def row(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "1",
        "kind": "csv",
        "filename": "f.csv",
        "bytes_total": 100,
        "created_at": T0,
        "parse_status": None,
        "bytes_read": None,
        "records_seen": None,
        "batches_published": None,
        "parse_errors": None,
        "parse_started_at": None,
        "parse_finished_at": None,
        "batches_committed": None,
        "records_imported": None,
        "records_rejected": None,
        "map_errors": None,
        "last_committed_at": None,
    }
    base.update(overrides)
    return base


def test_an_import_nobody_picked_up_is_queued() -> None:
    view = import_view(row(), T0)
    assert (view["status"], view["records_per_second"], view["eta_seconds"]) == (
        "queued",
        None,
        None,
    )


def test_a_running_import_says_its_rate_and_what_is_left() -> None:
    view = import_view(
        row(
            parse_status="running",
            bytes_total=1000,
            bytes_read=500,
            records_seen=400,
            records_imported=190,
            records_rejected=10,
            batches_published=4,
            batches_committed=2,
            parse_started_at=T0,
        ),
        T0 + timedelta(seconds=10),
    )
    # 200 records committed in 10 s; half the file read and half of that committed: a quarter
    # done in 10 s leaves 30 s.
    assert (view["status"], view["records_per_second"], view["eta_seconds"]) == (
        "running",
        20.0,
        30.0,
    )


def test_parsed_but_not_all_committed_is_still_running() -> None:
    view = import_view(
        row(
            parse_status="parsed",
            batches_published=3,
            batches_committed=2,
            parse_started_at=T0,
            parse_finished_at=T0,
        ),
        T0 + timedelta(seconds=10),
    )
    assert view["status"] == "running" and view["finished_at"] is None


def test_done_once_every_published_batch_is_committed() -> None:
    view = import_view(
        row(
            parse_status="parsed",
            batches_published=3,
            batches_committed=3,
            records_seen=10,
            records_imported=9,
            records_rejected=1,
            parse_started_at=T0,
            parse_finished_at=T0,
            last_committed_at=T0 + timedelta(seconds=5),
            map_errors=[{"where": "row 3", "reason": "bad"}],
        ),
        T0 + timedelta(seconds=10),
    )
    assert view["status"] == "done"
    assert (view["records_per_second"], view["eta_seconds"]) == (2.0, None)  # 10 in 5 s
    assert (view["records_seen"], view["records_imported"], view["records_rejected"]) == (10, 9, 1)
    assert view["finished_at"] == (T0 + timedelta(seconds=5)).isoformat()
    assert view["errors"] == [{"where": "row 3", "reason": "bad"}]


def test_a_failed_parse_reports_its_error_after_the_committed_part() -> None:
    view = import_view(
        row(
            parse_status="failed",
            batches_published=1,
            batches_committed=1,
            parse_errors=[{"where": "line 7", "reason": "not UTF-8"}],
            parse_started_at=T0,
            parse_finished_at=T0,
        ),
        T0 + timedelta(seconds=10),
    )
    assert view["status"] == "failed" and view["errors"][0]["where"] == "line 7"


@pytest.mark.parametrize(
    ("kind", "code"),
    [(None, "invalid_request"), ("xls", "unknown_kind")],
)
def test_kinds_are_checked(kind: str | None, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_kind(kind)
    assert refused.value.code == code


@pytest.mark.parametrize("kind", ["csv", "apple_health", "cronometer", "myfitnesspal"])
def test_every_kind_is_available(kind: str) -> None:
    assert check_kind(kind) == kind


def test_a_header_missing_a_mapped_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("\ufeffDate,Steps\n2024-03-01,1\n")
    mapping = CsvMapping.model_validate(
        {"timestamp": "Date", "columns": {"Stepz": {"metric": "steps", "unit": "count"}}}
    )
    with pytest.raises(ApiError) as refused:
        check_csv_header(path, mapping)
    assert "Stepz" in refused.value.message and "Date, Steps" in refused.value.message


def test_a_bom_does_not_hide_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("\ufeffDate,Steps\n2024-03-01,1\n")
    mapping = CsvMapping.model_validate(
        {"timestamp": "Date", "columns": {"Steps": {"metric": "steps", "unit": "count"}}}
    )
    check_csv_header(path, mapping)


EXPORT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<!DOCTYPE HealthData [\n<!ELEMENT HealthData ANY>\n]>\n"
    b'<HealthData locale="en_US">\n<Record type="HKQuantityTypeIdentifierStepCount" '
    b'sourceName="Watch" unit="count" startDate="2024-03-01 08:00:00 +0100" '
    b'endDate="2024-03-01 08:10:00 +0100" value="500"/>\n</HealthData>\n'
)
LIMITS = ArchiveLimits(max_uncompressed_bytes=10 * 1024**2, max_ratio=200)


def refusal(path: Path) -> ApiError:
    with pytest.raises(ApiError) as refused:
        check_apple_export(path, LIMITS)
    return refused.value


def test_an_export_zip_or_its_xml_is_accepted(tmp_path: Path, zip_of: ZipOf) -> None:
    check_apple_export(zip_of({"apple_health_export/export.xml": EXPORT}), LIMITS)
    german = {
        "apple_health_export/exportieren.xml": EXPORT,
        "apple_health_export/export_cda.xml": b"<ClinicalDocument/>",
        "__MACOSX/apple_health_export/._exportieren.xml": b"junk",
    }
    check_apple_export(zip_of(german), LIMITS)
    xml = tmp_path / "export.xml"
    xml.write_bytes(EXPORT)
    check_apple_export(xml, LIMITS)


def test_a_zip_whose_compressed_data_is_damaged_is_refused(zip_of: ZipOf) -> None:
    path = zip_of({"apple_health_export/export.xml": EXPORT * 20})
    data = bytearray(path.read_bytes())
    start = data.index(b"export.xml") + len(b"export.xml")  # the entry's deflated bytes follow
    data[start + 10 : start + 40] = b"\xff" * 30
    path.write_bytes(bytes(data))

    error = refusal(path)

    assert (error.status, error.code) == (422, "unreadable_file")


def test_a_zip_bomb_is_refused(zip_of: ZipOf) -> None:
    bomb = EXPORT[:-14] + b" " * (5 * 1024**2) + b"</HealthData>\n"  # 5 MB of blanks
    error = refusal(zip_of({"apple_health_export/export.xml": bomb}))
    assert (error.status, error.code) == (422, "unsafe_archive")
    assert "zip bomb" in error.message


def test_an_archive_expanding_past_the_limit_is_refused(zip_of: ZipOf) -> None:
    big = EXPORT + bytes(range(256)) * (45 * 1024)  # ~11.5 MB that does not compress much
    error = refusal(zip_of({"apple_health_export/export.xml": big}))
    assert error.code == "unsafe_archive" and "limit" in error.message


@pytest.mark.parametrize("name", ["../../etc/cron.d/x", "/etc/passwd", "C:/Windows/x.xml"])
def test_an_entry_escaping_the_archive_is_refused(zip_of: ZipOf, name: str) -> None:
    error = refusal(zip_of({"apple_health_export/export.xml": EXPORT, name: b"x"}))
    assert error.code == "unsafe_archive" and "outside the archive" in error.message


def test_a_zip_without_export_xml_is_refused(zip_of: ZipOf) -> None:
    error = refusal(zip_of({"apple_health_export/export_cda.xml": b"<x/>"}))
    assert error.code == "unsafe_archive" and "export.xml" in error.message


def test_xml_declaring_entities_is_refused(zip_of: ZipOf) -> None:
    laughs = EXPORT.replace(
        b"<!ELEMENT HealthData ANY>",
        b'<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;"><!ENTITY xxe SYSTEM "file:///etc/passwd">',
    )
    error = refusal(zip_of({"apple_health_export/export.xml": laughs}))
    assert (error.status, error.code) == (422, "unsafe_xml")


def test_a_file_of_another_kind_is_refused(tmp_path: Path, zip_of: ZipOf) -> None:
    path = tmp_path / "steps.csv"
    path.write_text("Date,Steps\n2024-03-01,1\n")
    assert refusal(path).status == 415
    broken = tmp_path / "broken.zip"
    broken.write_bytes(zip_of({"apple_health_export/export.xml": EXPORT}).read_bytes()[:-30])
    assert refusal(broken).code in ("unreadable_file", "unsupported_media_type")
