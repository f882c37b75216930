"""Shared fixtures: a migrated database per test (SQLite always; PostgreSQL when
GATEWAY_TEST_DATABASE_URL is set), a statement counter, and GraphQL / HTTP helpers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings as hypothesis_settings
from sqlalchemy import event

from gateway.app import create_app
from gateway.config import Settings
from gateway.context import ANONYMOUS_ADMIN, Context
from gateway.db import Database
from gateway.migrate import upgrade
from schema.build import build_schema
from tests import postgres

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}

hypothesis_settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True)
hypothesis_settings.register_profile("dev", max_examples=50, deadline=None)
hypothesis_settings.load_profile("ci" if IN_CI else "dev")

BACKENDS = ["sqlite"] + (["postgres"] if PG_URL else [])


def pytest_report_header(config: pytest.Config) -> list[str]:
    if PG_URL:
        return [f"database backends: sqlite, postgres ({PG_URL.rsplit('@', 1)[-1]})"]
    return ["database backends: sqlite only (set GATEWAY_TEST_DATABASE_URL for PostgreSQL)"]


def _pg_admin(url: str) -> tuple[str, str]:
    base, _, _ = url.rpartition("/")
    return url, base


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str | None]:
    """One migrated PostgreSQL database for the session; tests truncate it."""
    if not PG_URL:
        yield None
        return
    admin_url, base = _pg_admin(PG_URL)
    name = f"gateway_test_{uuid.uuid4().hex[:10]}"

    try:
        asyncio.run(postgres.admin(admin_url, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001
        message = f"PostgreSQL at {PG_URL} is unreachable: {exc}"
        if IN_CI:
            pytest.exit(message, returncode=3)
        pytest.fail(message)
    url = f"{base}/{name}"
    upgrade(Settings(database_url=url))
    yield url
    asyncio.run(postgres.admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pg(pg_database: str | None) -> AsyncIterator[Database]:
    """The suite's PostgreSQL database, emptied, for a test of PostgreSQL's own behaviour; skipped
    without a PostgreSQL URL (CI sets one, so these run there)."""
    if pg_database is None:
        pytest.skip("a PostgreSQL test: set GATEWAY_TEST_DATABASE_URL (CI does)")
    await postgres.empty(pg_database)
    db = Database(Settings(database_url=pg_database, workers=0))
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    if request.param == "sqlite":
        path = tmp_path / "gateway.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite+aiosqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    asyncio.run(postgres.empty(url))
    return str(url)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(database_url=database_url, workers=0)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings)
    yield database
    await database.dispose()


class StatementCounter:
    def __init__(self) -> None:
        self.statements: list[str] = []
        self.active = False

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.active and not statement.lstrip().upper().startswith(("BEGIN", "PRAGMA", "SELECT 1")):
            self.statements.append(statement)

    def __enter__(self) -> StatementCounter:
        self.statements.clear()
        self.active = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.active = False

    @property
    def count(self) -> int:
        return len(self.statements)


async def assert_direct_rows_are_sqlalchemys(conn: Any, stmts: list[tuple[Any, dict[str, Any]]]) -> None:
    """Each statement sent straight to the driver (``gateway.direct``) answers the rows SQLAlchemy
    answers: the same values of the same types, by position and by name (none of them empty)."""
    from gateway import direct

    for stmt, params in stmts:
        ours = (await direct.execute(conn, stmt, params)).all()
        theirs = (await conn.execute(stmt, params)).all()
        assert [tuple(r) for r in ours] == [tuple(r) for r in theirs] and ours
        assert [type(v) for v in ours[0]] == [type(v) for v in theirs[0]]
        assert ours[0]._mapping == dict(theirs[0]._mapping)


@contextlib.contextmanager
def statements_sent(db: Database) -> Iterator[tuple[StatementCounter, list[str]]]:
    """The write engine's statements while the block runs: those sent to the driver (a counter of
    ``before_cursor_execute``) and those that went through SQLAlchemy's execution (``before_execute``;
    the driver-direct path of ``gateway.direct`` sends none)."""
    counted, through_sqlalchemy = StatementCounter(), []
    engine = db.write_engine.sync_engine

    def executed(conn: Any, clause: Any, *args: Any) -> None:
        through_sqlalchemy.append(str(clause))

    event.listen(engine, "before_cursor_execute", counted)
    event.listen(engine, "before_execute", executed)
    try:
        with counted:
            yield counted, through_sqlalchemy
    finally:
        event.remove(engine, "before_cursor_execute", counted)
        event.remove(engine, "before_execute", executed)


@pytest.fixture
def sql(db: Database) -> Iterator[StatementCounter]:
    counter = StatementCounter()
    engines = {db.engine.sync_engine, db.write_engine.sync_engine}  # reads, writes (one on PostgreSQL)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", counter)
    yield counter
    for engine in engines:
        event.remove(engine, "before_cursor_execute", counter)


SCHEMA = build_schema()


class GraphQLClient:
    """Executes operations through ``schema.execute`` with a fresh context per operation."""

    def __init__(self, db: Database, settings: Settings, principal: Any = None) -> None:
        self.db = db
        self.settings = settings
        self.principal = principal

    async def execute(self, query: str, **variables: Any) -> Any:
        context = Context(db=self.db, settings=self.settings, principal=self.principal or ANONYMOUS_ADMIN)
        try:
            return await SCHEMA.execute(query, variable_values=variables, context_value=context)
        finally:
            await context.close()

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        """The data of a successful operation; fails the test on any GraphQL error."""
        result = await self.execute(query, **variables)
        assert result.errors is None, [e.formatted for e in result.errors]
        return result.data  # type: ignore[no-any-return]


@pytest.fixture
def gql(db: Database, settings: Settings) -> GraphQLClient:
    return GraphQLClient(db, settings)


@pytest.fixture
async def admin_token(db: Database) -> str:
    from gateway import auth

    return await auth.create_token(db, name="test-admin", permissions=["admin"])


@contextlib.asynccontextmanager
async def app_client(db: Database, settings: Settings, token: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real app built from ``settings`` over HTTP, sending ``token`` unless told otherwise."""
    app = create_app(settings, db=db)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@pytest.fixture
async def http(db: Database, settings: Settings, admin_token: str) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over HTTP, with an admin token unless a test sends another Authorization."""
    async with app_client(db, settings, admin_token) as client:
        yield client
