"""Resumable uploads (resumable.py): declare, append chunks at the reported offset, ask where it
stands, abandon; a completed upload is then imported with `POST /v1/imports` and `upload_id`."""

from typing import Any
from uuid import uuid4

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from healthmesh.common.http import ApiError, error_body
from healthmesh.gateway import db, resumable
from healthmesh.gateway.deps import CurrentUser, Db, SettingsDep, UploadWriters
from healthmesh.gateway.resumable import CHUNK_TYPE, Upload
from healthmesh.gateway.uploads import too_large

router = APIRouter(tags=["uploads"])


class NewUpload(BaseModel):
    length: int = Field(gt=0, description="The whole file's size in bytes.")
    filename: str = Field("", max_length=255, description="Shown on the import later.")


_CHUNK_BODY = {
    "parameters": [
        {
            "name": "Upload-Offset",
            "in": "header",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
            "description": "Where this chunk starts: the upload's current offset.",
        }
    ],
    "requestBody": {
        "required": True,
        "content": {CHUNK_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    },
}


def _answer(upload: Upload, status: int = 200) -> JSONResponse:
    return JSONResponse(upload.view(), status, headers=upload.headers())


def _header_int(request: Request, name: str) -> int | None:
    value = request.headers.get(name, "")
    return int(value) if value.isdigit() else None


@router.post("/v1/uploads", status_code=201)
async def create_upload(
    body: NewUpload, caller: CurrentUser, pool: Db, settings: SettingsDep
) -> JSONResponse:
    """Declare an upload of `length` bytes; its chunks follow with PATCH, from offset 0."""
    if body.length > settings.max_upload_bytes:
        raise too_large(settings.max_upload_bytes)
    upload_id = uuid4()
    path = resumable.upload_path(settings.upload_dir, upload_id)
    resumable.create_file(path)
    try:
        row = await db.insert_upload(
            pool, upload_id, caller.user_id, body.filename, body.length, settings.upload_expiry_s
        )
    except BaseException:
        resumable.remove_file(path)
        raise
    answer = _answer(Upload.of(row), 201)
    answer.headers["Location"] = f"/v1/uploads/{upload_id}"
    return answer


@router.patch("/v1/uploads/{upload_id}", openapi_extra=_CHUNK_BODY)
async def append_chunk(
    upload_id: str,
    request: Request,
    caller: CurrentUser,
    pool: Db,
    writers: UploadWriters,
    settings: SettingsDep,
) -> JSONResponse:
    """Append the body at `Upload-Offset`, streamed to disk; a cut connection keeps what came."""
    key = resumable.parse_id(upload_id)
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if content_type != CHUNK_TYPE:
        raise ApiError(415, "unsupported_media_type", f"send the chunk as {CHUNK_TYPE}")
    claimed = _header_int(request, "upload-offset")
    if claimed is None:
        raise ApiError(422, "invalid_request", "header Upload-Offset (a byte offset) is required")
    size = _header_int(request, "content-length")
    if size is None:
        raise ApiError(411, "length_required", "send the chunk with a Content-Length")
    upload = await resumable.find(pool, key, caller.user_id)  # before the lock: 404, never 423
    if claimed + size > upload.length:
        raise ApiError(
            413,
            "payload_too_large",
            f"the chunk would end at byte {claimed + size}, past the upload's {upload.length}",
        )
    async with resumable.exclusive(writers, key) as conn:
        upload = await resumable.find(conn, key, caller.user_id)
        if claimed != upload.offset:
            return _offset_conflict(upload)
        if size:
            upload = await resumable.receive_chunk(
                request,
                conn,
                upload,
                caller.user_id,
                path=resumable.upload_path(settings.upload_dir, key),
                end=claimed + size,
                checkpoint_bytes=settings.upload_checkpoint_bytes,
                expiry_s=settings.upload_expiry_s,
            )
    return _answer(upload)


def _offset_conflict(upload: Upload) -> JSONResponse:
    body: dict[str, Any] = error_body(
        "offset_mismatch", f"the upload is at byte {upload.offset}; send the chunk from there"
    )
    body["offset"] = upload.offset
    return JSONResponse(body, 409, headers=upload.headers())


@router.get("/v1/uploads/{upload_id}")
async def get_upload(upload_id: str, caller: CurrentUser, pool: Db) -> JSONResponse:
    """Where the upload stands: bytes received (`offset`), `length`, `complete`, `expires_at`."""
    return _answer(await resumable.find(pool, resumable.parse_id(upload_id), caller.user_id))


@router.head("/v1/uploads/{upload_id}")
async def head_upload(upload_id: str, caller: CurrentUser, pool: Db) -> Response:
    """The offset to continue from (`Upload-Offset`) and the length, as headers."""
    upload = await resumable.find(pool, resumable.parse_id(upload_id), caller.user_id)
    return Response(status_code=200, headers=upload.headers())


@router.delete("/v1/uploads/{upload_id}", status_code=204)
async def delete_upload(
    upload_id: str, caller: CurrentUser, pool: Db, writers: UploadWriters, settings: SettingsDep
) -> Response:
    """Abandon the upload: its bytes are removed."""
    key = resumable.parse_id(upload_id)
    await resumable.find(pool, key, caller.user_id)  # before the lock: 404, never 423
    async with resumable.exclusive(writers, key) as conn:
        if not await db.delete_upload(conn, key, caller.user_id):
            raise resumable.no_such_upload()
    resumable.remove_file(resumable.upload_path(settings.upload_dir, key))
    return Response(status_code=204)
