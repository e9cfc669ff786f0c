"""What the hub and the workers share as processes: one asyncio loop, a control channel from the
supervisor, and the rule that they exit when the supervisor is gone (control channel EOF, or
a new parent pid if the EOF is somehow missed)."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from typing import Callable

from config import Config
from ipc import control

log = logging.getLogger("hubchat")

PARENT_CHECK = 1.0
HEARTBEAT_INTERVAL = 1.0


class Heartbeat:
    """This process's slot in the supervisor's shared array of heartbeat clocks."""

    def __init__(self, beats, index: int) -> None:
        self.beats = beats
        self.index = index

    def stamp(self) -> None:
        self.beats[self.index] = time.monotonic()  # CLOCK_MONOTONIC is one clock for every process


class ChildProcess:
    label = "child"

    def __init__(self, config: Config, control_sock: socket.socket, heartbeat: Heartbeat | None = None) -> None:
        self.config = config
        self.control = control_sock
        self.heartbeat = heartbeat
        self._parent = os.getppid()
        self._stopped: asyncio.Future | None = None
        self.control_handlers: dict[str, Callable[..., None]] = {control.CONFIG: self.reload}

    def run(self) -> None:
        choice = self.config.server.event_loop
        if choice != "asyncio":
            try:
                import uvloop
            except ImportError:
                if choice == "uvloop":
                    raise
            else:
                uvloop.run(self._main())
                return
        asyncio.run(self._main())

    async def _main(self) -> None:
        loop = asyncio.get_running_loop()
        self._stopped = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, self.on_terminate)
        self.control.setblocking(False)
        loop.add_reader(self.control.fileno(), self._on_control)
        loop.call_later(PARENT_CHECK, self._watch_parent)
        if self.heartbeat is not None:
            self._beat()
        self.start()
        log.info("%s ready (pid %d, %s event loop)", self.label, os.getpid(),
                 "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio")
        await self._stopped
        self.finish()

    def start(self) -> None:
        """Set up once the loop runs."""

    def finish(self) -> None:
        """Clean up after the loop's main wait ends."""

    def on_terminate(self) -> None:
        self.stop()

    def on_supervisor_gone(self) -> None:
        log.warning("%s: the supervisor is gone, exiting", self.label)
        self.on_terminate()

    def stop(self) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def reload(self, config: Config, fds: list[int]) -> None:
        self.config = config
        log.info("%s reloaded its configuration", self.label)

    def _beat(self) -> None:
        self.heartbeat.stamp()  # type: ignore[union-attr]
        asyncio.get_running_loop().call_later(HEARTBEAT_INTERVAL, self._beat)

    def _watch_parent(self) -> None:
        if os.getppid() != self._parent:
            self.on_supervisor_gone()
            return
        asyncio.get_running_loop().call_later(PARENT_CHECK, self._watch_parent)

    def _on_control(self) -> None:
        try:
            message, fds = control.recv(self.control)
        except BlockingIOError:
            return
        except OSError:
            message, fds = None, []
        if message is None:
            asyncio.get_running_loop().remove_reader(self.control.fileno())
            self.on_supervisor_gone()
        else:
            self.control_handlers[message[0]](*message[1:], fds=fds)
