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
from healthmesh.gateway.deps import CurrentUser, Db, OutboxDep, SettingsDep, TopicsDep
from healthmesh.gateway.imports import (
    check_apple_export,
    check_csv_header,
    check_kind,
    import_view,
    parse_mapping,
)
from healthmesh.gateway.uploads import receive_form

router = APIRouter(tags=["imports"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "kind"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "kind": {
                            "type": "string",
                            "enum": ["apple_health", "csv", "cronometer", "myfitnesspal"],
                        },
                        "mapping": {"type": "string", "description": "JSON column mapping (csv)"},
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
    try:
        if form.file is None:
            raise ApiError(422, "invalid_request", "form field 'file' is required")
        kind = check_kind(form.fields.get("kind"))
        mapping = None
        if kind == "csv":
            mapping = parse_mapping(form.fields.get("mapping"))
            check_csv_header(incoming, mapping)
        elif kind == "apple_health":
            check_apple_export(incoming, settings.archive_limits)
        final = settings.upload_dir / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(incoming, final)
        request_event = ImportRequested(
            import_id=import_id,
            user_id=caller.user_id,
            kind=kind,
            path=relative,
            mapping=mapping,
            requested_at=datetime.now(UTC),
        )
        try:
            async with pool.acquire() as conn, conn.transaction():
                await db.insert_import(
                    conn,
                    import_id,
                    caller.user_id,
                    kind,
                    form.file.filename[:255],
                    relative,
                    form.file.size,
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
