"""The README's PostgreSQL steps work when pasted (with a database name of this test's own)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.outage import free_port

PG_URL = os.environ.get("GATEWAY_TEST_DATABASE_URL")
ROOT = Path(__file__).parent.parent


def postgresql_steps() -> str:
    section = ROOT.joinpath("README.md").read_text().split("## Running against PostgreSQL", 1)[1]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.skipif(not PG_URL or not shutil.which("createdb"), reason="needs PostgreSQL and its createdb")
def test_the_postgresql_steps_work_when_pasted() -> None:
    steps = postgresql_steps()
    assert "createdb" in steps and "migrate" in steps and steps.rstrip().endswith("settlement-gateway serve")
    name = f"gateway_readme_{uuid.uuid4().hex[:8]}"
    port = free_port()
    script = re.sub(r"\bsettlement\b(?!-)", name, steps)
    script = script.replace("scripts/install\n", "")  # the test runs inside the installed .venv
    script = script.replace("settlement-gateway serve", f"settlement-gateway serve --port {port}")
    script = script.replace("postgres@127.0.0.1:5432", (PG_URL or "").split("://", 1)[1].rsplit("/", 1)[0])
    proc = subprocess.Popen(
        ["bash", "-c", "exec 2>&1\n" + script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.HTTPError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert ready.json() == {"status": "ready", "database": "ok", "redis": "not configured"}
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", name], check=False)
    assert "seeded 6 accounts" in output, output
    token = output.split("it is shown once; only its hash is stored:\n", 1)[1].split("\n", 1)[0]
    assert token.startswith("sgw_")
