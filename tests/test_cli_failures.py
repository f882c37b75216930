"""Every expected failure of the command line: one line on stderr saying what to do, its own exit code."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import diagnose as d
from gateway.config import Settings, async_database_url
from tests import outage
from tests.outage import free_port

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
pg_only = pytest.mark.skipif(not PG_URL, reason="needs GATEWAY_TEST_DATABASE_URL")


def cli(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
    )


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines
    return lines[0]


@pytest.fixture
def silent_server() -> Iterator[int]:
    with outage.silent_server() as port:
        yield port


def test_the_urls_everyone_writes_mean_the_async_drivers() -> None:
    assert async_database_url("postgresql://u@h:5432/d") == "postgresql+asyncpg://u@h:5432/d"
    assert async_database_url("postgres://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert async_database_url("sqlite:///./x.db") == "sqlite+aiosqlite:///./x.db"
    assert async_database_url("postgresql+asyncpg://u@h/d") == "postgresql+asyncpg://u@h/d"
    assert Settings(database_url="postgres://u@h/d").database_url == "postgresql+asyncpg://u@h/d"


def test_an_unreachable_database(tmp_path: Path) -> None:
    r = cli("migrate", GATEWAY_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/settlement")
    assert r.returncode == d.DATABASE_UNREACHABLE
    assert "cannot reach the database at 127.0.0.1:" in one_line(r)
    assert "is PostgreSQL running" in r.stderr


def test_migrate_against_a_server_that_never_answers_fails_within_a_bound(silent_server: int) -> None:
    started = time.monotonic()
    r = cli(
        "migrate",
        GATEWAY_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{silent_server}/settlement",
        GATEWAY_DATABASE_CONNECT_TIMEOUT_SECONDS="2",
    )
    elapsed = time.monotonic() - started
    assert r.returncode == d.DATABASE_UNREACHABLE
    assert "no answer in time" in one_line(r)
    assert elapsed < 15  # 2 s of connect timeout plus the interpreter's start


@pytest.mark.parametrize("url", ["not a url", "mysqlx://nobody@127.0.0.1/x"])
def test_a_bad_url(url: str) -> None:
    r = cli("migrate", GATEWAY_DATABASE_URL=url)
    assert r.returncode == d.BAD_CONFIGURATION
    assert "GATEWAY_DATABASE_URL is not usable" in one_line(r)


def test_a_bad_setting() -> None:
    r = cli("migrate", GATEWAY_PORT="eighty")
    assert r.returncode == d.BAD_CONFIGURATION
    assert one_line(r) == "error: GATEWAY_PORT='eighty' is not a whole number"


@pytest.mark.parametrize("command", [("seed",), ("token", "list"), ("worker",)])
def test_an_unmigrated_database(tmp_path: Path, command: tuple[str, ...]) -> None:
    r = cli(*command, GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.db'}")
    assert r.returncode == d.NOT_MIGRATED, r.stderr
    assert one_line(r) == "error: the database has no schema yet: run `settlement-gateway migrate` first"


def test_a_sqlite_file_that_cannot_be_created(tmp_path: Path) -> None:
    r = cli("migrate", GATEWAY_DATABASE_URL=f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    assert r.returncode == d.DATABASE_UNREACHABLE
    assert one_line(r).endswith("dir.db`: its directory does not exist")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("serve", "--port", "99999"), "port must be between 1 and 65,535, not 99,999"),
        (("serve", "--port", "0"), "port must be between 1 and 65,535, not 0"),
        (("seed", "--accounts", "-3"), "accounts must be between 1 and 100,000, not -3"),
        (("seed", "--items-per-document", "0"), "items per document must be between 1 and 10,000, not 0"),
        (("seed", "--accounts", "three"), "accounts must be a whole number, not 'three'"),
        (("worker", "--concurrency", "0"), "concurrency must be between 1 and 256, not 0"),
    ],
)
def test_arguments_are_validated(args: tuple[str, ...], message: str) -> None:
    r = cli(*args)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].endswith(message), r.stderr


def test_a_port_in_use_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'g.db'}"
    assert cli("migrate", GATEWAY_DATABASE_URL=url).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        r = cli("serve", "--port", str(port), GATEWAY_DATABASE_URL=url, timeout=60)
    assert r.returncode == d.PORT_IN_USE
    assert one_line(r) == "error: the address is in use (Address already in use): choose another --port"


@pg_only
def test_a_missing_database_says_how_to_create_it() -> None:
    assert PG_URL
    name = f"gateway_missing_{uuid.uuid4().hex[:8]}"
    url = PG_URL.rsplit("/", 1)[0].replace("postgresql+asyncpg://", "postgresql://") + f"/{name}"
    r = cli("migrate", GATEWAY_DATABASE_URL=url)
    assert r.returncode == d.DATABASE_MISSING
    assert one_line(r) == f"error: database `{name}` does not exist: create it with `createdb {name}`"


@pg_only
def test_a_missing_role_says_how_to_create_it() -> None:
    assert PG_URL
    host = PG_URL.rsplit("@", 1)[1]
    r = cli("migrate", GATEWAY_DATABASE_URL=f"postgres://no_such_role_x@{host}")
    assert r.returncode == d.DATABASE_LOGIN
    assert "createuser no_such_role_x" in one_line(r)


@pg_only
def test_postgresql_urls_as_everyone_writes_them(pg_database: str) -> None:
    plain = pg_database.replace("postgresql+asyncpg://", "postgresql://")
    r = cli("migrate", GATEWAY_DATABASE_URL=plain)
    assert r.returncode == 0, r.stderr
    assert "database at head: postgresql+asyncpg://" in r.stdout
