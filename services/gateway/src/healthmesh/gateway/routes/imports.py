"""File imports: upload (streamed to the upload store, or a completed resumable upload), checked
by kind, then queued; progress until committed."""

import os
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import asyncpg
from fastapi import APIRouter, Request

from healthmesh.common.events import ImportRequested, dump
from healthmesh.common.http import ApiError
from healthmesh.common.outbox import Outbox, OutboxMessage
from healthmesh.common.topics import Topics
from healthmesh.gateway import db
from healthmesh.gateway.deps import (
    CurrentUser,
    Db,
    Http,
    OutboxDep,
    SettingsDep,
    TopicsDep,
    bearer_token,
)
from healthmesh.gateway.imports import (
    check_kind,
    check_upload,
    check_weight_unit,
    import_view,
    profile_timezone,
)
from healthmesh.gateway.resumable import (
    Upload,
    no_such_upload,
    remove_file,
    stage_for_import,
    upload_path,
)
from healthmesh.gateway.uploads import (
    FILE_PART,
    ReceivedFile,
    ReceivedForm,
    incoming_path,
    multipart_body,
    receive_form,
)

router = APIRouter(tags=["imports"])

_UPLOAD_BODY = multipart_body(
    ["kind"],
    {
        "file": FILE_PART,
        "upload_id": {
            "type": "string",
            "description": "instead of `file`: a completed upload (/v1/uploads)",
        },
        "kind": {
            "type": "string",
            "enum": ["apple_health", "csv", "cronometer", "myfitnesspal"],
        },
        "mapping": {"type": "string", "description": "JSON column mapping (csv)"},
        "preset": {"type": "string", "description": "or a saved mapping (csv)"},
        "timezone": {
            "type": "string",
            "description": "IANA zone of the file's dates (cronometer, myfitnesspal); "
            "default: the profile's",
        },
        "weight_unit": {
            "type": "string",
            "enum": ["kg", "lb"],
            "description": "unit of the Measurement-Summary's `Weight` column, which names none "
            "(myfitnesspal); default: inferred from the Exercise-Summary in the zip, else kg "
            "(flagged)",
        },
    },
)


@router.post("/v1/imports", status_code=202, openapi_extra=_UPLOAD_BODY)
async def create_import(
    request: Request,
    caller: CurrentUser,
    pool: Db,
    outbox: OutboxDep,
    topics: TopicsDep,
    settings: SettingsDep,
    http: Http,
) -> dict[str, str]:
    """Upload a file to import; answers at once, the import runs in the background."""
    import_id = uuid4()
    incoming = incoming_path(settings.upload_dir, str(import_id))
    form = await receive_form(
        request,
        incoming,
        max_file_bytes=settings.max_upload_bytes,
        max_field_bytes=settings.max_field_bytes,
    )
    try:
        file, upload = await _file_of(form, pool, caller.user_id, settings.upload_dir, incoming)
        kind = check_kind(form.fields.get("kind"))
        weight_unit = check_weight_unit(kind, form.fields.get("weight_unit"))
        mapping, timezone = await check_upload(
            kind,
            incoming,
            form.fields,
            pool=pool,
            user_id=caller.user_id,
            limits=settings.archive_limits,
            profile_zone=partial(
                profile_timezone, http, settings.auth_url, f"Bearer {bearer_token(request)}"
            ),
        )
        requested = ImportRequested(
            import_id=import_id,
            user_id=caller.user_id,
            kind=kind,
            path=f"{caller.user_id}/{import_id}",
            mapping=mapping,
            timezone=timezone,
            weight_unit=weight_unit,
            requested_at=datetime.now(UTC),
        )
        await _queue(pool, outbox, topics, settings.upload_dir, incoming, requested, file, upload)
    finally:
        incoming.unlink(missing_ok=True)
    outbox.wakeup.set()
    return {"id": str(import_id), "status": "queued"}


async def _file_of(
    form: ReceivedForm, pool: asyncpg.Pool, user_id: UUID, upload_dir: Path, incoming: Path
) -> tuple[ReceivedFile, Upload | None]:
    """The file to import, at `incoming`: the form's file part, or the caller's completed
    resumable upload named by `upload_id`, linked there (and returned, to be used up)."""
    upload_id = form.fields.get("upload_id")
    if not upload_id:
        if form.file is None:
            raise ApiError(422, "invalid_request", "form field 'file' (or 'upload_id') is required")
        return form.file, None
    if form.file is not None:
        raise ApiError(422, "invalid_request", "send a 'file' or an 'upload_id', not both")
    upload = await stage_for_import(pool, user_id, upload_id, upload_dir, incoming)
    return ReceivedFile(incoming, upload.filename, upload.length), upload


async def _queue(
    pool: asyncpg.Pool,
    outbox: Outbox,
    topics: Topics,
    upload_dir: Path,
    incoming: Path,
    requested: ImportRequested,
    file: ReceivedFile,
    upload: Upload | None,
) -> None:
    """Move the checked file to `requested.path` in the upload store, then in one transaction use
    up the resumable upload it came from, record the import and put `imports.requested` in the
    outbox. The file goes again if that fails; the upload's own file once it succeeds."""
    final = upload_dir / requested.path
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(incoming, final)
    try:
        async with pool.acquire() as conn, conn.transaction():
            if upload is not None and not await db.take_completed_upload(
                conn, upload.id, requested.user_id
            ):
                raise no_such_upload()
            await db.insert_import(
                conn,
                requested.import_id,
                requested.user_id,
                requested.kind,
                file.filename[:255],
                requested.path,
                file.size,
                dump(requested.mapping) if requested.mapping else None,
            )
            await outbox.add(
                conn,
                [
                    OutboxMessage(
                        topics.imports_requested,
                        str(requested.user_id).encode(),
                        dump(requested),
                    )
                ],
            )
    except BaseException:
        final.unlink(missing_ok=True)
        raise
    if upload is not None:  # the import holds its own link to the bytes
        remove_file(upload_path(upload_dir, upload.id))


@router.get("/v1/imports/{import_id}")
async def get_import(import_id: str, caller: CurrentUser, pool: Db) -> dict[str, Any]:
    """Progress and final counts; `done` once every record is committed and queryable."""
    try:
        key = UUID(import_id)
    except ValueError:
        raise ApiError(404, "not_found", "no such import") from None
    row = await db.get_import(pool, key, caller.user_id)
    if row is None:
        raise ApiError(404, "not_found", "no such import")
    return import_view(row, datetime.now(UTC))


@router.get("/v1/imports")
async def list_imports(caller: CurrentUser, pool: Db) -> list[dict[str, Any]]:
    """The caller's imports, newest first."""
    now = datetime.now(UTC)
    return [import_view(row, now) for row in await db.list_imports(pool, caller.user_id, limit=100)]
