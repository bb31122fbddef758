"""PostgreSQL pools (asyncpg) with JSON codecs, opened in a service's lifespan."""

from importlib.resources.abc import Traversable

import asyncpg
import orjson

from healthmesh.common.migrations import load_migrations, migrate


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
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
