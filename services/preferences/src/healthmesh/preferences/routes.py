"""The preferences service's HTTP API: the caller's source priorities and per-metric overrides."""

from typing import cast

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from healthmesh.common.http import ApiError
from healthmesh.common.vocabulary import Category
from healthmesh.preferences import db
from healthmesh.preferences.deps import ChangesDep, CurrentCaller, Db
from healthmesh.preferences.priorities import (
    PreferenceError,
    Priority,
    check_override,
    check_sources,
)

router = APIRouter(prefix="/v1/preferences")


class CategoryPriority(BaseModel):
    sources: list[str]
    fallback: bool


class StoredCategoryPriority(CategoryPriority):
    category: str


class EffectivePriority(CategoryPriority):
    default: bool = Field(
        description="True when the caller chose nothing for the category and the documented "
        "default order applies (the gateway then uses only the sources the caller has data from)."
    )


class Preferences(BaseModel):
    categories: dict[str, EffectivePriority]
    overrides: dict[str, list[str]]


class OverrideSources(BaseModel):
    sources: list[str]


class StoredOverride(OverrideSources):
    metric: str


def _invalid(exc: PreferenceError) -> ApiError:
    return ApiError(422, "invalid_preference", str(exc))


async def _known_category(conn: db.Executor, category: str) -> Category:
    known = await db.default_priorities(conn)
    if category not in known:
        raise ApiError(
            404, "unknown_category", f"unknown category {category!r}; known: {', '.join(known)}"
        )
    return cast(Category, category)  # the defaults' categories are the vocabulary's


@router.get("")
async def get_preferences(caller: CurrentCaller, pool: Db) -> Preferences:
    """The caller's source priority per category (their choice, else the default) and overrides."""
    rows = await db.effective(pool, caller.user_id)
    categories = {
        r["name"]: EffectivePriority(
            sources=r["sources"], fallback=r["fallback"], default=r["is_default"]
        )
        for r in rows
        if r["kind"] == "category"
    }
    overrides = {r["name"]: list(r["sources"]) for r in rows if r["kind"] == "override"}
    return Preferences(categories=categories, overrides=overrides)


@router.put("/overrides/{metric}")
async def put_override(
    metric: str, body: OverrideSources, caller: CurrentCaller, pool: Db, changes: ChangesDep
) -> StoredOverride:
    """Set which sources answer one metric, overriding its category's priority; 422 with the
    reason for a source that never yields that metric."""
    async with pool.acquire() as conn:
        try:
            check_override(metric, body.sources, await db.metric_capabilities(conn))
        except PreferenceError as exc:
            raise _invalid(exc) from None
        async with conn.transaction():
            stored = await db.upsert_user_override(conn, caller.user_id, metric, body.sources)
            await changes.override(conn, caller.user_id, metric, stored)
    changes.committed()
    return StoredOverride(metric=metric, sources=stored)


@router.delete("/overrides/{metric}", status_code=204)
async def delete_override(
    metric: str, caller: CurrentCaller, pool: Db, changes: ChangesDep
) -> Response:
    """Remove the caller's override of one metric (its category's priority applies again)."""
    async with pool.acquire() as conn, conn.transaction():
        deleted = await db.delete_user_override(conn, caller.user_id, metric)
        if deleted:
            await changes.override(conn, caller.user_id, metric)
    if deleted:
        changes.committed()
    return Response(status_code=204)


@router.put("/{category}")
async def put_category(
    category: str, body: CategoryPriority, caller: CurrentCaller, pool: Db, changes: ChangesDep
) -> StoredCategoryPriority:
    """Set the caller's ordered sources for one category, and whether to fall back."""
    async with pool.acquire() as conn:
        known = await _known_category(conn, category)
        try:
            check_sources(category, body.sources, await db.capabilities(conn))
        except PreferenceError as exc:
            raise _invalid(exc) from None
        async with conn.transaction():
            stored = await db.upsert_user_priority(
                conn, caller.user_id, category, Priority(body.sources, body.fallback)
            )
            await changes.priority(conn, caller.user_id, known, stored.sources, stored.fallback)
    changes.committed()
    return StoredCategoryPriority(
        category=category, sources=stored.sources, fallback=stored.fallback
    )


@router.delete("/{category}", status_code=204)
async def delete_category(
    category: str, caller: CurrentCaller, pool: Db, changes: ChangesDep
) -> Response:
    """Forget the caller's choice for one category (the default applies again)."""
    async with pool.acquire() as conn:
        known = await _known_category(conn, category)
        async with conn.transaction():
            deleted = await db.delete_user_priority(conn, caller.user_id, category)
            if deleted:
                await changes.priority(conn, caller.user_id, known)
    if deleted:
        changes.committed()
    return Response(status_code=204)
