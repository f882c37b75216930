"""``python -m benchmarks read|peers|settlement|jobs [--database-url URL] [--runs N]``."""

from __future__ import annotations

import argparse
import asyncio
import sys


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench")
    p.add_argument("suite", choices=["read", "peers", "settlement", "jobs"])
    p.add_argument("--database-url", help="a PostgreSQL URL (postgresql+asyncpg://…) to measure it too")
    p.add_argument("--runs", type=int, default=15, help="measured runs per number (median reported)")
    args = p.parse_args()
    if args.suite == "read":
        from benchmarks.read import run
    elif args.suite == "peers":
        from benchmarks.peers import run
    elif args.suite == "settlement":
        from benchmarks.settlement import run
    else:
        from benchmarks.jobs import run
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
