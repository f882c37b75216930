"""The ``settlement-gateway`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from gateway.config import Settings


def _settings() -> Settings:
    return Settings.from_env(os.environ)


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app

    settings = _settings().replace(host=args.host or _settings().host, port=args.port or _settings().port)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.migrate:
        from gateway.migrate import upgrade

        upgrade(settings)
    print(
        f"settlement gateway: http://{settings.host}:{settings.port}/graphql (GraphiQL in a browser)",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        ws="websockets-sansio",
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from gateway.migrate import upgrade

    settings = _settings()
    upgrade(settings, args.revision)
    print(f"database at {args.revision}: {_safe_url(settings.database_url)}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    from gateway.db import Database
    from gateway.seed import SeedSpec, is_empty, seed

    async def run() -> int:
        db = Database(_settings())
        try:
            if args.if_empty and not await is_empty(db):
                print("database already has data; not seeding (--if-empty)")
                return 0
            spec = SeedSpec(
                accounts=args.accounts,
                invoices_per_account=args.invoices_per_account,
                items_per_document=args.items_per_document,
                seed=args.seed,
            )
            report = await seed(db, spec, db.settings)
            print(
                f"seeded {report.accounts} accounts, {report.invoices} invoices, {report.debit_memos} debit "
                f"memos, {report.credit_memos} credit memos, {report.payments} payments; "
                f"{report.applications} applications, {report.reversed} reversed, "
                f"{report.written_off} written off"
            )
            return 0
        finally:
            await db.dispose()

    return asyncio.run(run())


def cmd_worker(args: argparse.Namespace) -> int:
    import signal

    from gateway.db import Database
    from gateway.jobs import Worker

    settings = _settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def run() -> int:
        db = Database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.gather(*(Worker(db, settings).run_forever(stop) for _ in range(args.concurrency)))
        finally:
            await db.dispose()
        return 0

    print(
        f"settlement worker: {args.concurrency} worker(s) on {_safe_url(settings.database_url)}", flush=True
    )
    return asyncio.run(run())


def cmd_export_schema(_: argparse.Namespace) -> int:
    from schema.build import build_schema

    sys.stdout.write(str(build_schema()) + "\n")
    return 0


def _safe_url(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        user = creds.split(":")[0]
        rest = f"{user}:***@{host}" if ":" in creds else f"{user}@{host}"
    return scheme + sep + rest


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="settlement-gateway",
        description="GraphQL gateway over credit memos, debit memos, invoices and payments. "
        "Settings come from GATEWAY_* environment variables (see README).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve the GraphQL API (GraphiQL at /graphql in a browser)")
    serve.add_argument("--host", help="address to listen on (default GATEWAY_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default GATEWAY_PORT or 8000)")
    serve.add_argument("--migrate", action="store_true", help="bring the database schema up to date first")
    serve.set_defaults(fn=cmd_serve)

    migrate = sub.add_parser("migrate", help="create or upgrade the database schema (Alembic)")
    migrate.add_argument("--revision", default="head", help="target revision (default head)")
    migrate.set_defaults(fn=cmd_migrate)

    seed = sub.add_parser("seed", help="load deterministic demo data through the services")
    seed.add_argument("--accounts", type=int, default=3, help="how many accounts (default 3)")
    seed.add_argument("--invoices-per-account", type=int, default=4, help="invoices per account (default 4)")
    seed.add_argument(
        "--items-per-document", type=int, default=5, help="items per document, TAX included (default 5)"
    )
    seed.add_argument("--seed", type=int, default=7, help="random seed: same seed, same data (default 7)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing when the database has accounts")
    seed.set_defaults(fn=cmd_seed)

    worker = sub.add_parser("worker", help="run asynchronous apply/unapply jobs until stopped (SIGTERM)")
    worker.add_argument(
        "--concurrency", type=int, default=1, help="jobs run at once by this process (default 1)"
    )
    worker.set_defaults(fn=cmd_worker)

    export = sub.add_parser("export-schema", help="print the GraphQL schema (SDL) on stdout")
    export.set_defaults(fn=cmd_export_schema)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    raise SystemExit(main())
