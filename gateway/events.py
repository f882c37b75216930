"""Fan-out of "something changed" between instances. The database stays the source of truth:
messages only wake subscribers (and carry live job progress); they read the rows themselves.

Without ``GATEWAY_REDIS_URL`` a process-local broadcast serves one instance; with it, Redis pub/sub
reaches every instance."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson

from gateway.outage import Availability, Backoff

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

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        super().__init__()
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        self.availability = Availability("redis")
        self._pubsub = self._redis.pubsub()
        self._reader: asyncio.Task[None] | None = None
        self._subscribed: set[str] = set()
        self._backoff = Backoff(cap=10.0)
        self._next_try = 0.0

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        if not self.availability.up and time.monotonic() < self._next_try:
            return  # down: try again after the backoff, not on every write
        try:
            await self._redis.publish(channel, orjson.dumps(message))
        except Exception as exc:  # noqa: BLE001 - fan-out is best effort; subscribers also poll the rows
            self.availability.lost(exc)
            self._next_try = time.monotonic() + self._backoff.next_delay()
            return
        self._backoff.reset()
        self.availability.ok()

    async def ping(self) -> bool:
        try:
            await self._redis.ping()
        except Exception as exc:  # noqa: BLE001 - readiness reports it as degraded
            self.availability.lost(exc)
            return False
        self.availability.ok()
        return True

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
        backoff = Backoff(cap=10.0)
        while True:
            try:
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except Exception as exc:  # noqa: BLE001 - one line when lost, one when back (outage.py)
                self.availability.lost(exc)
                await backoff.wait()
                continue
            backoff.reset()
            self.availability.ok()
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


def create_bus(redis_url: str | None, timeout: float = 2.0) -> Bus:
    return RedisBus(redis_url, timeout) if redis_url else LocalBus()
