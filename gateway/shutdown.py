"""Graceful shutdown (SIGTERM, SIGINT): stop accepting; close every WebSocket with 1001 (going
away: clients reconnect elsewhere and resume by cursor); hand running jobs back (cancelled, rolled
back, lease released: another worker claims them at once) instead of waiting for them; then let
in-flight HTTP requests finish within ``GATEWAY_SHUTDOWN_GRACE_SECONDS`` (uvicorn's graceful
timeout) before the lifespan ends."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
GOING_AWAY = 1001


class OpenSockets:
    """The accepted WebSockets of this process, to close them all at once."""

    def __init__(self) -> None:
        self._open: dict[int, Send] = {}
        self._closed: set[int] = set()

    def track(self, key: int, send: Send) -> Send:
        async def tracked(message: Message) -> None:
            if key in self._closed:
                return  # closed by the shutdown: what the app still sends goes nowhere, quietly
            if message["type"] == "websocket.accept":
                self._open[key] = send
            elif message["type"] == "websocket.close":
                self._open.pop(key, None)
            await send(message)

        return tracked

    def forget(self, key: int) -> None:
        self._open.pop(key, None)
        self._closed.discard(key)

    async def close_all(self, code: int = GOING_AWAY, reason: str = "server shutting down") -> int:
        closing = list(self._open.items())
        self._open.clear()
        for key, send in closing:
            self._closed.add(key)
            with contextlib.suppress(Exception):  # a client already gone
                await send({"type": "websocket.close", "code": code, "reason": reason})
        return len(closing)

    def __len__(self) -> int:
        return len(self._open)


class TrackSockets:
    """ASGI middleware that registers WebSockets in ``OpenSockets``."""

    def __init__(self, app: ASGIApp, registry: OpenSockets) -> None:
        self.app, self.registry = app, registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        key = id(scope)
        try:
            await self.app(scope, receive, self.registry.track(key, send))
        finally:
            self.registry.forget(key)


class GracefulServer(uvicorn.Server):
    """uvicorn's server, with our steps between "stop accepting" and "wait for the requests"."""

    def __init__(self, config: uvicorn.Config, going_away: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self.going_away = going_away

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # stop accepting first (uvicorn's shutdown closes them again: no-op)
        try:
            await self.going_away()
        except Exception:  # noqa: BLE001 - the shutdown goes on whatever happened
            log.exception("graceful shutdown step failed")
        await super().shutdown(sockets)
