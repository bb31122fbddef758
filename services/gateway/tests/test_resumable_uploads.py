"""Resumable uploads over the real gateway app, its PostgreSQL schema and the broker: chunks at
offsets, a connection cut mid-chunk, the lock on one upload, expiry, and the import that follows."""

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from healthmesh.devstack.processes import free_port
from healthmesh.devstack.testing import eventually
from healthmesh.gateway.resumable import CHUNK_TYPE, exclusive, sweep
from healthmesh.gateway.settings import Settings

pytestmark = pytest.mark.integration

PostImport = Callable[..., Awaitable[tuple[str, dict[str, Any]]]]
"""conftest.post_import: posts an import, answers its id and its `imports.requested` message."""

MAX_UPLOAD = 100_000
MAPPING = '{"timestamp": "Date", "columns": {"Steps": {"metric": "steps", "unit": "count"}}}'
CSV = b"Date,Steps\n" + b"".join(b"2024-03-%02d,%d\n" % (day, 1000 + day) for day in range(1, 29))
"""A header of 11 bytes and 28 rows of 16 ("2024-03-01,1001\\n"): 11 + 448 = 459 bytes."""


@pytest.fixture
def checkpoint_bytes() -> int:
    """Large enough that a chunk of these tests is committed at its end only; a test
    parametrizes it to 1 to see every piece committed as it arrives."""
    return 1 << 20


@pytest.fixture
def settings(settings: Settings, checkpoint_bytes: int) -> Settings:
    """The shared settings with a small upload limit and this test's checkpoint size."""
    return settings.model_copy(
        update={"max_upload_bytes": MAX_UPLOAD, "upload_checkpoint_bytes": checkpoint_bytes}
    )


def upload_dir(app: FastAPI) -> Path:
    folder: Path = app.state.settings.upload_dir
    return folder


async def declare(
    client: httpx.AsyncClient, auth: dict[str, str], length: int, filename: str = "steps.csv"
) -> str:
    answer = await client.post(
        "/v1/uploads", json={"length": length, "filename": filename}, headers=auth
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["offset"] == 0 and answer.headers["upload-offset"] == "0"
    assert answer.headers["location"] == f"/v1/uploads/{answer.json()['id']}"
    return str(answer.json()["id"])


async def patch(
    client: httpx.AsyncClient, auth: dict[str, str], upload_id: str, offset: int, chunk: bytes
) -> httpx.Response:
    return await client.patch(
        f"/v1/uploads/{upload_id}",
        content=chunk,
        headers={**auth, "content-type": CHUNK_TYPE, "upload-offset": str(offset)},
    )


async def offset_of(client: httpx.AsyncClient, auth: dict[str, str], upload_id: str) -> int:
    answer = await client.head(f"/v1/uploads/{upload_id}", headers=auth)
    assert answer.status_code == 200, answer.status_code
    return int(answer.headers["upload-offset"])


def form(**fields: str) -> list[tuple[str, tuple[None, str]]]:
    """Multipart fields without a file part (httpx sends plain `data=` url-encoded)."""
    return [(name, (None, value)) for name, value in fields.items()]


async def test_three_chunks_then_an_import(
    app: FastAPI,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    post_import: PostImport,
) -> None:
    upload_id = await declare(client, ada, len(CSV))
    # 459 bytes in chunks of 200, 200 and 59
    for start, end in ((0, 200), (200, 400), (400, 459)):
        answer = await patch(client, ada, upload_id, start, CSV[start:end])
        assert answer.status_code == 200, answer.text
        assert answer.json()["offset"] == end and answer.headers["upload-offset"] == str(end)
    status = (await client.get(f"/v1/uploads/{upload_id}", headers=ada)).json()
    assert (status["offset"], status["length"], status["complete"]) == (459, 459, True)
    assert status["filename"] == "steps.csv"

    # a refused import leaves the upload to be imported again, without uploading again
    wrong = '{"timestamp": "Day", "columns": {"Steps": {"metric": "steps", "unit": "count"}}}'
    refused = await client.post(
        "/v1/imports", files=form(kind="csv", mapping=wrong, upload_id=upload_id), headers=ada
    )
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_mapping"
    assert await offset_of(client, ada, upload_id) == 459

    import_id, request = await post_import(
        files=form(kind="csv", mapping=MAPPING, upload_id=upload_id), headers=ada
    )
    assert (upload_dir(app) / request["path"]).read_bytes() == CSV
    stored = await app.state.pool.fetchrow(
        "SELECT filename, bytes_total FROM gateway.imports WHERE id = $1", UUID(import_id)
    )
    assert (stored["filename"], stored["bytes_total"]) == ("steps.csv", 459)

    # the upload was used up by the import: its id and its own file are gone
    assert (await client.get(f"/v1/uploads/{upload_id}", headers=ada)).status_code == 404
    assert not (upload_dir(app) / ".resumable" / upload_id).exists()
    again = await client.post(
        "/v1/imports", files=form(kind="csv", mapping=MAPPING, upload_id=upload_id), headers=ada
    )
    assert again.status_code == 404


def asgi_scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "PATCH",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("gateway", 80),
    }


async def test_a_chunk_cut_by_a_dropped_connection_keeps_what_arrived(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    """What a server hands the app when a phone's connection drops: the body's pieces so far,
    then `http.disconnect`."""
    upload_id = await declare(client, ada, len(CSV))
    pieces = [CSV[0:100], CSV[100:250], CSV[250:300]]  # 300 of the declared 459 arrive
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": piece, "more_body": True} for piece in pieces
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        pass  # nobody listens any more

    headers = {
        **ada,
        "content-type": CHUNK_TYPE,
        "upload-offset": "0",
        "content-length": str(len(CSV)),
    }
    await app(asgi_scope(f"/v1/uploads/{upload_id}", headers), receive, send)

    assert await offset_of(client, ada, upload_id) == 300
    assert (await patch(client, ada, upload_id, 0, CSV)).status_code == 409
    rest = await patch(client, ada, upload_id, 300, CSV[300:])
    assert rest.status_code == 200 and rest.json()["complete"] is True
    assert (upload_dir(app) / ".resumable" / upload_id).read_bytes() == CSV


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[tuple[str, int]]:
    """The same app behind a real uvicorn, for clients that hang up mid-body."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
    running = uvicorn.Server(config)
    task = asyncio.create_task(running.serve())

    async def started() -> bool:
        return bool(running.started)

    await eventually(started, timeout=10, what="uvicorn listening")
    yield "127.0.0.1", port
    running.should_exit = True
    await task


@pytest.mark.parametrize("checkpoint_bytes", [1])
async def test_over_a_socket_a_chunk_is_durable_as_it_arrives_and_holds_the_upload(
    app: FastAPI,
    client: httpx.AsyncClient,
    ada: dict[str, str],
    server: tuple[str, int],
) -> None:
    upload_id = await declare(client, ada, len(CSV))
    _, writer = await asyncio.open_connection(*server)
    head = (
        f"PATCH /v1/uploads/{upload_id} HTTP/1.1\r\nHost: gateway\r\n"
        f"Authorization: {ada['Authorization']}\r\nContent-Type: {CHUNK_TYPE}\r\n"
        f"Upload-Offset: 0\r\nContent-Length: {len(CSV)}\r\n\r\n"
    )
    writer.write(head.encode() + CSV[:250])
    await writer.drain()

    async def arrived() -> bool:
        return await offset_of(client, ada, upload_id) == 250

    await eventually(arrived, timeout=10, what="the first 250 bytes committed mid-chunk")
    # while that chunk is open, nobody else writes this upload
    locked = await patch(client, ada, upload_id, 250, CSV[250:])
    assert locked.status_code == 423 and locked.json()["error"]["code"] == "upload_locked"

    writer.close()  # the phone loses its connection
    await writer.wait_closed()
    for _ in range(100):  # a client retries while the server notices the hang-up
        rest = await patch(client, ada, upload_id, 250, CSV[250:])
        if rest.status_code != 423:
            break
        await asyncio.sleep(0.05)
    assert rest.status_code == 200, rest.text
    assert rest.json()["complete"] is True
    assert (upload_dir(app) / ".resumable" / upload_id).read_bytes() == CSV


async def test_a_chunk_at_the_wrong_offset_is_refused_with_the_right_one(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    upload_id = await declare(client, ada, len(CSV))
    assert (await patch(client, ada, upload_id, 0, CSV[:100])).status_code == 200
    for offset in (0, 50, 200):
        answer = await patch(client, ada, upload_id, offset, CSV[offset : offset + 10])
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "offset_mismatch"
        assert answer.json()["offset"] == 100 and answer.headers["upload-offset"] == "100"
    assert (upload_dir(app) / ".resumable" / upload_id).read_bytes() == CSV[:100]
    missing = await client.patch(
        f"/v1/uploads/{upload_id}", content=b"x", headers={**ada, "content-type": CHUNK_TYPE}
    )
    assert missing.status_code == 422
    plain = await client.patch(
        f"/v1/uploads/{upload_id}",
        content=b"x",
        headers={**ada, "content-type": "text/plain", "upload-offset": "100"},
    )
    assert plain.status_code == 415


async def test_too_large_is_refused_before_anything_is_written(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    big = await client.post("/v1/uploads", json={"length": MAX_UPLOAD + 1}, headers=ada)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    assert (await client.post("/v1/uploads", json={"length": 0}, headers=ada)).status_code == 422

    upload_id = await declare(client, ada, 100)
    assert (await patch(client, ada, upload_id, 0, b"a" * 60)).status_code == 200
    past = await patch(client, ada, upload_id, 60, b"b" * 41)  # would end at byte 101 of 100
    assert past.status_code == 413
    assert await offset_of(client, ada, upload_id) == 60

    async def unsized() -> AsyncIterator[bytes]:
        yield b"b" * 40

    chunked = await client.patch(
        f"/v1/uploads/{upload_id}",
        content=unsized(),
        headers={**ada, "content-type": CHUNK_TYPE, "upload-offset": "60"},
    )
    assert chunked.status_code == 411
    assert (upload_dir(app) / ".resumable" / upload_id).read_bytes() == b"a" * 60


async def test_another_users_upload_does_not_exist_for_them(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str], bob: dict[str, str]
) -> None:
    upload_id = await declare(client, ada, len(CSV))
    assert (await patch(client, ada, upload_id, 0, CSV)).status_code == 200
    path = f"/v1/uploads/{upload_id}"
    assert (await client.get(path, headers=bob)).status_code == 404
    assert (await client.head(path, headers=bob)).status_code == 404
    assert (await patch(client, bob, upload_id, len(CSV), b"")).status_code == 404
    assert (await client.delete(path, headers=bob)).status_code == 404
    stolen = await client.post(
        "/v1/imports", files=form(kind="csv", mapping=MAPPING, upload_id=upload_id), headers=bob
    )
    assert stolen.status_code == 404
    assert (await client.get("/v1/uploads/not-a-uuid", headers=ada)).status_code == 404
    assert (await client.get(path)).status_code == 401
    assert (await client.get(path, headers=ada)).json()["complete"] is True


async def test_an_import_of_an_unfinished_upload_is_refused(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    upload_id = await declare(client, ada, len(CSV))
    assert (await patch(client, ada, upload_id, 0, CSV[:200])).status_code == 200
    answer = await client.post(
        "/v1/imports", files=form(kind="csv", mapping=MAPPING, upload_id=upload_id), headers=ada
    )
    assert answer.status_code == 409 and answer.json()["error"]["code"] == "upload_incomplete"
    assert "200 of its 459" in answer.json()["error"]["message"]
    assert await offset_of(client, ada, upload_id) == 200
    imported = await app.state.pool.fetchval("SELECT count(*) FROM gateway.imports")
    assert imported == 0
    both = await client.post(
        "/v1/imports",
        data={"kind": "csv", "mapping": MAPPING, "upload_id": upload_id},
        files={"file": ("steps.csv", CSV, "text/csv")},
        headers=ada,
    )
    assert both.status_code == 422


async def test_an_abandoned_upload_is_deleted_with_its_bytes(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    upload_id = await declare(client, ada, len(CSV))
    assert (await patch(client, ada, upload_id, 0, CSV[:100])).status_code == 200
    assert (await client.delete(f"/v1/uploads/{upload_id}", headers=ada)).status_code == 204
    assert (await client.get(f"/v1/uploads/{upload_id}", headers=ada)).status_code == 404
    assert not (upload_dir(app) / ".resumable" / upload_id).exists()
    assert (await client.delete(f"/v1/uploads/{upload_id}", headers=ada)).status_code == 404


async def test_an_expired_upload_is_gone_and_swept_unless_it_is_being_written(
    app: FastAPI, client: httpx.AsyncClient, ada: dict[str, str]
) -> None:
    pool, writers = app.state.pool, app.state.upload_writers
    folder = upload_dir(app) / ".resumable"
    stale, busy, fresh = [await declare(client, ada, len(CSV)) for _ in range(3)]
    for upload_id in (stale, busy, fresh):
        assert (await patch(client, ada, upload_id, 0, CSV[:100])).status_code == 200
    await pool.execute(
        "UPDATE gateway.uploads SET expires_at = now() - interval '1 second' WHERE id = ANY($1)",
        [UUID(stale), UUID(busy)],
    )
    # an expired upload is gone at once, before any sweep
    assert (await client.get(f"/v1/uploads/{stale}", headers=ada)).status_code == 404
    assert (await patch(client, ada, stale, 100, CSV[100:])).status_code == 404

    # bytes whose row is gone (a crash between the two removals) go once untouched long enough
    old_orphan, new_orphan = folder / str(uuid4()), folder / str(uuid4())
    old_orphan.write_bytes(b"x")
    new_orphan.write_bytes(b"x")
    day_ago = time.time() - 86_400 - 60
    os.utime(old_orphan, (day_ago, day_ago))

    async with exclusive(writers, UUID(busy)):  # as a PATCH in progress holds it
        removed = await sweep(pool, writers, upload_dir(app), expiry_s=86_400)
    assert removed == 1
    remaining = {str(r["id"]) for r in await pool.fetch("SELECT id FROM gateway.uploads")}
    assert remaining == {busy, fresh}
    assert sorted(p.name for p in folder.iterdir()) == sorted([busy, fresh, new_orphan.name])
    assert await sweep(pool, writers, upload_dir(app), expiry_s=86_400) == 1  # busy, now free
    assert sorted(p.name for p in folder.iterdir()) == sorted([fresh, new_orphan.name])
    assert await offset_of(client, ada, fresh) == 100
