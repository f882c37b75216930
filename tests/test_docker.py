"""The container setup, checked statically (no Docker engine needed): docker/compose.yaml describes
PostgreSQL, Redis, a migration step, two gateway replicas and a worker that all run real
``settlement-gateway`` commands with real ``GATEWAY_*`` settings, and docker/Dockerfile builds a
multi-stage, non-root image with a /readyz health check from files that exist."""

from __future__ import annotations

import argparse
import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import parser
from gateway.config import Settings

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE = DOCKER / "compose.yaml"
DOCKERFILE = DOCKER / "Dockerfile"
CONSOLE_SCRIPT = "settlement-gateway"


# ---------------------------------------------------------------- helpers


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict), "compose.yaml is not a mapping"
    return data


def services() -> dict[str, dict[str, Any]]:
    svcs = load_compose().get("services")
    assert isinstance(svcs, dict) and svcs, "compose.yaml has no services"
    return svcs


def is_project_service(service: dict[str, Any]) -> bool:
    return "build" in service


def project_services() -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in services().items() if is_project_service(svc)}


def cli_commands() -> set[str]:
    for action in parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return set(action.choices)
    raise AssertionError("gateway.cli.parser() has no subcommands")


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["KEY=value", ...] form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and continuation lines joined."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        if full:
            keyword, _, rest = full.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    assert not pending, "Dockerfile ends inside a continued line"
    return result


def stages() -> list[list[tuple[str, str]]]:
    out: list[list[tuple[str, str]]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            out.append([])
        if out:
            out[-1].append((keyword, args))
    return out


def exec_form(args: str) -> list[str]:
    """CMD/ENTRYPOINT/HEALTHCHECK CMD arguments as a word list (JSON exec form or shell form)."""
    args = args.strip()
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value
    return shlex.split(args)


def strip_flags(args: str) -> list[str]:
    return [word for word in shlex.split(args) if not word.startswith("--")]


def image_command() -> list[str]:
    final = stages()[-1]
    entry = [exec_form(a) for k, a in final if k == "ENTRYPOINT"]
    cmd = [exec_form(a) for k, a in final if k == "CMD"]
    return (entry[-1] if entry else []) + (cmd[-1] if cmd else [])


def service_command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if command is None:
        return image_command()
    if isinstance(command, str):
        return shlex.split(command)
    return [str(word) for word in command]


# ---------------------------------------------------------------- compose


def test_compose_parses_with_services() -> None:
    assert COMPOSE.is_file()
    assert set(services()) >= {"postgres", "redis"}


def test_postgres_and_redis_have_healthchecks() -> None:
    svcs = services()
    assert str(svcs["postgres"]["image"]).startswith("postgres:16")
    assert "pg_isready" in json.dumps(svcs["postgres"]["healthcheck"]["test"])
    assert str(svcs["redis"]["image"]).startswith("redis:7")
    assert "ping" in json.dumps(svcs["redis"]["healthcheck"]["test"])


def test_topology_migrate_two_replicas_and_a_worker() -> None:
    svcs = project_services()
    by_sub: dict[str, list[str]] = {}
    for name, svc in svcs.items():
        command = service_command(svc)
        assert len(command) >= 2, f"{name}: no subcommand in {command}"
        by_sub.setdefault(command[1], []).append(name)

    assert len(by_sub.get("migrate", [])) == 1, by_sub
    assert len(by_sub.get("serve", [])) >= 2, f"two gateway replicas expected: {by_sub}"
    assert len(by_sub.get("worker", [])) >= 1, by_sub

    migrate = svcs[by_sub["migrate"][0]]
    assert str(migrate.get("restart")) == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"

    host_ports = []
    for name in by_sub["serve"] + by_sub["worker"]:
        svc = svcs[name]
        deps = svc.get("depends_on") or {}
        assert deps.get(by_sub["migrate"][0], {}).get("condition") == "service_completed_successfully", name
        assert deps.get("redis", {}).get("condition") == "service_healthy", name
    for name in by_sub["serve"]:
        svc = svcs[name]
        assert environment(svc).get("GATEWAY_WORKERS") == "0", f"{name}: jobs belong to the worker service"
        ports = [str(p) for p in svc.get("ports", [])]
        assert ports, f"{name} publishes no port"
        host_ports += [p.rsplit(":", 1)[0] for p in ports]
        assert all(p.endswith(":8000") for p in ports), ports
    assert len(host_ports) == len(set(host_ports)), f"replicas share a host port: {host_ports}"


def test_services_share_database_and_redis() -> None:
    envs = {name: environment(svc) for name, svc in project_services().items()}
    database_urls = {env.get("GATEWAY_DATABASE_URL") for env in envs.values()}
    redis_urls = {env.get("GATEWAY_REDIS_URL") for env in envs.values()}
    assert len(database_urls) == 1 and None not in database_urls, database_urls
    assert len(redis_urls) == 1 and None not in redis_urls, redis_urls
    (database_url,) = database_urls
    (redis_url,) = redis_urls
    assert database_url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in database_url
    assert redis_url.startswith("redis://redis:6379")


@pytest.mark.parametrize("name", sorted(project_services()) if COMPOSE.is_file() else [])
def test_project_service_runs_a_real_cli_command(name: str) -> None:
    command = service_command(project_services()[name])
    assert command[0] == CONSOLE_SCRIPT, command
    assert len(command) >= 2 and command[1] in cli_commands(), (
        f"{name}: `{command[1] if len(command) > 1 else ''}` is not a settlement-gateway subcommand "
        f"(have {sorted(cli_commands())})"
    )


def test_worker_is_a_cli_subcommand() -> None:
    # compose relies on it; it is part of the command line, not of the compose file.
    assert "worker" in cli_commands()


def test_compose_sets_only_known_gateway_variables() -> None:
    known = Settings.env_names()
    assert "GATEWAY_DATABASE_URL" in known and "GATEWAY_WORKERS" in known
    seen = set()
    for name, svc in services().items():
        for key in environment(svc):
            if key.startswith("GATEWAY_"):
                seen.add(key)
                assert key in known, f"{name}: {key} is not read by Settings.from_env"
    assert {"GATEWAY_DATABASE_URL", "GATEWAY_REDIS_URL", "GATEWAY_WORKERS"} <= seen


def test_compose_builds_from_the_repo_root_dockerfile() -> None:
    for name, svc in project_services().items():
        build = svc["build"]
        context = (COMPOSE.parent / build["context"]).resolve()
        assert context == ROOT, f"{name}: build context {context}"
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile_is_multi_stage() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(froms) >= 2, froms
    assert strip_flags(froms[-1])[0] == "python:3.11-slim", froms[-1]


def test_final_stage_copies_the_venv_from_the_builder() -> None:
    final = stages()[-1]
    copies = [args for keyword, args in final if keyword == "COPY"]
    assert any("--from=" in args for args in copies), copies


def test_final_stage_runs_as_non_root() -> None:
    users = [args for keyword, args in stages()[-1] if keyword == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0].strip()
    assert user and user not in {"root", "0"}, users[-1]


def test_healthcheck_hits_readyz() -> None:
    checks = [args for keyword, args in stages()[-1] if keyword == "HEALTHCHECK"]
    assert checks, "no HEALTHCHECK"
    assert "/readyz" in checks[-1]
    assert not checks[-1].strip().upper().startswith("NONE")
    assert "curl" not in checks[-1], "the slim image has no curl"


def test_exposes_8000() -> None:
    exposed = [args for keyword, args in stages()[-1] if keyword == "EXPOSE"]
    assert any("8000" in args.split() for args in exposed), exposed


def test_default_command_serves_with_the_console_script() -> None:
    command = image_command()
    assert command[:2] == [CONSOLE_SCRIPT, "serve"], command
    assert command[1] in cli_commands()
    assert "0.0.0.0" in command, "inside a container the server must listen on every interface"


def test_every_copied_file_exists() -> None:
    copied = []
    for keyword, args in instructions():
        if keyword not in {"COPY", "ADD"}:
            continue
        words = shlex.split(args)
        if any(w.startswith("--from=") for w in words):
            continue  # from another stage, not from the build context
        if words and words[0].startswith("["):
            words = json.loads(args[args.index("[") :])
        sources = [w for w in words if not w.startswith("--")][:-1]
        assert sources, f"{keyword} {args}: no source"
        for source in sources:
            assert (ROOT / source).exists(), f"{keyword} {source}: not in the repository"
            copied.append(source.rstrip("/"))
    # The wheel build needs the metadata (README.md is its readme) and every package pyproject.toml declares.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = [p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]
    for needed in ["pyproject.toml", pyproject["project"]["readme"], *packages]:
        assert needed in copied, f"the Dockerfile does not copy {needed}"
