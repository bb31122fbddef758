"""The caller's preferences as the gateway reads them: the preferences service's read model
(`preferences.effective_v1`, its migrations applied by path) over a real PostgreSQL."""

from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from healthmesh.common.db import apply_migrations
from healthmesh.gateway import db

pytestmark = pytest.mark.integration

MIGRATIONS = (
    Path(__file__).resolve().parents[2] / "preferences/src/healthmesh/preferences/migrations"
)


async def test_the_callers_choices_and_the_defaults_for_the_rest(pool: asyncpg.Pool) -> None:
    await apply_migrations(pool, "preferences", MIGRATIONS)
    ada, bob = uuid4(), uuid4()
    await pool.execute(
        """INSERT INTO preferences.user_priorities (user_id, category, sources, fallback)
           VALUES ($1, 'sleep', ARRAY['withings', 'oura'], false)""",
        ada,
    )
    await pool.execute(
        """INSERT INTO preferences.user_overrides (user_id, metric, sources)
           VALUES ($1, 'steps', ARRAY['fitbit'])""",
        ada,
    )
    mine = await db.caller_preferences(pool, ada)
    assert mine["categories"]["sleep"] == {
        "sources": ["withings", "oura"],
        "fallback": False,
        "default": False,
    }
    body = mine["categories"]["body"]  # not chosen: the documented default, Withings first
    assert (body["sources"][0], body["fallback"], body["default"]) == ("withings", True, True)
    assert set(mine["categories"]) == {
        "activity",
        "sleep",
        "body",
        "heart",
        "recovery",
        "nutrition",
    }
    assert mine["overrides"] == {"steps": ["fitbit"]}
    # Another user sees none of it.
    theirs = await db.caller_preferences(pool, bob)
    assert theirs["categories"]["sleep"]["default"] is True
    assert theirs["overrides"] == {}


async def test_the_fake_preferences_default_to_the_real_defaults(
    pool: asyncpg.Pool, default_preferences: dict[str, Any]
) -> None:
    """The gateway's other tests answer preferences with a fake (conftest.DEFAULT_ORDER): it
    must not drift from what the read model really answers a user who chose nothing."""
    await apply_migrations(pool, "preferences", MIGRATIONS)
    assert await db.caller_preferences(pool, uuid4()) == default_preferences
