"""The command line: every command says what it does; seed is deterministic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize("command", ["serve", "migrate", "seed", "export-schema"])
def test_every_command_has_help(command: str) -> None:
    out = run(command, "--help").stdout
    assert out.startswith(f"usage: settlement-gateway {command}")


def test_migrate_then_seed_is_deterministic(tmp_path: Path) -> None:
    snapshots = []
    for name in ("a", "b"):
        url = f"sqlite+aiosqlite:///{tmp_path / name}.db"
        env = {"GATEWAY_DATABASE_URL": url}
        run("migrate", env=env)
        out = run(
            "seed",
            "--accounts",
            "3",
            "--invoices-per-account",
            "2",
            "--items-per-document",
            "4",
            "--seed",
            "11",
            env=env,
        ).stdout
        assert "seeded 3 accounts, 6 invoices" in out
        again = run("seed", "--if-empty", env=env).stdout
        assert "not seeding" in again
        import sqlite3

        with sqlite3.connect(tmp_path / f"{name}.db") as conn:
            snapshots.append(
                conn.execute(
                    "SELECT number, amount, status FROM credit_memo UNION ALL "
                    "SELECT number, amount, status FROM receivable ORDER BY 1"
                ).fetchall()
            )
    assert snapshots[0] == snapshots[1]
    statuses = {status for _, _, status in snapshots[0]}
    assert {"POSTED", "DRAFT"} <= statuses
