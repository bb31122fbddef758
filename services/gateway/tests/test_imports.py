"""An import's status from both read models, and what an upload is refused for."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from healthmesh.common.events import CsvMapping
from healthmesh.common.http import ApiError
from healthmesh.gateway.imports import check_csv_header, check_kind, import_view

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
    assert import_view(row())["status"] == "queued"


def test_parsed_but_not_all_committed_is_still_running() -> None:
    view = import_view(
        row(
            parse_status="parsed",
            batches_published=3,
            batches_committed=2,
            parse_started_at=T0,
            parse_finished_at=T0,
        )
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
        )
    )
    assert view["status"] == "done"
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
        )
    )
    assert view["status"] == "failed" and view["errors"][0]["where"] == "line 7"


@pytest.mark.parametrize(
    ("kind", "code"),
    [(None, "invalid_request"), ("xls", "unknown_kind"), ("apple_health", "kind_not_available")],
)
def test_kinds_are_checked(kind: str | None, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        check_kind(kind)
    assert refused.value.code == code


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
