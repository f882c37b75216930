"""The exported schema keeps every promise of the shared contract."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graphql import build_schema, find_breaking_changes

from schema.build import build_schema as build_gateway_schema

CONTRACT = Path(__file__).resolve().parents[2] / "shared" / "contract" / "schema.graphql"
if not CONTRACT.exists():  # a checkout laid out elsewhere keeps its contract beside the repo
    CONTRACT = Path(__file__).resolve().parents[1] / ".." / "shared" / "contract" / "schema.graphql"


def exported_sdl() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "export-schema"], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_exported_schema_has_no_breaking_change_against_the_contract() -> None:
    contract = build_schema(CONTRACT.read_text())
    exported = build_schema(exported_sdl())
    breaking = find_breaking_changes(contract, exported)
    assert [c.description for c in breaking] == []


def test_export_schema_prints_the_schema_the_app_serves() -> None:
    assert exported_sdl().strip() == str(build_gateway_schema()).strip()


def test_every_contract_type_and_field_is_present() -> None:
    # find_breaking_changes covers this; asserting it directly gives a readable failure.
    contract = build_schema(CONTRACT.read_text())
    exported = build_schema(exported_sdl())
    missing = [
        f"{name}.{field}"
        for name, type_ in contract.type_map.items()
        if not name.startswith("__") and hasattr(type_, "fields")
        for field in type_.fields  # type: ignore[union-attr]
        if field not in getattr(exported.type_map.get(name), "fields", {})
    ]
    assert missing == []
