"""File imports as the client sees them: validating an upload before anything is queued, and
the import's status computed from the importers' and the normalizer's progress."""

import zipfile
import zlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, get_args
from uuid import UUID

import asyncpg
import httpx

from healthmesh.common.apple_export import ArchiveLimits, UnsafeArchive, export_member
from healthmesh.common.diary_exports import (
    HEAD_BYTES,
    ZIPPED_SOURCES,
    NotAnExport,
    header_of,
    recognise,
    zip_members,
)
from healthmesh.common.events import CsvMapping, ImportKind, WeightUnit
from healthmesh.common.http import ApiError
from healthmesh.common.zones import iana_zone
from healthmesh.gateway.csv_mappings import check_csv_header, form_mapping

KINDS = get_args(ImportKind)
AVAILABLE_KINDS = ("csv", "apple_health", "cronometer", "myfitnesspal")
DIARY_KINDS = ("cronometer", "myfitnesspal")
"""Nutrition-diary exports: local dates without an offset, read in the import's `timezone`."""
MAX_ERRORS_SHOWN = 100


def check_kind(kind: str | None) -> str:
    if not kind:
        raise ApiError(422, "invalid_request", f"form field 'kind' is required: one of {KINDS}")
    if kind not in KINDS:
        raise ApiError(422, "unknown_kind", f"unknown kind {kind!r}: expected one of {KINDS}")
    if kind not in AVAILABLE_KINDS:
        raise ApiError(422, "kind_not_available", f"imports of kind {kind!r} are not available yet")
    return kind


async def check_upload(
    kind: str,
    path: Path,
    fields: dict[str, str],
    *,
    pool: asyncpg.Pool,
    user_id: UUID,
    limits: ArchiveLimits,
    profile_zone: Callable[[], Awaitable[str]],
) -> tuple[CsvMapping | None, str | None]:
    """Refuse, before anything is queued, a file at `path` that is not what its `kind` says.
    Answers what the import reads it with: the mapping (csv: the `mapping` field or the caller's
    `preset`) and the timezone (diary kinds: the `timezone` field, else `profile_zone()`)."""
    timezone = check_timezone(kind, fields.get("timezone"))
    mapping = None
    if kind == "csv":
        mapping = await form_mapping(fields, pool, user_id)
        check_csv_header(path, mapping)
    elif kind == "apple_health":
        check_apple_export(path, limits)
    elif kind in DIARY_KINDS:
        check_diary_export(path, kind, limits)
        if timezone is None:
            timezone = await profile_zone()
    return mapping, timezone


PROLOGUE_BYTES = 1 << 20
"""An export's root element comes within this (Apple's DTD is ~10 KB)."""


def check_apple_export(path: Path, limits: ArchiveLimits) -> None:
    """Refuse, before anything is queued, what is not an Apple Health export or is not safe to
    read: a zip bomb, a zip entry escaping the archive, a zip without export.xml, an XML that
    declares entities (external ones or billion laughs)."""
    with path.open("rb") as raw:
        if zipfile.is_zipfile(raw):
            raw.seek(0)
            try:
                with zipfile.ZipFile(raw) as archive:
                    member = export_member(archive, limits)
                    with archive.open(member) as xml:
                        head = xml.read(PROLOGUE_BYTES)
            except UnsafeArchive as exc:
                raise ApiError(422, "unsafe_archive", str(exc)) from None
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
                raise ApiError(422, "unreadable_file", f"the zip cannot be read: {exc}") from None
        else:
            raw.seek(0)
            head = raw.read(PROLOGUE_BYTES)
    root = head.find(b"<HealthData")
    if root < 0:
        raise ApiError(
            415,
            "unsupported_media_type",
            "not an Apple Health export: send export.zip, or the export.xml inside it",
        )
    if b"<!ENTITY" in head[:root]:
        raise ApiError(
            422, "unsafe_xml", "the export declares XML entities, which Apple's never does"
        )


def check_diary_export(path: Path, kind: str, limits: ArchiveLimits) -> None:
    """Refuse, before anything is queued, a file that is not one of the source's exports (by
    its header), and a zip unless the source exports one (MyFitnessPal), unsafe to read (zip
    bomb, entry escaping the archive) or holding a CSV that is not one of its exports."""
    with path.open("rb") as raw:
        head = raw.read(HEAD_BYTES)
        if not head.strip():
            raise ApiError(422, "unreadable_file", "the file is empty")
        try:
            if kind in ZIPPED_SOURCES and zipfile.is_zipfile(raw):
                raw.seek(0)
                with zipfile.ZipFile(raw) as archive:
                    for member in zip_members(archive, limits):
                        with archive.open(member) as member_file:
                            try:
                                recognise(kind, header_of(member_file.read(HEAD_BYTES)))
                            except NotAnExport as exc:
                                raise NotAnExport(f"{member.filename}: {exc}") from None
            else:
                recognise(kind, header_of(head))
        except NotAnExport as exc:
            raise ApiError(415, "unsupported_media_type", str(exc)) from None
        except UnsafeArchive as exc:
            raise ApiError(422, "unsafe_archive", str(exc)) from None
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
            raise ApiError(422, "unreadable_file", f"the zip cannot be read: {exc}") from None


WEIGHT_UNITS: tuple[WeightUnit, ...] = get_args(WeightUnit)


def check_weight_unit(kind: str, unit: str | None) -> WeightUnit | None:
    """The upload's `weight_unit` field: the unit of MyFitnessPal's `Weight` column, which the
    file does not name (it follows the account setting) [MFP Measurement-Summary]."""
    if unit is None:
        return None
    if kind != "myfitnesspal":
        raise ApiError(422, "invalid_request", "weight_unit is for myfitnesspal imports")
    for known in WEIGHT_UNITS:
        if unit == known:
            return known
    raise ApiError(
        422,
        "invalid_request",
        f"unknown weight_unit {unit!r}: expected one of {', '.join(WEIGHT_UNITS)}",
    )


def check_timezone(kind: str, name: str | None) -> str | None:
    """The upload's `timezone` field: an IANA zone, for the kinds whose files need one."""
    if name is None:
        return None
    if kind not in DIARY_KINDS:
        raise ApiError(
            422,
            "invalid_request",
            f"'timezone' is for kinds {', '.join(DIARY_KINDS)} (csv: the mapping's timezone)",
        )
    if iana_zone(name) is None:
        raise ApiError(422, "invalid_timezone", f"unknown timezone {name!r}: expected an IANA name")
    return name


async def profile_timezone(http: httpx.AsyncClient, auth_url: str, authorization: str) -> str:
    """The caller's profile zone, from the auth service that owns users (the access token does
    not carry it)."""
    try:
        answer = await http.get(
            f"{auth_url.rstrip('/')}/v1/me", headers={"authorization": authorization}, timeout=10.0
        )
        answer.raise_for_status()
        return str(answer.json()["timezone"])
    except (httpx.HTTPError, ValueError, KeyError):
        raise ApiError(
            503, "unavailable", "cannot read your profile's timezone: send a 'timezone' field"
        ) from None


def import_view(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The answer of GET /v1/imports/{id}: `done` only once every published batch is committed."""
    parse_status = row["parse_status"]
    published = row["batches_published"] or 0
    committed = row["batches_committed"] or 0
    all_committed = committed >= published
    if parse_status is None:
        status = "queued"
    elif parse_status == "parsed" and all_committed:
        status = "done"
    elif parse_status == "failed" and all_committed:
        status = "failed"
    else:
        status = "running"
    errors = [*(row["parse_errors"] or []), *(row["map_errors"] or [])][:MAX_ERRORS_SHOWN]
    finished: datetime | None = None
    if status in ("done", "failed"):
        candidates = [t for t in (row["parse_finished_at"], row["last_committed_at"]) if t]
        finished = max(candidates) if candidates else None
    rate, eta = _pace(row, status, finished or now)
    return {
        "id": str(row["id"]),
        "kind": row["kind"],
        "filename": row["filename"],
        "status": status,
        "bytes_total": row["bytes_total"],
        "bytes_read": row["bytes_read"] or 0,
        "records_seen": row["records_seen"] or 0,
        "records_imported": row["records_imported"] or 0,
        "records_rejected": row["records_rejected"] or 0,
        "errors": errors,
        "created_at": row["created_at"].isoformat(),
        "started_at": row["parse_started_at"].isoformat() if row["parse_started_at"] else None,
        "finished_at": finished.isoformat() if finished else None,
        "records_per_second": rate,
        "eta_seconds": eta,
    }


def _pace(row: dict[str, Any], status: str, until: datetime) -> tuple[float | None, float | None]:
    """Records committed per second since parsing started, and the seconds left while it runs:
    the share done is the share of the file read times the share of what was read that is
    committed (parsing runs ahead of the normalizer)."""
    started = row["parse_started_at"]
    elapsed = (until - started).total_seconds() if started else 0.0
    if elapsed <= 0:
        return None, None
    committed = (row["records_imported"] or 0) + (row["records_rejected"] or 0)
    rate = round(committed / elapsed, 1)
    seen, total = row["records_seen"] or 0, row["bytes_total"] or 0
    if status != "running" or not seen or not total:
        return rate, None
    done = min(1.0, (row["bytes_read"] or 0) / total) * min(1.0, committed / seen)
    return rate, (round(elapsed * (1 - done) / done, 1) if done > 0 else None)
