"""Throwaway databases on a shared server: each test, end-to-end stack and benchmark run gets
its own, so runs never see each other's rows."""

import uuid

import asyncpg


def with_database(url: str, name: str) -> str:
    """`url` pointing at database `name` (its query string kept)."""
    base, _, query = url.partition("?")
    return f"{base.rsplit('/', 1)[0]}/{name}" + (f"?{query}" if query else "")


async def create_database(admin_database_url: str, prefix: str = "test") -> str:
    """Create a fresh, empty database; return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(admin_database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return with_database(admin_database_url, name)


async def drop_database(admin_database_url: str, url: str) -> None:
    """Drop the database `url` names, closing whatever is still connected to it."""
    name = url.partition("?")[0].rsplit("/", 1)[1]
    admin = await asyncpg.connect(admin_database_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()
