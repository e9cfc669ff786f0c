"""Load-aware accept on the listening socket that every worker shares.

Every worker is woken when a connection arrives, and left alone the first one awake takes a
whole burst (measured here: 400 connections over 4 workers split 137/5/158/100). Each worker
publishes how many connections it holds in a shared array (one slot per worker, -1 for a slot
whose worker is dead), and takes a connection only while it holds no more than the mean plus
a slack (2, or 2% of the mean when that is more). A worker over its share stops listening for
`DEFER` seconds; if connections are still waiting after `PATIENCE` such steps in a row, it
takes one anyway, so a busy or hung sibling can delay accepting but never stop it.

The step is short on purpose: with 10 ms steps and a slack of one, two workers in a connection
storm took turns at about 1,100 connections a second while both sat mostly idle.
"""
from __future__ import annotations

import asyncio
import logging
import select
import socket
from typing import Callable

log = logging.getLogger("hubchat.worker")

SLACK = 2
SLACK_FRACTION = 0.02
DEFER = 0.001
PATIENCE = 5
MAX_PER_WAKE = 64  # accept at most this many per wake-up, so one burst cannot starve the loop


class Acceptor:
    def __init__(self, sock: socket.socket, slot: int, loads, on_connection: Callable[[socket.socket, tuple], None]):
        self.sock = sock
        self.slot = slot
        self.loads = loads
        self.on_connection = on_connection
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._reading = False
        self._deferred = 0  # steps back in a row with connections still waiting

    def start(self) -> None:
        if not self._reading:
            self._loop.add_reader(self.sock.fileno(), self._on_readable)
            self._reading = True

    def stop(self) -> None:
        if self._reading:
            self._loop.remove_reader(self.sock.fileno())
            self._reading = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _over_share(self) -> bool:
        live = [n for n in self.loads if n >= 0]
        mean = sum(live) / len(live)
        return self.loads[self.slot] > mean + max(SLACK, mean * SLACK_FRACTION)

    def _step_back(self, delay: float) -> None:
        self.stop()
        self._timer = self._loop.call_later(delay, self._retry)

    def _retry(self) -> None:
        self._timer = None
        if not select.select([self.sock], [], [], 0)[0]:
            self._deferred = 0  # a sibling took what was waiting: nobody needs us to force one
        self.start()  # if connections still wait, the loop calls _on_readable at once

    def _on_readable(self) -> None:
        for _ in range(MAX_PER_WAKE):
            if self._over_share() and self._deferred < PATIENCE:
                self._deferred += 1
                self._step_back(DEFER)
                return
            self._deferred = 0
            try:
                conn, addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of file descriptors, typically: back off, keep serving others
                log.warning("accept failed: %s", exc)
                self._step_back(0.1)
                return
            self.loads[self.slot] += 1
            self.on_connection(conn, addr)
