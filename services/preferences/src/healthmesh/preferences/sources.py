"""`GET /v1/sources`: every source HealthMesh can read, how it is reached, and what it provides
(from the capabilities this service owns)."""

from fastapi import APIRouter
from pydantic import BaseModel

from healthmesh.common.vocabulary import METRICS
from healthmesh.preferences import db
from healthmesh.preferences.deps import CurrentCaller, Db

router = APIRouter(tags=["sources"])

OAUTH_SOURCES = frozenset({"oura", "whoop", "fitbit", "withings", "strava"})


class Source(BaseModel):
    id: str
    kind: str
    categories: list[str]
    metrics: list[str]


@router.get("/v1/sources")
async def list_sources(caller: CurrentCaller, pool: Db) -> list[Source]:
    """Every source, `oauth` (connect it) or `file` (upload it), with the categories and the
    metrics it really yields (a category listed here does not mean every metric of it)."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        capabilities = await db.capabilities(conn)
        provides = await db.metric_capabilities(conn)
    return [
        Source(
            id=source,
            kind="oauth" if source in OAUTH_SOURCES else "file",
            categories=sorted(categories),
            metrics=_known_sorted(provides.get(source, frozenset())),
        )
        for source, categories in sorted(capabilities.items())
    ]


def _known_sorted(metrics: frozenset[str]) -> list[str]:
    """By name; a metric the vocabulary does not (or no longer) define is left out."""
    return sorted(m for m in metrics if m in METRICS)
