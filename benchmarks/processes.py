"""Child processes for tests and benchmarks: started in their own process group with their output in a
log file, waited on by observable state with a deadline, and always stopped (the group, then SIGKILL).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path

# Generous: a slow or busy machine must not fail a correct product.
START_DEADLINE = 60.0


@contextlib.contextmanager
def running(args: Sequence[str], env: dict[str, str], log: Path | None = None) -> Iterator[Process]:
    """``python -m gateway.cli ARGS`` as a child; stopped in ``finally`` whatever happens."""
    process = Process(args, env, log)
    try:
        yield process
    finally:
        process.stop()


class Process:
    """A child in its own process group; its stdout (unless ``stdout`` is false) and stderr go to
    ``log`` (a temporary file by default)."""

    def __init__(
        self, args: Sequence[str], env: dict[str, str], log: Path | None = None, *, stdout: bool = True
    ) -> None:
        if log is None:
            fd, name = tempfile.mkstemp(prefix="gateway-", suffix=".log")
            os.close(fd)
            log = Path(name)
        self.log = log
        with log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", *args],
                env={**os.environ, **env},
                stdin=subprocess.DEVNULL,
                stdout=out if stdout else subprocess.DEVNULL,
                stderr=out,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 10.0) -> int:
        """SIGTERM to the whole group, SIGKILL after ``grace`` seconds; always reaps the child."""
        if self.alive:
            self.signal(signal.SIGTERM)
            try:
                return self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.signal(signal.SIGKILL)  # also whatever the child started
        return self.popen.wait()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait()


async def wait_until(
    check: Callable[[], Awaitable[bool]] | Callable[[], bool],
    what: str,
    *,
    deadline: float = START_DEADLINE,
    process: Process | None = None,
) -> None:
    """Poll ``check`` until it is true; fail with ``what`` (and the process's output) at the deadline
    or as soon as ``process`` has exited."""
    end = time.monotonic() + deadline
    while True:
        outcome = check()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if process is not None and not process.alive:
            raise AssertionError(
                f"{what}: the process exited ({process.popen.returncode}):\n{process.output()}"
            )
        if time.monotonic() > end:
            tail = f"\n{process.output()}" if process is not None else ""
            raise AssertionError(f"{what}: not within {deadline:.0f} s{tail}")
        await asyncio.sleep(0.05)
