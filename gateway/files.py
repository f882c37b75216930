"""Where credit memo files keep their bytes: a ``FileStore``. The rows (``credit_memo_file``) hold
the metadata and the key; a store only maps keys to bytes, so an S3-compatible store implements the
same three methods (put_object / get_object / delete_object) and nothing else changes."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

from gateway.config import Settings

_KEY = re.compile(r"^[a-z0-9-]+(/[a-z0-9-]+)*$")


def new_key(prefix: str) -> str:
    """A fresh key under ``prefix``: never derived from what a client sent."""
    return f"{prefix}/{uuid.uuid4().hex}"


class FileStore(ABC):
    @abstractmethod
    async def put(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    async def get(self, key: str) -> bytes:
        """The bytes under ``key``; FileNotFoundError when there are none."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; no error when it is absent."""


class LocalFileStore(FileStore):
    """A directory (``GATEWAY_FILES_DIR``); a key is a relative path inside it. A file appears
    whole or not at all: written beside its place, then renamed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError(f"not a file store key: {key!r}")
        return self.root / key

    async def put(self, key: str, data: bytes) -> None:
        path = self._path(key)

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            os.replace(partial, path)

        await asyncio.to_thread(write)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)


def file_store(settings: Settings) -> FileStore:
    return LocalFileStore(Path(settings.files_dir))
