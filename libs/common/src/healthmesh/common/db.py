"""PostgreSQL pools (asyncpg) with JSON codecs, opened in a service's lifespan."""

from importlib.resources.abc import Traversable

import asyncpg
import orjson

from healthmesh.common.migrations import load_migrations, migrate


async def _init_connection(conn: asyncpg.Connection) -> None:
    """JSON codecs in the binary format, so JSON columns also work with COPY (binary only);
    binary jsonb is a version byte (1) followed by the JSON text."""
    await conn.set_type_codec(
        "json", encoder=orjson.dumps, decoder=orjson.loads, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: b"\x01" + orjson.dumps(value),
        decoder=lambda data: orjson.loads(data[1:]),
        schema="pg_catalog",
        format="binary",
    )


async def open_pool(database_url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        database_url, min_size=min_size, max_size=max_size, init=_init_connection
    )
    assert pool is not None
    return pool


async def apply_migrations(pool: asyncpg.Pool, schema: str, folder: Traversable) -> list[str]:
    async with pool.acquire() as conn:
        return await migrate(conn, schema, load_migrations(folder))
