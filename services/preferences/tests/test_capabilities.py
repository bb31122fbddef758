"""The capability tables the migrations seed agree with each other and with the vocabulary."""

import asyncpg
import pytest
from fastapi import FastAPI

from healthmesh.common.vocabulary import METRICS
from healthmesh.preferences import db

pytestmark = pytest.mark.integration

# What the normalizer's mappers emit (services/normalizer/.../sources/<source>.py), read by hand.
EXPECTED = {
    "strava": {"workout"},
    "myfitnesspal": {
        "steps",
        "workout",
        "body_mass",
        "body_fat",
        "energy_intake",
        "protein",
        "carbohydrate",
        "fat",
        "fiber",
        "sugar",
        "sodium",
    },
    "oura": {
        "steps",
        "active_energy",
        "total_energy",
        "active_minutes",
        "workout",
        "sleep_session",
        "sleep_duration",
        "heart_rate",
        "resting_heart_rate",
        "hrv_rmssd",
        "spo2",
        "respiratory_rate",
        "readiness",
    },
}


async def test_each_sources_categories_are_those_of_its_metrics(
    app: FastAPI, database_url: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        categories = await db.capabilities(conn)
        provides = await db.metric_capabilities(conn)
    finally:
        await conn.close()
    assert set(categories) == set(provides)
    for source, metrics in provides.items():
        assert metrics <= set(METRICS), f"{source}: unknown metrics {metrics - set(METRICS)}"
        assert categories[source] == {METRICS[m].category for m in metrics}, source
    assert provides["csv"] == set(METRICS)  # a CSV mapping may name any metric
    for source, expected in EXPECTED.items():
        assert provides[source] == expected, source


async def test_every_source_of_a_category_is_in_its_default_order(
    app: FastAPI, database_url: str
) -> None:
    """So a user who chose nothing sees the data of every source they have."""
    conn = await asyncpg.connect(database_url)
    try:
        categories = await db.capabilities(conn)
        defaults = await db.default_priorities(conn)
    finally:
        await conn.close()
    for category, priority in defaults.items():
        able = {source for source, provided in categories.items() if category in provided}
        assert sorted(priority.sources) == sorted(able), category
        assert priority.fallback, category
    assert set(defaults) == {d.category for d in METRICS.values()}
