"""Streaming multipart uploads: the file goes to disk as it arrives, limits hold mid-stream."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from healthmesh.common.http import install_error_handlers
from healthmesh.gateway.uploads import receive_form


def make_app(target: Path, max_file_bytes: int, keep_file_bytes: int | None = None) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/upload")
    async def upload(request: Request) -> dict[str, Any]:
        form = await receive_form(
            request,
            target,
            max_file_bytes=max_file_bytes,
            max_field_bytes=1024,
            keep_file_bytes=keep_file_bytes,
        )
        return {
            "fields": form.fields,
            "size": form.file.size if form.file else None,
            "filename": form.file.filename if form.file else None,
        }

    return app


async def post(app: FastAPI, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post("/upload", **kwargs)


async def test_the_file_lands_on_disk_and_the_fields_are_read(tmp_path: Path) -> None:
    target = tmp_path / "in" / "upload"
    body = b"Date,Steps\n" + b"2024-03-01,1\n" * 50_000
    answer = await post(
        make_app(target, 10_000_000),
        data={"kind": "csv", "mapping": '{"a": 1}'},
        files={"file": ("steps.csv", body, "text/csv")},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "fields": {"kind": "csv", "mapping": '{"a": 1}'},
        "size": len(body),
        "filename": "steps.csv",
    }
    assert target.read_bytes() == body


async def test_a_file_over_the_limit_is_refused_and_nothing_stays_on_disk(tmp_path: Path) -> None:
    target = tmp_path / "upload"

    async def chunks() -> AsyncIterator[bytes]:
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x.csv"\r\n\r\n'
        for _ in range(100):
            yield b"x" * 10_000
        yield b"\r\n--b--\r\n"

    answer = await post(
        make_app(target, 50_000),
        content=chunks(),
        headers={"content-type": "multipart/form-data; boundary=b"},
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert not target.exists()


async def test_a_head_only_upload_keeps_the_first_bytes_and_counts_them_all(
    tmp_path: Path,
) -> None:
    target = tmp_path / "head"
    body = bytes(range(256)) * 200  # 51,200 bytes
    answer = await post(
        make_app(target, 100_000, keep_file_bytes=1000),
        files={"file": ("x.csv", body, "text/csv")},
    )
    assert answer.json()["size"] == 51_200
    assert target.read_bytes() == body[:1000]


async def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    answer = await post(
        make_app(tmp_path / "upload", 10),
        files={"file": ("x.csv", b"y" * 5000, "text/csv")},
    )
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"json": {"kind": "csv"}}, 415),
        ({"files": [("file", ("a", b"1")), ("file", ("b", b"2"))]}, 422),
        ({"files": {"other": ("a", b"1")}}, 422),
    ],
)
async def test_malformed_uploads_are_refused(
    tmp_path: Path, kwargs: dict[str, Any], status: int
) -> None:
    target = tmp_path / "upload"
    answer = await post(make_app(target, 1_000_000), **kwargs)
    assert answer.status_code == status, answer.text
    assert not target.exists()
