"""A job's progress as the API shows it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from gateway.jobs import live_progress


def processed_items(job: Row[Any]) -> int:
    """The row's count, or more when this process runs the job (on SQLite the row is written only
    when the job's transaction ends)."""
    done = int(job.processed_items)
    if job.status == "PROCESSING":
        running = live_progress(job.id)
        if running is not None:
            done = max(done, running)
    return done
