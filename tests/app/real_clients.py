"""What the real-client tests need (Debian's chromium, Node with the npm packages of tests/clients/,
installed by scripts/install-test-clients), and how they skip without it: with a clear reason on a
developer's machine, as a failure under CI=true (CI must run them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
NODE_MODULES = ROOT / ".cache" / "node" / "node_modules"
CLIENTS = ROOT / "tests" / "clients"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Nothing but loopback: no first-run, update, sync, safe-browsing or QUIC traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def need(available: object, reason: str) -> None:
    if available:
        return
    reason += " (scripts/install-test-clients installs it)"
    if IN_CI:
        pytest.fail(f"CI must run the real-client tests: {reason}")
    pytest.skip(reason)


def need_chromium() -> None:
    need(CHROMIUM.exists(), f"{CHROMIUM} is missing: Debian's chromium package")
    try:
        import playwright  # noqa: F401
    except ImportError:
        need(False, "the playwright package is not installed (the dev extra)")


def need_node() -> str:
    node = shutil.which("node")
    need(node, "node is not on PATH (Node 20 or newer)")
    need((NODE_MODULES / "graphql-ws").is_dir(), f"graphql-ws is not installed in {NODE_MODULES}")
    return str(node)
