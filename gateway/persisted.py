"""Automatic persisted queries, Apollo's protocol: a client sends
``extensions: {persistedQuery: {version: 1, sha256Hash}}`` without the query; on a miss it gets
``PersistedQueryNotFound`` and sends the query once more with its hash, which the gateway checks
and remembers. The cache is per process, least-recently-used, bounded in entries and in bytes."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

from strawberry.http import GraphQLRequestData

NOT_FOUND = "PersistedQueryNotFound"


class RequestRefused(Exception):
    """Answered as a GraphQL error response with a code, before anything executes (HTTP 200 for
    a persisted-query miss, as Apollo clients expect)."""

    def __init__(self, message: str, code: str, status: int, field: list[str] | None = None) -> None:
        super().__init__(message)
        extensions: dict[str, Any] = {"code": code, "category": code}
        if field is not None:
            extensions["field"] = field
        self.body = {"errors": [{"message": message, "extensions": extensions}]}
        self.status = status


class PersistedQueries:
    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._queries: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._queries)

    def resolve(self, data: GraphQLRequestData) -> None:
        """Fill in ``data.query`` from its hash, or remember a query sent with its hash."""
        persisted = (data.extensions or {}).get("persistedQuery")
        if persisted is None:
            return
        digest = persisted.get("sha256Hash") if isinstance(persisted, dict) else None
        if not isinstance(persisted, dict) or persisted.get("version") != 1 or not isinstance(digest, str):
            raise RequestRefused(
                "persistedQuery must be {version: 1, sha256Hash: <hex>}",
                "INVALID_VALUE",
                400,
                ["extensions", "persistedQuery"],
            )
        digest = digest.lower()
        if data.query is None:
            query = self._queries.get(digest)
            if query is None:
                raise RequestRefused(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND", 200)
            self._queries.move_to_end(digest)
            data.query = query
            return
        if hashlib.sha256(data.query.encode()).hexdigest() != digest:
            raise RequestRefused(
                "provided sha256Hash does not match the query",
                "INVALID_VALUE",
                400,
                ["extensions", "persistedQuery", "sha256Hash"],
            )
        self._remember(digest, data.query)

    def _remember(self, digest: str, query: str) -> None:
        size = len(query.encode())
        if size > self.max_bytes or self.max_entries <= 0:
            return
        if digest in self._queries:
            self._queries.move_to_end(digest)
            return
        self._queries[digest] = query
        self._bytes += size
        while len(self._queries) > self.max_entries or self._bytes > self.max_bytes:
            _, evicted = self._queries.popitem(last=False)
            self._bytes -= len(evicted.encode())
