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
    """Every source, `oauth` (connect it) or `file` (upload it), with its categories and metrics."""
    capabilities = await db.capabilities(pool)
    return [
        Source(
            id=source,
            kind="oauth" if source in OAUTH_SOURCES else "file",
            categories=sorted(categories),
            metrics=sorted(m for m, d in METRICS.items() if d.category in categories),
        )
        for source, categories in sorted(capabilities.items())
    ]
