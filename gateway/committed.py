"""A mutation's answer leaves only once its writes are committed.

A money move hands its result back as soon as its ``COMMIT`` is sent (``Database.write(…,
commits=…)``): the payload is built while the server commits. This extension, part of every
schema (``schema.build``), waits for those commits at the end of the execution, before the result
goes anywhere (HTTP or WebSocket). A commit that failed turns the result into that failure's error,
its data into null: nothing of it is reported as done. The error is then what a failure inside the
resolver gives (``SERVICE_UNAVAILABLE`` for a lost database, else masked with the request id)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension


class AnswerWhenCommitted(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        yield
        commits = getattr(self.execution_context.context, "commits", None)
        if commits is None:
            return
        if commits.pending:
            await commits.wait()
        if not commits.failures:
            return
        result = self.execution_context.result
        if result is None:
            return
        result.data = None
        result.errors = [
            *(result.errors or []),
            *(
                GraphQLError(
                    "the write could not be committed",
                    path=None if field is None else [field],
                    original_error=failure,
                )
                for failure, field in commits.failures
            ),
        ]
