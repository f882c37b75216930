"""Schema migrations (Alembic), configured in code so that no ini file has to be found."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from gateway.config import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Bring the database to ``revision``. Safe to call on every start: a no-op when current.
    Bounded like the server: connect and statement timeouts (a server that never answers fails)."""
    from gateway.db import connect_args

    config = alembic_config(settings.database_url)
    config.attributes["connect_args"] = connect_args(settings)
    command.upgrade(config, revision)


async def upgrade_async(settings: Settings) -> None:
    # Alembic's env runs its own event loop; keep it off the caller's.
    await asyncio.to_thread(upgrade, settings)
