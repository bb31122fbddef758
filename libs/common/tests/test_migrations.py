import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from healthmesh.common.migrations import MigrationError, load_migrations, migrate

pytestmark = pytest.mark.integration

SCHEMA = "svc"
FIRST = "CREATE TABLE things (id integer PRIMARY KEY, name text NOT NULL);"
# Not idempotent: applying it twice would add a second row.
SECOND = "CREATE TABLE runs (n integer); INSERT INTO runs VALUES (1);"
THIRD = "ALTER TABLE things ADD COLUMN note text;"


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(exist_ok=True)
    for name, sql in files.items():
        (folder / name).write_text(sql, "utf-8")
    return folder


@pytest.fixture
async def conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(database_url)
    try:
        yield connection
    finally:
        await connection.close()


async def _applied(conn: asyncpg.Connection) -> list[str]:
    if await conn.fetchval("SELECT to_regclass($1)", f"{SCHEMA}.schema_migrations") is None:
        return []
    rows = await conn.fetch(f"SELECT name FROM {SCHEMA}.schema_migrations ORDER BY version")
    return [r["name"] for r in rows]


async def test_migrations_apply_in_order_into_the_schema(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = _write(tmp_path, {"002_runs.sql": SECOND, "001_things.sql": FIRST})

    applied = await migrate(conn, SCHEMA, load_migrations(folder))

    assert applied == ["001_things.sql", "002_runs.sql"]
    assert await _applied(conn) == applied
    # Unqualified names land in the service's schema, not in public.
    assert await conn.fetchval("SELECT to_regclass('svc.things')") is not None
    assert await conn.fetchval("SELECT to_regclass('public.things')") is None
    # SET LOCAL ends with the transaction: the connection's search_path is untouched.
    assert "svc" not in await conn.fetchval("SHOW search_path")


async def test_applying_twice_applies_once(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = _write(tmp_path, {"001_things.sql": FIRST, "002_runs.sql": SECOND})

    first = await migrate(conn, SCHEMA, load_migrations(folder))
    second = await migrate(conn, SCHEMA, load_migrations(folder))

    assert first == ["001_things.sql", "002_runs.sql"]
    assert second == []
    assert await conn.fetchval("SELECT count(*) FROM svc.runs") == 1
    assert await _applied(conn) == first


async def test_only_new_migrations_are_applied(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = _write(tmp_path, {"001_things.sql": FIRST, "002_runs.sql": SECOND})
    await migrate(conn, SCHEMA, load_migrations(folder))
    _write(folder, {"003_note.sql": THIRD})

    applied = await migrate(conn, SCHEMA, load_migrations(folder))

    assert applied == ["003_note.sql"]
    assert await conn.fetchval("SELECT count(*) FROM svc.runs") == 1
    await conn.execute("INSERT INTO svc.things (id, name, note) VALUES (1, 'a', 'b')")


async def test_concurrent_runners_apply_each_file_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    folder = _write(
        tmp_path, {"001_things.sql": FIRST, "002_runs.sql": SECOND, "003_note.sql": THIRD}
    )
    migrations = load_migrations(folder)
    a, b = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        results = await asyncio.gather(
            migrate(a, SCHEMA, migrations), migrate(b, SCHEMA, migrations)
        )

        assert sorted(results) == [[], ["001_things.sql", "002_runs.sql", "003_note.sql"]]
        assert await a.fetchval("SELECT count(*) FROM svc.runs") == 1
        assert await _applied(a) == ["001_things.sql", "002_runs.sql", "003_note.sql"]
    finally:
        await a.close()
        await b.close()


async def test_an_edited_applied_migration_is_an_error(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = _write(tmp_path, {"001_things.sql": FIRST})
    await migrate(conn, SCHEMA, load_migrations(folder))
    _write(folder, {"001_things.sql": FIRST + "\n-- tweaked", "002_runs.sql": SECOND})

    with pytest.raises(MigrationError, match=r"001_things\.sql was edited"):
        await migrate(conn, SCHEMA, load_migrations(folder))

    # Nothing after the edited file was applied either.
    assert await _applied(conn) == ["001_things.sql"]
    assert await conn.fetchval("SELECT to_regclass('svc.runs')") is None


async def test_a_failing_migration_leaves_nothing_applied(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = _write(
        tmp_path,
        {
            "001_things.sql": FIRST,
            "002_runs.sql": SECOND,
            "003_broken.sql": "ALTER TABLE no_such_table ADD COLUMN x int;",
        },
    )

    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(conn, SCHEMA, load_migrations(folder))

    assert await conn.fetchval("SELECT to_regnamespace('svc')") is None
    assert await _applied(conn) == []

    (folder / "003_broken.sql").write_text(THIRD, "utf-8")
    applied = await migrate(conn, SCHEMA, load_migrations(folder))
    assert applied == ["001_things.sql", "002_runs.sql", "003_broken.sql"]


async def test_a_failure_after_earlier_runs_keeps_only_the_earlier_runs(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = _write(tmp_path, {"001_things.sql": FIRST})
    await migrate(conn, SCHEMA, load_migrations(folder))
    _write(folder, {"002_runs.sql": SECOND, "003_broken.sql": "SELEC 1;"})

    with pytest.raises(asyncpg.PostgresSyntaxError):
        await migrate(conn, SCHEMA, load_migrations(folder))

    assert await _applied(conn) == ["001_things.sql"]
    assert await conn.fetchval("SELECT to_regclass('svc.runs')") is None


@pytest.mark.parametrize("schema", ["Svc", "svc-x", "svc; DROP TABLE x", "1svc", ""])
async def test_an_invalid_schema_name_is_refused(
    conn: asyncpg.Connection, tmp_path: Path, schema: str
) -> None:
    folder = _write(tmp_path, {"001_things.sql": FIRST})

    with pytest.raises(MigrationError, match="invalid schema name"):
        await migrate(conn, schema, load_migrations(folder))


def test_load_orders_by_version_and_ignores_other_files(tmp_path: Path) -> None:
    folder = _write(
        tmp_path,
        {
            "010_ten.sql": "SELECT 10;",
            "002_two.sql": "SELECT 2;",
            "001_one.sql": "SELECT 1;",
            "README.md": "notes",
            "__init__.py": "",
        },
    )
    for n in range(3, 10):
        _write(folder, {f"{n:03d}_step.sql": f"SELECT {n};"})

    migrations = load_migrations(folder)

    assert [m.version for m in migrations] == list(range(1, 11))
    assert migrations[0].name == "001_one.sql"
    assert migrations[0].sql == "SELECT 1;"
    assert migrations[-1].name == "010_ten.sql"


def test_checksum_follows_the_content(tmp_path: Path) -> None:
    folder = _write(tmp_path, {"001_things.sql": FIRST})
    before = load_migrations(folder)[0].checksum
    assert load_migrations(folder)[0].checksum == before

    _write(folder, {"001_things.sql": FIRST + " "})
    assert load_migrations(folder)[0].checksum != before


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"001_one.sql": "", "003_three.sql": ""}, "expected migration 002, found 003_three.sql"),
        ({"002_two.sql": ""}, "expected migration 001, found 002_two.sql"),
        ({"001_one.sql": "", "001_again.sql": ""}, "expected migration 002, found 001_"),
    ],
    ids=["gap", "missing-first", "duplicate-version"],
)
def test_load_refuses_gaps_and_duplicates(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    folder = _write(tmp_path, files)

    with pytest.raises(MigrationError, match=message):
        load_migrations(folder)


@pytest.mark.parametrize(
    "bad", ["1_one.sql", "01_one.sql", "001-one.sql", "001_One.sql", "one.sql", "001_.sql"]
)
def test_load_refuses_a_badly_named_sql_file(tmp_path: Path, bad: str) -> None:
    folder = _write(tmp_path, {"001_one.sql": "", bad: ""})

    with pytest.raises(MigrationError, match=rf"'{bad}' is not named NNN_description\.sql"):
        load_migrations(folder)
