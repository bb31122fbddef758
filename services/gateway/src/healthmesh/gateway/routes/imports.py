"""File imports: upload (streamed to the upload store), then progress until committed."""

import os
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request

from healthmesh.common.events import ImportRequested, dump
from healthmesh.common.http import ApiError
from healthmesh.common.outbox import OutboxMessage
from healthmesh.gateway import db
from healthmesh.gateway.csv_mappings import form_mapping
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
    DIARY_KINDS,
    check_apple_export,
    check_csv_header,
    check_diary_export,
    check_kind,
    check_timezone,
    import_view,
    profile_timezone,
)
from healthmesh.gateway.resumable import Upload, remove_file, stage_for_import, upload_path
from healthmesh.gateway.uploads import ReceivedFile, receive_form

router = APIRouter(tags=["imports"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["kind"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
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
                            "description": "IANA zone of the file's dates (cronometer, "
                            "myfitnesspal); default: the profile's",
                        },
                    },
                }
            }
        },
    }
}


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
    relative = f"{caller.user_id}/{import_id}"
    incoming = settings.upload_dir / ".incoming" / str(import_id)
    form = await receive_form(
        request,
        incoming,
        max_file_bytes=settings.max_upload_bytes,
        max_field_bytes=settings.max_field_bytes,
    )
    upload: Upload | None = None
    try:
        file = form.file
        if form.fields.get("upload_id"):
            if file is not None:
                raise ApiError(422, "invalid_request", "send a 'file' or an 'upload_id', not both")
            upload = await stage_for_import(
                pool, caller.user_id, form.fields["upload_id"], settings.upload_dir, incoming
            )
            file = ReceivedFile(incoming, upload.filename, upload.length)
        if file is None:
            raise ApiError(422, "invalid_request", "form field 'file' (or 'upload_id') is required")
        kind = check_kind(form.fields.get("kind"))
        timezone = check_timezone(kind, form.fields.get("timezone"))
        mapping = None
        if kind == "csv":
            mapping = await form_mapping(form.fields, pool, caller.user_id)
            check_csv_header(incoming, mapping)
        elif kind == "apple_health":
            check_apple_export(incoming, settings.archive_limits)
        elif kind in DIARY_KINDS:
            check_diary_export(incoming, kind, settings.archive_limits)
            if timezone is None:
                authorization = f"Bearer {bearer_token(request)}"
                timezone = await profile_timezone(http, settings.auth_url, authorization)
        final = settings.upload_dir / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming, final)
        request_event = ImportRequested(
            import_id=import_id,
            user_id=caller.user_id,
            kind=kind,
            path=relative,
            mapping=mapping,
            timezone=timezone,
            requested_at=datetime.now(UTC),
        )
        try:
            async with pool.acquire() as conn, conn.transaction():
                if upload is not None and not await db.take_completed_upload(
                    conn, upload.id, caller.user_id
                ):
                    raise ApiError(404, "not_found", "no such upload")
                await db.insert_import(
                    conn,
                    import_id,
                    caller.user_id,
                    kind,
                    file.filename[:255],
                    relative,
                    file.size,
                    dump(mapping) if mapping else None,
                )
                await outbox.add(
                    conn,
                    [
                        OutboxMessage(
                            topics.imports_requested,
                            str(caller.user_id).encode(),
                            dump(request_event),
                        )
                    ],
                )
        except BaseException:
            final.unlink(missing_ok=True)
            raise
    finally:
        incoming.unlink(missing_ok=True)
    if upload is not None:  # the import holds its own link to the bytes
        remove_file(upload_path(settings.upload_dir, upload.id))
    outbox.wakeup.set()
    return {"id": str(import_id), "status": "queued"}


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
