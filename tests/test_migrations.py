"""Alembic creates exactly the tables the code declares, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from gateway.db import Database
from gateway.tables import metadata


async def test_migrated_schema_matches_the_models(db: Database) -> None:
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": False}), metadata
            )
        )
    assert diff == []


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
