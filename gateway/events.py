"""Fan-out of "something changed" between instances. The database stays the source of truth:
messages only wake subscribers (and carry live job progress); they read the rows themselves.

Without ``GATEWAY_REDIS_URL`` a process-local broadcast serves one instance; with it, Redis pub/sub
reaches every instance."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

log = logging.getLogger(__name__)
EVENTS = "settlement:events"


def job_channel(job_id: int) -> str:
    return f"settlement:job:{job_id}"


class Bus(abc.ABC):
    @abc.abstractmethod
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    @abc.abstractmethod
    def listen(
        self, channel: str
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[dict[str, Any]]]: ...

    async def close(self) -> None:
        return None


class LocalBus(Bus):
    def __init__(self) -> None:
        self._queues: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        for queue in list(self._queues.get(channel, ())):
            if queue.qsize() < 1000:  # a stuck subscriber loses wake-ups, never the events (rows)
                queue.put_nowait(message)

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._queues[channel].add(queue)
        try:
            yield queue
        finally:
            self._queues[channel].discard(queue)


class RedisBus(LocalBus):
    """Publishes to Redis; one pub/sub connection per process feeds the local queues."""

    def __init__(self, url: str) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url)
        self._pubsub = self._redis.pubsub()
        self._reader: asyncio.Task[None] | None = None
        self._subscribed: set[str] = set()

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        try:
            await self._redis.publish(channel, orjson.dumps(message))
        except Exception:  # noqa: BLE001 - fan-out is best effort; subscribers also poll the rows
            log.warning("redis publish failed; subscribers fall back to polling", exc_info=True)

    @contextlib.asynccontextmanager
    async def listen(self, channel: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        if channel not in self._subscribed:
            await self._pubsub.subscribe(channel)
            self._subscribed.add(channel)
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())
        async with super().listen(channel) as queue:
            yield queue

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception:  # noqa: BLE001
                log.warning("redis subscription failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            if message is None:
                continue
            channel = (
                message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            )
            await LocalBus.publish(self, channel, orjson.loads(message["data"]))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
            await self._redis.aclose()


class SubscriptionLimit(Exception):
    def __init__(self, name: str, max: int, actual: int) -> None:
        super().__init__(f"{name}: {actual} > {max}")
        self.name, self.max, self.actual = name, max, actual


class Slots:
    """Open subscriptions of this process, per token and in all: each holds a slot while it runs,
    so that idle subscribers cannot pile up without bound (SUBSCRIPTIONS_PER_TOKEN, SUBSCRIPTIONS)."""

    def __init__(self, per_key: int, total: int) -> None:
        self.per_key, self.total = per_key, total
        self.open: dict[str, int] = defaultdict(int)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        in_all = sum(self.open.values())
        if self.open[key] >= self.per_key:
            raise SubscriptionLimit("SUBSCRIPTIONS_PER_TOKEN", self.per_key, self.open[key] + 1)
        if in_all >= self.total:
            raise SubscriptionLimit("SUBSCRIPTIONS", self.total, in_all + 1)
        self.open[key] += 1
        try:
            yield
        finally:
            self.open[key] -= 1
            if not self.open[key]:
                del self.open[key]


def create_bus(redis_url: str | None) -> Bus:
    return RedisBus(redis_url) if redis_url else LocalBus()
