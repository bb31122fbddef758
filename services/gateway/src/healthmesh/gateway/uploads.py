"""Receiving multipart uploads as a stream: the file part goes straight to disk chunk by chunk,
with the size limit enforced as bytes arrive, so a 4 GB export never sits in memory."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from healthmesh.common.http import ApiError

MAX_PARTS = 16
INCOMING = ".incoming"
"""Under the upload store: a request's file part while it is checked, one file per request."""
FILE_PART = {"type": "string", "format": "binary"}
"""A form's file part, in OpenAPI."""


def incoming_path(upload_dir: Path, name: str) -> Path:
    return upload_dir / INCOMING / name


def too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"uploads are limited to {max_bytes} bytes")


def multipart_body(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """A route's `openapi_extra` for a multipart/form-data body, which the route reads itself
    (`receive_form`), so FastAPI cannot describe it."""
    schema = {"type": "object", "required": required, "properties": properties}
    return {
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}
    }


@dataclass
class ReceivedFile:
    path: Path
    filename: str
    size: int


@dataclass
class ReceivedForm:
    fields: dict[str, str] = field(default_factory=dict)
    file: ReceivedFile | None = None


async def receive_form(
    request: Request,
    file_path: Path,
    *,
    max_file_bytes: int,
    max_field_bytes: int,
    keep_file_bytes: int | None = None,
) -> ReceivedForm:
    """Parse `request` as multipart/form-data, writing the part named `file` to `file_path`.

    With `keep_file_bytes`, only the file's first bytes reach the disk and the rest is read and
    dropped (a preview needs only the head); `size` still counts every byte sent.
    On any error the partial file is removed and an ApiError (413 or 422) says why.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise ApiError(415, "unsupported_media_type", "send the upload as multipart/form-data")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_file_bytes + max_field_bytes:
        raise too_large(max_file_bytes)

    events: list[tuple[str, bytes]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        events.append(("header", bytes(header_field).lower() + b"\0" + bytes(header_value)))
        header_field.clear()
        header_value.clear()

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": lambda: events.append(("begin", b"")),
            "on_part_data": lambda data, start, end: events.append(("data", data[start:end])),
            "on_part_end": lambda: events.append(("end", b"")),
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
        },
    )
    form = ReceivedForm()
    file_path.parent.mkdir(parents=True, exist_ok=True)
    out = None
    name = ""
    value = bytearray()
    parts = 0
    try:
        async for chunk in request.stream():
            _feed(parser, chunk)
            for kind, data in events:
                if kind == "begin":
                    parts += 1
                    if parts > MAX_PARTS:
                        raise ApiError(422, "invalid_request", "too many form parts")
                    name, value = "", bytearray()
                elif kind == "header":
                    key, _, raw = data.partition(b"\0")
                    if key == b"content-disposition":
                        _, disposition = parse_options_header(raw)
                        name = disposition.get(b"name", b"").decode()
                        if b"filename" in disposition:
                            filename = disposition[b"filename"].decode(errors="replace")
                            if name != "file" or form.file is not None:
                                raise ApiError(
                                    422, "invalid_request", "send one file, named 'file'"
                                )
                            out = file_path.open("wb")
                            form.file = ReceivedFile(file_path, filename, 0)
                elif kind == "data":
                    if out is not None and form.file is not None:
                        form.file.size += len(data)
                        if form.file.size > max_file_bytes:
                            raise too_large(max_file_bytes)
                        before = form.file.size - len(data)
                        room = len(data) if keep_file_bytes is None else keep_file_bytes - before
                        if room > 0:
                            out.write(data[:room])
                    else:
                        value.extend(data)
                        if len(value) > max_field_bytes:
                            raise ApiError(
                                413, "payload_too_large", f"form field {name!r} too large"
                            )
                elif kind == "end":
                    if out is not None:
                        out.close()
                        out = None
                    elif name:
                        form.fields[name] = value.decode("utf-8", errors="replace")
            events.clear()
        _feed(parser, None)
    except BaseException:
        if out is not None:
            out.close()
        file_path.unlink(missing_ok=True)  # noqa: ASYNC240 - local disk, on failure only
        raise
    return form


def _feed(parser: MultipartParser, chunk: bytes | None) -> None:
    try:
        if chunk is None:
            parser.finalize()
        else:
            parser.write(chunk)
    except MultipartParseError as exc:
        raise ApiError(422, "invalid_request", f"unreadable multipart body: {exc}") from None
