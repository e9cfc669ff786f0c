"""Several hubchat hosts sharing one real Redis, for the cluster tests and the soak.

`RedisServer` runs `redis-server` on a free loopback port, with AOF on (appendfsync everysec,
Redis's default), in a directory of its own, and can restart it on the same port and files.
`Proxy` is a TCP relay between one host and Redis that the test owns: `cut()` drops every
connection through it and refuses new ones (a partition), `restore()` lets them through again;
`hold_reads()` stops passing on what Redis answers to the host's stream reader (the connection
that sent XREAD) while its appends still go through, `release_reads()` lets the answers flow;
`hold_renewals()` keeps back the host's lease renewals (the scripts it runs, EVALSHA) and
whatever follows them on their connection, `release_renewals()` sends them on.
`start_hosts` starts hubchat servers on 127.0.0.2, .3, .4, ... all on one Redis.
"""
from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import tempfile
import threading
import time

from tests.integration.harness import TIMEOUT, Server, require_program, wait_for


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class RedisServer:
    def __init__(self) -> None:
        require_program("redis-server", "redis-server")
        self.dir = tempfile.mkdtemp(prefix="hubchat-redis-")
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._answers, TIMEOUT, "redis-server to answer")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """One command in RESP, the raw reply (for tests that look inside)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT) as sock:
            sock.sendall(f"*{len(args)}\r\n".encode() + b"".join(
                f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args))
            return sock.recv(1 << 20)

    def stop(self) -> None:
        """A clean stop (SHUTDOWN: the AOF is written and fsynced first), as a restart does."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=TIMEOUT)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Proxy:
    """A TCP relay from a loopback port of its own to Redis, run on one thread."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: dict[socket.socket, socket.socket] = {}
        self.cutting = False
        self.clients: set[socket.socket] = set()  # the host's ends of the pairs
        self.readers: set[socket.socket] = set()  # Redis's ends of the pairs whose client sent XREAD
        self.holding_reads = False
        self.holding_renewals = False
        self.held: dict[socket.socket, bytes] = {}  # client socket -> what it sent since its held renewal
        self.lock = threading.Lock()
        self.running = True
        self.wake_r, self.wake_w = socket.socketpair()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def cut(self) -> None:
        with self.lock:
            self.cutting = True
            self._drop_all()
        self.wake_w.send(b"x")

    def restore(self) -> None:
        with self.lock:
            self.cutting = False

    def hold_reads(self) -> None:
        """From now on the host's hub reads nothing more from the stream (its XREAD answers wait
        here, in the kernel's buffers); what it appends still reaches Redis."""
        with self.lock:
            self.holding_reads = True
        self.wake_w.send(b"x")

    def release_reads(self) -> None:
        with self.lock:
            self.holding_reads = False
        self.wake_w.send(b"x")

    def hold_renewals(self) -> None:
        with self.lock:
            self.holding_renewals = True

    def release_renewals(self) -> None:
        with self.lock:
            self.holding_renewals = False
        self.wake_w.send(b"x")  # the relay's thread sends them, so nothing overtakes them

    def _send_held(self) -> None:
        with self.lock:
            if self.holding_renewals or not self.held:
                return
            held, self.held = self.held, {}
        for sock, data in held.items():
            other = self.pairs.get(sock)
            if other is not None:
                try:
                    other.sendall(data)
                except OSError:
                    pass

    def close(self) -> None:
        self.running = False
        self.wake_w.send(b"x")
        self.thread.join(TIMEOUT)
        with self.lock:
            self._drop_all()
        self.listener.close()

    def _drop_all(self) -> None:
        for sock in list(self.pairs):
            sock.close()
        self.pairs.clear()
        self.clients.clear()
        self.readers.clear()
        self.held.clear()

    def _run(self) -> None:
        while self.running:
            with self.lock:
                held = self.readers if self.holding_reads else ()
                watched = [self.listener, self.wake_r, *(s for s in self.pairs if s not in held)]
            self._send_held()
            try:
                ready, _, _ = select.select(watched, [], [], 1.0)
            except (OSError, ValueError):
                continue  # a socket closed by cut() between the copy and the select
            for sock in ready:
                if sock is self.wake_r:
                    sock.recv(64)
                elif sock is self.listener:
                    self._accept()
                else:
                    self._relay(sock)

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        with self.lock:
            if self.cutting:
                conn.close()
                return
        try:
            upstream = socket.create_connection(self.target, timeout=TIMEOUT)
        except OSError:
            conn.close()
            return
        with self.lock:
            self.pairs[conn], self.pairs[upstream] = upstream, conn
            self.clients.add(conn)

    def _relay(self, sock: socket.socket) -> None:
        with self.lock:
            other = self.pairs.get(sock)
        if other is None:
            return
        try:
            data = sock.recv(65536)
            if data:
                with self.lock:
                    if sock in self.clients and b"XREAD" in data:
                        self.readers.add(other)
                    if sock in self.held or (self.holding_renewals and sock in self.clients and b"EVAL" in data):
                        self.held[sock] = self.held.get(sock, b"") + data
                        return
                other.sendall(data)
                return
        except OSError:
            pass
        with self.lock:
            for s in (sock, other):
                self.pairs.pop(s, None)
                self.clients.discard(s)
                self.readers.discard(s)
                self.held.pop(s, None)
                s.close()


def start_hosts(redis_urls: list[str], workers: int = 1, lease: float = 2.0, *extra: str) -> list[Server]:
    """One hubchat server per Redis URL (a proxy's, or Redis's own), on 127.0.0.2, .3, ..."""
    hosts = []
    for i, url in enumerate(redis_urls):
        address = f"127.0.0.{i + 2}"
        hosts.append(Server(workers, "--host", address, "--no-web", "--cluster", url, "--host-id", f"host{i + 2}",
                            "--cluster-lease", str(lease), *extra))
    for host in hosts:
        host.wait_for_log("cluster: caught up", timeout=TIMEOUT)
    return hosts


def stopped_all(hosts: list[Server]) -> None:
    """Stop every host; none may have logged a crash or a request it failed to decide."""
    for host in hosts:
        if host.proc.returncode is None:
            host.stop()
    for host in hosts:
        text = getattr(host, "stderr", "")
        assert "Traceback" not in text and "failed to" not in text, text[-4000:]


def elapsed_since(start: float) -> str:
    return f"{time.monotonic() - start:.2f}s"
