"""The preferences service's HTTP API: the caller's source priorities and per-metric overrides."""

from fastapi import APIRouter, Response
from pydantic import BaseModel

from healthmesh.common.http import ApiError
from healthmesh.preferences import db
from healthmesh.preferences.deps import CurrentCaller, Db
from healthmesh.preferences.priorities import (
    PreferenceError,
    Priority,
    check_override,
    check_sources,
    effective_priorities,
)

router = APIRouter(prefix="/v1/preferences")


class CategoryPriority(BaseModel):
    sources: list[str]
    fallback: bool


class StoredCategoryPriority(CategoryPriority):
    category: str


class Preferences(BaseModel):
    categories: dict[str, CategoryPriority]
    overrides: dict[str, list[str]]


class OverrideSources(BaseModel):
    sources: list[str]


class StoredOverride(OverrideSources):
    metric: str


def _invalid(exc: PreferenceError) -> ApiError:
    return ApiError(422, "invalid_preference", str(exc))


async def _known_category(conn: db.Executor, category: str) -> None:
    known = await db.default_priorities(conn)
    if category not in known:
        raise ApiError(
            404, "unknown_category", f"unknown category {category!r}; known: {', '.join(known)}"
        )


@router.get("")
async def get_preferences(caller: CurrentCaller, pool: Db) -> Preferences:
    """The caller's source priority per category (their choice, else the default) and overrides."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        defaults = await db.default_priorities(conn)
        chosen = await db.user_priorities(conn, caller.user_id)
        overrides = await db.user_overrides(conn, caller.user_id)
    categories = {
        category: CategoryPriority(sources=priority.sources, fallback=priority.fallback)
        for category, priority in effective_priorities(defaults, chosen).items()
    }
    return Preferences(categories=categories, overrides=overrides)


@router.put("/overrides/{metric}")
async def put_override(
    metric: str, body: OverrideSources, caller: CurrentCaller, pool: Db
) -> StoredOverride:
    """Set which sources answer one metric, overriding its category's priority."""
    async with pool.acquire() as conn:
        try:
            check_override(metric, body.sources, await db.capabilities(conn))
        except PreferenceError as exc:
            raise _invalid(exc) from None
        stored = await db.upsert_user_override(conn, caller.user_id, metric, body.sources)
    return StoredOverride(metric=metric, sources=stored)


@router.delete("/overrides/{metric}", status_code=204)
async def delete_override(metric: str, caller: CurrentCaller, pool: Db) -> Response:
    """Remove the caller's override of one metric (its category's priority applies again)."""
    await db.delete_user_override(pool, caller.user_id, metric)
    return Response(status_code=204)


@router.put("/{category}")
async def put_category(
    category: str, body: CategoryPriority, caller: CurrentCaller, pool: Db
) -> StoredCategoryPriority:
    """Set the caller's ordered sources for one category, and whether to fall back."""
    async with pool.acquire() as conn:
        await _known_category(conn, category)
        try:
            check_sources(category, body.sources, await db.capabilities(conn))
        except PreferenceError as exc:
            raise _invalid(exc) from None
        stored = await db.upsert_user_priority(
            conn, caller.user_id, category, Priority(body.sources, body.fallback)
        )
    return StoredCategoryPriority(
        category=category, sources=stored.sources, fallback=stored.fallback
    )


@router.delete("/{category}", status_code=204)
async def delete_category(category: str, caller: CurrentCaller, pool: Db) -> Response:
    """Forget the caller's choice for one category (the default applies again)."""
    async with pool.acquire() as conn:
        await _known_category(conn, category)
        await db.delete_user_priority(conn, caller.user_id, category)
    return Response(status_code=204)
