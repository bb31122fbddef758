"""All SQL of the preferences service: small functions taking a pool or a connection.

Every query about a user's preferences is filtered by that user's id.
"""

from typing import TypeAlias
from uuid import UUID

import asyncpg

from healthmesh.preferences.priorities import Capabilities, MetricCapabilities, Priority

Executor: TypeAlias = "asyncpg.Pool | asyncpg.Connection"


async def capabilities(db: Executor) -> Capabilities:
    found: dict[str, set[str]] = {}
    for row in await db.fetch("SELECT source, category FROM preferences.source_capabilities"):
        found.setdefault(row["source"], set()).add(row["category"])
    return {source: frozenset(categories) for source, categories in found.items()}


async def metric_capabilities(db: Executor) -> MetricCapabilities:
    found: dict[str, set[str]] = {}
    for row in await db.fetch("SELECT source, metric FROM preferences.source_metrics"):
        found.setdefault(row["source"], set()).add(row["metric"])
    return {source: frozenset(metrics) for source, metrics in found.items()}


async def default_priorities(db: Executor) -> dict[str, Priority]:
    rows = await db.fetch(
        "SELECT category, sources, fallback FROM preferences.default_priorities ORDER BY category"
    )
    return {r["category"]: Priority(list(r["sources"]), r["fallback"]) for r in rows}


async def effective(db: Executor, user_id: UUID) -> list[asyncpg.Record]:
    """The user's effective preferences (migration 004's read model, the gateway reads it too):
    rows of kind 'category' then 'override', each with its name, sources and fallback."""
    rows: list[asyncpg.Record] = await db.fetch(
        "SELECT kind, name, sources, fallback, is_default FROM preferences.effective_v1($1)",
        user_id,
    )
    return rows


async def upsert_user_priority(
    db: Executor, user_id: UUID, category: str, priority: Priority
) -> Priority:
    row = await db.fetchrow(
        "INSERT INTO preferences.user_priorities (user_id, category, sources, fallback) "
        "VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, category) DO UPDATE "
        "SET sources = excluded.sources, fallback = excluded.fallback, updated_at = now() "
        "RETURNING sources, fallback",
        user_id,
        category,
        priority.sources,
        priority.fallback,
    )
    return Priority(list(row["sources"]), row["fallback"])


async def delete_user_priority(db: Executor, user_id: UUID, category: str) -> bool:
    """Whether there was a choice to delete."""
    deleted = await db.fetchval(
        "DELETE FROM preferences.user_priorities WHERE user_id = $1 AND category = $2 "
        "RETURNING true",
        user_id,
        category,
    )
    return deleted is not None


async def upsert_user_override(
    db: Executor, user_id: UUID, metric: str, sources: list[str]
) -> list[str]:
    stored = await db.fetchval(
        "INSERT INTO preferences.user_overrides (user_id, metric, sources) VALUES ($1, $2, $3) "
        "ON CONFLICT (user_id, metric) DO UPDATE "
        "SET sources = excluded.sources, updated_at = now() RETURNING sources",
        user_id,
        metric,
        sources,
    )
    return list(stored)


async def delete_user_override(db: Executor, user_id: UUID, metric: str) -> bool:
    """Whether there was an override to delete."""
    deleted = await db.fetchval(
        "DELETE FROM preferences.user_overrides WHERE user_id = $1 AND metric = $2 RETURNING true",
        user_id,
        metric,
    )
    return deleted is not None
