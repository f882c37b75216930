"""The API the repository owns: the committed SDL is what the app serves, and no release breaks the one
before it. Everything read here is inside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from graphql import GraphQLEnumType, build_schema, find_breaking_changes

from schema.build import build_schema as build_gateway_schema

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "schema.graphql"
RELEASES = ROOT / "schema" / "releases"
PREVIOUS_RELEASE = max(RELEASES.glob("*.graphql"), key=lambda p: tuple(int(n) for n in p.stem.split(".")))
RULES = ROOT / "docs" / "rules.md"
UPDATE = "settlement-gateway export-schema > schema.graphql"


def exported_sdl() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "export-schema"], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_the_committed_schema_is_the_exported_schema() -> None:
    exported = exported_sdl()
    assert exported.strip() == COMMITTED.read_text().strip(), (
        f"schema.graphql is not what the app serves: review the change, then run `{UPDATE}` and commit it"
    )


def test_export_schema_prints_the_schema_the_app_serves() -> None:
    assert exported_sdl().strip() == str(build_gateway_schema()).strip()


def test_no_breaking_change_against_the_previous_release() -> None:
    previous = build_schema(PREVIOUS_RELEASE.read_text())
    current = build_schema(COMMITTED.read_text())
    breaking = [f"{c.type.name}: {c.description}" for c in find_breaking_changes(previous, current)]
    assert breaking == [], f"breaking changes against {PREVIOUS_RELEASE.name}"


def test_every_type_and_field_of_the_previous_release_is_present() -> None:
    # find_breaking_changes covers this; naming the missing fields gives a readable failure.
    previous = build_schema(PREVIOUS_RELEASE.read_text())
    current = build_schema(COMMITTED.read_text())
    missing = [
        f"{name}.{field}"
        for name, type_ in previous.type_map.items()
        if not name.startswith("__") and hasattr(type_, "fields")
        for field in type_.fields
        if field not in getattr(current.type_map.get(name), "fields", {})
    ]
    assert missing == []


def test_every_error_code_is_documented_in_the_rules() -> None:
    codes = build_schema(COMMITTED.read_text()).type_map["ErrorCode"]
    assert isinstance(codes, GraphQLEnumType)
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", RULES.read_text(), flags=re.MULTILINE))
    assert sorted(set(codes.values) - documented) == []
