"""Alembic creates exactly the tables the code declares, on every backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.config import Settings
from gateway.db import Database
from gateway.migrate import alembic_config, upgrade
from gateway.tables import PER_STATEMENT_REFERENCES, metadata
from tests import postgres


def _declared_here(dialect: str) -> Callable[..., bool]:
    """What the database holds of the models: on PostgreSQL, the ledger's references are checked
    per statement by triggers (migration 0004) in place of their foreign keys."""

    def include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        replaced = type_ == "foreign_key_constraint" and obj.table.name in PER_STATEMENT_REFERENCES
        return not (dialect == "postgresql" and replaced)

    return include


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(
                    sync, opts={"compare_type": False, "include_object": _declared_here(sync.dialect.name)}
                ),
                metadata,
            )
        )
    assert diff == []


async def test_postgresql_checks_the_ledgers_references_by_statement_sqlite_by_foreign_key(
    db: Database,
) -> None:
    async with db.engine.connect() as conn:
        keys = await conn.run_sync(
            lambda sync: {t: inspect(sync).get_foreign_keys(t) for t in PER_STATEMENT_REFERENCES}
        )
    assert {t: len(k) for t, k in keys.items()} == (
        {"application_line": 4, "item_part": 3} if db.is_sqlite else {"application_line": 0, "item_part": 0}
    )


async def test_every_loader_foreign_key_has_an_index(db: Database) -> None:
    loader_keys = {
        "receivable": ["account_id", "referred_credit_memo_id"],
        "receivable_item": ["receivable_id", "parent_item_id"],
        "credit_memo": ["account_id", "referred_invoice_id"],
        "credit_memo_item": ["credit_memo_id", "parent_item_id", "source_item_id"],
        "payment": ["account_id"],
        "part": ["credit_memo_id", "payment_id", "target_id"],
        "item_part": ["part_id", "credit_memo_item_id", "target_item_id"],
        "application": ["credit_memo_id", "payment_id", "debit_memo_id"],
        "application_line": ["application_id"],
    }
    async with db.engine.connect() as conn:
        leading = await conn.run_sync(
            lambda sync: {
                table: {
                    *(ix["column_names"][0] for ix in inspect(sync).get_indexes(table)),
                    *(uc["column_names"][0] for uc in inspect(sync).get_unique_constraints(table)),
                }
                for table in loader_keys
            }
        )
    missing = [f"{t}.{c}" for t, cols in loader_keys.items() for c in cols if c not in leading[t]]
    assert missing == []


async def test_sqlite_runs_in_wal_mode_with_foreign_keys(db: Database) -> None:
    if not db.is_sqlite:
        return
    async with db.engine.connect() as conn:
        assert (await conn.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await conn.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 30000


def test_postgresql_goes_back_to_the_ledgers_foreign_keys_and_forward_again(pg_database: str | None) -> None:
    """Migration 0004 down and up on a database of its own: the foreign keys come back, then go."""
    if pg_database is None:
        pytest.skip("migration 0004 on PostgreSQL: set GATEWAY_TEST_DATABASE_URL (CI does)")
    base, _, _ = pg_database.rpartition("/")
    url = f"{base}/gateway_test_migrate_{uuid.uuid4().hex[:10]}"

    async def keys() -> dict[str, int]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(
                    lambda sync: {t: len(inspect(sync).get_foreign_keys(t)) for t in PER_STATEMENT_REFERENCES}
                )
        finally:
            await engine.dispose()

    name = url.rpartition("/")[2]
    asyncio.run(postgres.admin(pg_database, f'CREATE DATABASE "{name}"'))
    try:
        settings = Settings(database_url=url)
        upgrade(settings)
        assert asyncio.run(keys()) == {"application_line": 0, "item_part": 0}
        command.downgrade(alembic_config(url), "0003")
        assert asyncio.run(keys()) == {"application_line": 4, "item_part": 3}
        upgrade(settings)
        assert asyncio.run(keys()) == {"application_line": 0, "item_part": 0}
    finally:
        asyncio.run(postgres.admin(pg_database, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
