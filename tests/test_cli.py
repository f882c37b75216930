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


def test_demo_token_is_reused_while_active_and_replaced_when_revoked(tmp_path: Path) -> None:
    import sqlite3

    env = {"GATEWAY_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"}
    run("migrate", env=env)
    saved = tmp_path / "state" / "demo-token"
    first = run("token", "demo", "--file", str(saved), env=env).stdout.splitlines()[-1]
    assert saved.read_text().strip() == first
    assert saved.stat().st_mode & 0o777 == 0o600
    second = run("token", "demo", "--file", str(saved), env=env).stdout.splitlines()[-1]
    assert second == first

    with sqlite3.connect(tmp_path / "demo.db") as conn:
        (name,) = conn.execute("SELECT name FROM api_token").fetchone()
    run("token", "revoke", "--name", name, env=env)
    third = run("token", "demo", "--file", str(saved), env=env).stdout.splitlines()[-1]
    assert third != first and saved.read_text().strip() == third
    saved.write_text("not-a-token\n")
    fourth = run("token", "demo", "--file", str(saved), env=env).stdout.splitlines()[-1]
    with sqlite3.connect(tmp_path / "demo.db") as conn:
        states = conn.execute("SELECT revoked_at IS NULL FROM api_token ORDER BY id").fetchall()
    # Only the newest demo token is active: a lost file never leaves the earlier ones usable.
    assert states == [(0,), (0,), (1,)] and fourth not in (first, third)
