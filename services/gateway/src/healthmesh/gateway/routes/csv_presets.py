"""Generic CSV: the caller's saved column mappings (presets), and a preview of a file's first rows.

Presets live under /v1/csv-presets rather than /v1/imports/..., so no path of theirs can be taken
for an import id by GET /v1/imports/{import_id}, whatever order the routers are mounted in.
"""

from typing import Annotated, Any
from uuid import uuid4

from fastapi import APIRouter, Body, Path, Query, Request

from healthmesh.common.events import dump
from healthmesh.common.http import ApiError
from healthmesh.gateway import db
from healthmesh.gateway.csv_mappings import (
    MAX_PRESETS,
    MAX_PREVIEW_ROWS,
    PRESET_NAME,
    PREVIEW_HEAD_BYTES,
    PREVIEW_ROWS,
    check_csv_header,
    check_mapping,
    form_mapping,
    preset_view,
    preview_rows,
)
from healthmesh.gateway.deps import CurrentUser, Db, SettingsDep
from healthmesh.gateway.uploads import FILE_PART, incoming_path, multipart_body, receive_form

router = APIRouter(tags=["imports"])

PresetName = Annotated[
    str, Path(pattern=PRESET_NAME, description="Letters, digits, spaces and _ . ( ) -; 1-100.")
]

_PREVIEW_BODY = multipart_body(
    ["file"],
    {
        "file": FILE_PART,
        "mapping": {"type": "string", "description": "JSON column mapping"},
        "preset": {"type": "string", "description": "or a saved preset's name"},
    },
)


@router.put("/v1/csv-presets/{name}")
async def save_preset(
    name: PresetName,
    mapping: Annotated[dict[str, Any], Body(description="A CSV column mapping, as in imports.")],
    caller: CurrentUser,
    pool: Db,
) -> dict[str, Any]:
    """Save a CSV column mapping under a name, replacing yours of that name."""
    checked = check_mapping(mapping)
    async with pool.acquire() as conn, conn.transaction():
        row = await db.upsert_csv_preset(conn, caller.user_id, name, dump(checked), MAX_PRESETS)
    if row is None:
        raise ApiError(
            422, "too_many_presets", f"you have {MAX_PRESETS} presets already; delete one first"
        )
    return preset_view(row)


@router.get("/v1/csv-presets")
async def list_presets(caller: CurrentUser, pool: Db) -> list[dict[str, Any]]:
    """Your saved CSV column mappings, by name."""
    return [preset_view(row) for row in await db.list_csv_presets(pool, caller.user_id)]


@router.get("/v1/csv-presets/{name}")
async def get_preset(name: str, caller: CurrentUser, pool: Db) -> dict[str, Any]:
    """One of your saved CSV column mappings."""
    row = await db.get_csv_preset(pool, caller.user_id, name)
    if row is None:
        raise ApiError(404, "not_found", "no such preset")
    return preset_view(row)


@router.delete("/v1/csv-presets/{name}", status_code=204)
async def delete_preset(name: str, caller: CurrentUser, pool: Db) -> None:
    """Delete one of your saved CSV column mappings."""
    if not await db.delete_csv_preset(pool, caller.user_id, name):
        raise ApiError(404, "not_found", "no such preset")


@router.post("/v1/imports/preview", openapi_extra=_PREVIEW_BODY)
async def preview_import(
    request: Request,
    caller: CurrentUser,
    pool: Db,
    settings: SettingsDep,
    rows: Annotated[int, Query(ge=1, le=MAX_PREVIEW_ROWS)] = PREVIEW_ROWS,
) -> dict[str, list[dict[str, Any]]]:
    """A CSV file's first rows as they would be imported; nothing is stored or queued."""
    head = incoming_path(settings.upload_dir, f"preview-{uuid4()}")
    try:
        form = await receive_form(
            request,
            head,
            max_file_bytes=settings.max_upload_bytes,
            max_field_bytes=settings.max_field_bytes,
            keep_file_bytes=PREVIEW_HEAD_BYTES,
        )
        if form.file is None:
            raise ApiError(422, "invalid_request", "form field 'file' is required")
        mapping = await form_mapping(form.fields, pool, caller.user_id)
        check_csv_header(head, mapping)
        shown = preview_rows(head, mapping, rows, cut=form.file.size > PREVIEW_HEAD_BYTES)
    finally:
        head.unlink(missing_ok=True)
    return {"rows": shown}
