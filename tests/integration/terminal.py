"""Run `python -m client` in a pseudo-terminal and read its screen as a person would (pyte)."""
from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
import threading
import time

import pyte

from tests.integration.harness import ROOT, TIMEOUT

COLUMNS, LINES = 100, 30


class Screen(pyte.Screen):
    """A pyte screen that counts the terminal bells it hears."""

    def __init__(self, columns: int, lines: int) -> None:
        super().__init__(columns, lines)
        self.bells = 0

    def bell(self, *args) -> None:
        self.bells += 1


class TerminalClient:
    def __init__(self, *args: str) -> None:
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        env = {**os.environ, "TERM": "xterm", "COLUMNS": str(COLUMNS), "LINES": str(LINES),
               "PROMPT_TOOLKIT_NO_CPR": "1"}
        self.proc = subprocess.Popen([sys.executable, "-m", "client", *args], cwd=ROOT, stdin=slave,
                                     stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.master = master
        self.screen = Screen(COLUMNS, LINES)
        self.stream = pyte.ByteStream(self.screen)
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.stream.feed(data)

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def lines(self) -> list[str]:
        with self.lock:
            return [line.rstrip() for line in self.screen.display]

    def cursor_line(self) -> str:
        with self.lock:
            return self.screen.display[self.screen.cursor.y].rstrip()

    def styled(self, needle: str) -> list:
        """The screen cells of the first place `needle` is shown (their attributes: reverse, bold...)."""
        with self.lock:
            for y, line in enumerate(self.screen.display):
                x = line.find(needle)
                if x >= 0:
                    return [self.screen.buffer[y][x + i] for i in range(len(needle))]
        raise AssertionError(f"{needle!r} is not on screen:\n{self.text()}")

    def text(self) -> str:
        return "\n".join(self.lines())

    def wait_for(self, needle: str, timeout: float = TIMEOUT) -> None:
        """Poll the rendered screen (no event tells us a terminal was repainted)."""
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared on screen:\n{self.text()}")
            time.sleep(0.02)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        os.close(self.master)
