"""Settings for the credit memo API tests: files in the test's own directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import Settings


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url, workers=0, files_dir=str(tmp_path / "files"), max_file_bytes=1_000
    )
