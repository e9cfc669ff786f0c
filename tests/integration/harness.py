"""Start the real server as processes and talk to it over real loopback sockets.

`Server` runs `python -m hub --port 0 ...` and learns the port and pids from the one line the
supervisor prints. `Client` is a plain blocking IRC client that keeps every message it
received, so a test can wait for one message and still assert on everything else.
`worker_pid_of` asks psutil which worker process holds the other end of a client's socket.
"""
from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import psutil
import pytest

from ircproto.message import MAX_TAG_DATA, Message, parse

ROOT = Path(__file__).resolve().parents[2]
START_LINE = re.compile(r"listening on (\S+):(\d+)(?: and TLS on \S+:(\d+))?(?: and web on (\w+)://\S+:(\d+))? "
                        r"with (\d+) workers "
                        r"\(supervisor (\d+), hub (\d+), workers ([\d ]+?)(?:, store (\d+))?\)")
TIMEOUT = 10.0


def _die_with_the_tests() -> None:
    """In the server's process before exec: if the test process dies (a crash, a kill), the
    supervisor gets SIGTERM and shuts down cleanly instead of outliving the run (Linux)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_for(condition: Callable[[], object], timeout: float = TIMEOUT, what: str = "condition") -> object:
    """Poll a condition that no event can announce (process state seen from outside)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def require_program(name: str, package: str) -> None:
    """Skip a test whose program is missing; but in CI (`CI` set) fail it, since the test
    command installs the package there (scripts/test.sh) and a skip would go unnoticed."""
    if shutil.which(name) is None:
        message = f"{name} is missing (apt-get install {package}; scripts/test.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def stopped(pid: int) -> Iterator[None]:
    """A process frozen (SIGSTOP) for the block: alive, holding its sockets, answering nothing."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def timed_wait(condition: Callable[[], object], timeout: float, what: str, since: float | None = None) -> object:
    """`wait_for`, reporting how long it took (since `since`, a time.monotonic() taken when
    the clock started): a promise about speed is kept with a bound loose enough for a slow
    machine, and the time it really took is in the output (pytest -rA) instead of raced."""
    started = time.monotonic() if since is None else since
    value = wait_for(condition, timeout, what)
    print(f"{what}: {time.monotonic() - started:.2f}s (bound {timeout:.0f}s)")
    return value


class Server:
    started: list["Server"] = []  # every server a test started, so none outlives the test run

    def __init__(self, workers: int = 3, *args: str, env: dict[str, str] | None = None,
                 flood_control: bool = False, own_process_group: bool = False, data_dir: str | None = None) -> None:
        # Tests send their own bursts (trusted load); the flood-control tests turn it back on.
        flags = [] if flood_control else ["--no-flood-control"]
        # Each server its own database, unless a test restarts one on the same (data_dir).
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="hubchat-test-")
        self._own_data_dir = data_dir is None
        flags += ["--data-dir", self.data_dir]
        # Port 0 for every listener: tests never depend on a fixed port being free.
        cmd = [sys.executable, "-m", "hub", "--workers", str(workers), "--port", "0", "--web-port", "0", *flags, *args]
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=full_env, text=True, preexec_fn=_die_with_the_tests,
                                     # a group of its own can be sent Ctrl-C's SIGINT (os.killpg)
                                     process_group=0 if own_process_group else None)
        ready, _, _ = select.select([self.proc.stdout], [], [], TIMEOUT)
        line = self.proc.stdout.readline() if ready else ""
        match = START_LINE.search(line)
        if not match:
            self.proc.kill()
            raise AssertionError(f"server did not start: {line!r} {self.proc.stderr.read()!r}")
        self.host = match.group(1)
        self.port = int(match.group(2))
        self.tls_port = int(match.group(3)) if match.group(3) else None
        self.web_scheme = match.group(4)  # "http" or "https"; None with --no-web
        self.web_port = int(match.group(5)) if match.group(5) else None
        self.nworkers = int(match.group(6))
        self.pid = int(match.group(7))
        self.hub_pid = int(match.group(8))
        self.worker_pids = [int(p) for p in match.group(9).split()]
        self.store_pid = int(match.group(10)) if match.group(10) else None
        self.log = ""  # what the server wrote to stderr so far, as read by wait_for_log
        self._log_cursor = 0
        self._log_decoder = codecs.getincrementaldecoder("utf-8")("replace")
        Server.started.append(self)

    def wait_for_log(self, text: str, timeout: float = TIMEOUT) -> str:
        """The next line of the server's log (after the last one waited for) that contains
        `text`: the server logs what it did, so a test can wait for it instead of sleeping."""
        deadline = time.monotonic() + timeout
        fd = self.proc.stderr.fileno()
        while True:
            found = self.log.find(text, self._log_cursor)
            end = self.log.find("\n", found)
            if found >= 0 and end >= 0:
                self._log_cursor = end + 1
                return self.log[self.log.rfind("\n", 0, found) + 1:end]
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(remaining, 0))
            chunk = os.read(fd, 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"no log line with {text!r} within {timeout}s; the log so far:\n"
                                     f"{self.log[-3000:]}")
            self.log += self._log_decoder.decode(chunk)

    # --- processes -----------------------------------------------------------------------
    def children(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.pid).children()
        except psutil.NoSuchProcess:
            return []

    def current_workers(self) -> set[int]:
        return {p.pid for p in self.children()} - {self.current_hub(), self.current_store()}

    def current_hub(self) -> int | None:
        """The hub is the child holding neither the listening socket nor the database."""
        store = self.current_store()
        for child in self.children():
            try:
                if child.pid != store and not any(c.status == psutil.CONN_LISTEN and c.laddr.port == self.port
                                                  for c in child.net_connections("tcp")):
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None

    def current_store(self) -> int | None:
        """The history store is the child with the database open."""
        for child in self.children():
            try:
                if any(f.path.startswith(self.data_dir) for f in child.open_files()):
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None

    def wait_ready(self) -> None:
        """All workers up (each holds the listening socket) and a hub exists."""
        wait_for(lambda: len(self.current_workers()) == self.nworkers and self.current_hub(), what="server ready")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                for child in self.children():
                    child.kill()
                self.proc.kill()
                self.proc.wait()
        self.stderr = self.log + self._log_decoder.decode(self.proc.stderr.buffer.read(), final=True)
        self.proc.stdout.close()
        self.proc.stderr.close()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return self.proc.returncode

    def connect(self, auto_pong: bool = True, rcvbuf: int = 0) -> "Client":
        return Client(self.port, self.host, auto_pong, rcvbuf)


def worker_pid_of(server: Server, client: "Client | socket.socket", timeout: float = TIMEOUT) -> int:
    """The pid of the worker holding the server side of this connection (plain or TLS)."""
    sock = client.sock if isinstance(client, Client) else client
    return worker_pid_holding(server, sock.getsockname()[1], timeout)


def worker_pid_holding(server: Server, local_port: int, timeout: float = TIMEOUT) -> int:
    """The pid of the worker holding the server side of the connection from this local port."""
    listening = {server.port, server.tls_port, server.web_port}

    def find() -> int | None:
        for pid in server.current_workers():
            try:
                for conn in psutil.Process(pid).net_connections("tcp"):
                    if conn.raddr and conn.raddr.port == local_port and conn.laddr.port in listening:
                        return pid
            except psutil.NoSuchProcess:
                continue
        return None

    return wait_for(find, timeout, "the connection to be accepted")  # type: ignore[return-value]


class Client:
    def __init__(self, port: int, host: str = "127.0.0.1", auto_pong: bool = True, rcvbuf: int = 0) -> None:
        self.auto_pong = auto_pong  # answer server PINGs, as every real client does
        self.sock = socket.socket()
        if rcvbuf:  # before connecting, so the TCP window really is small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect((host, port))
        self.buffer = b""
        self.received: list[Message] = []
        self.cursor = 0
        self.closed = False
        self.nick: str | None = None

    def send(self, line: str | bytes) -> None:
        data = line if isinstance(line, bytes) else line.encode()
        self.sock.sendall(data if data.endswith(b"\n") else data + b"\r\n")

    def _read_more(self, deadline: float) -> bool:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or self.closed:
            return False
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return False
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\r\n")
        for line in lines:
            if line:
                msg = parse(line, MAX_TAG_DATA)  # a server adds its tags to the client's 4094 bytes
                self.received.append(msg)
                if msg.command == "PING" and self.auto_pong:
                    self.send(f"PONG :{msg.params[-1]}")
        return True

    def expect(self, command: str, *params: str, timeout: float = TIMEOUT,
               where: Callable[[Message], bool] | None = None, any_command: bool = False) -> Message:
        """The next message (after the last one expected) with this command and leading params."""
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self.cursor, len(self.received)):
                msg = self.received[i]
                if (any_command or msg.command == command) and list(msg.params[:len(params)]) == list(params) \
                        and (where is None or where(msg)):
                    self.cursor = i + 1
                    return msg
            if not self._read_more(deadline):
                seen = [(m.source, m.command, m.params) for m in self.received[self.cursor:]][-15:]
                state = "closed" if self.closed else "open"
                raise AssertionError(f"{self.nick}: no {command} {params} within {timeout}s ({state}); "
                                     f"last seen: {seen}")

    def expect_any(self, *commands: str, timeout: float = TIMEOUT) -> Message:
        """The next message whose command is any of these."""
        return self.expect(commands[0], timeout=timeout, where=None) if len(commands) == 1 else \
            self.expect("", timeout=timeout, where=lambda m: m.command in commands, any_command=True)

    def expect_closed(self, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.closed:
            if not self._read_more(deadline) and not self.closed:
                raise AssertionError(f"{self.nick}: connection still open after {timeout}s")

    def since(self, command: str) -> list[Message]:
        return [m for m in self.received if m.command == command]

    def register(self, nick: str, user: str = "tester", realname: str = "Test User") -> Message:
        self.nick = nick
        self.send(f"NICK {nick}")
        self.send(f"USER {user} 0 * :{realname}")
        welcome = self.expect("001")
        self.expect("376")
        return welcome

    def sync(self, *lines: str) -> None:
        """Send these lines, if any, then wait until they and everything sent before have been
        handled and whatever the hub answered to them (a refusal, an event) has arrived.

        The lines and the query go in one write, as a client's pipelined lines often arrive.
        `WHO` reads the replica, so the worker holds it until a barrier has been through the
        hub and back, behind every request this client sent before, and the hub answers in
        order; a nick that cannot exist gives an empty list whose end names the token. A PING
        would not do: the worker answers it at once, without asking the hub. Needs registration."""
        token = f"sync{time.monotonic_ns() % 10**12}"
        self.send("".join(f"{line}\r\n" for line in (*lines, f"WHO {token}")))
        self.expect("315", where=lambda m: m.params[1:2] == [token])

    def ping(self) -> None:
        """Round trip through this client's worker only: it read and answered everything sent
        before, but what it asked the hub may still be on its way. Works before registration."""
        token = f"ping{time.monotonic_ns()}"
        self.send(f"PING {token}")
        self.expect("PONG", where=lambda m: m.params[-1] == token)

    def close(self) -> None:
        self.closed = True
        self.sock.close()


def connections_on_distinct_workers(server: Server, count: int, connect: Callable[[], Any],
                                    dispose: Callable[[Any], None] = lambda spare: spare.close()) -> dict[int, Any]:
    """`count` connections made by `connect` (a test client, a TLS socket), each held by a
    different worker process (proved by psutil), by the pid of that worker. Those that land
    on a worker already chosen stay open until the end, so the acceptor sends the next
    ones elsewhere; then each is given to `dispose`."""
    chosen: dict[int, Any] = {}
    spare: list[Any] = []
    for _ in range(count * 8):
        connection = connect()
        pid = worker_pid_of(server, connection)
        if pid in chosen:
            spare.append(connection)
        else:
            chosen[pid] = connection
            if len(chosen) == count:
                break
    for connection in spare:
        dispose(connection)
    assert len(chosen) == count, f"could not spread {count} connections over distinct workers"
    return chosen


def client_on_worker(server: Server, pid: int, timeout: float = 2 * TIMEOUT) -> Client:
    """A connected client held by worker `pid` (proved by psutil), however long that worker
    takes to start accepting (a replacement may still be booting). Connections that land
    elsewhere stay open meanwhile, so the acceptor sends the next ones to the idler worker."""
    spare: list[Client] = []

    def attempt() -> Client | None:
        client = server.connect()
        if worker_pid_of(server, client) == pid:
            return client
        spare.append(client)
        return None

    try:
        found: Client = wait_for(attempt, timeout, f"a connection held by worker {pid}")  # type: ignore[assignment]
    finally:
        for client in spare:
            client.close()
    found.worker_pid = pid  # type: ignore[attr-defined]
    return found


def quit_through_the_hub(client: Client) -> None:
    """Register and QUIT: the hub forgets the connection (and the user, everywhere) before it
    answers, so once the connection is closed no count of the hub's includes it."""
    client.register(f"gone{time.monotonic_ns() % 10**9}")
    client.send("QUIT")
    client.expect_closed()


def clients_on_distinct_workers(server: Server, count: int) -> list[Client]:
    """`count` connected clients, each held by a different worker process (`worker_pid`)."""
    chosen = connections_on_distinct_workers(server, count, server.connect)
    for pid, client in chosen.items():
        client.worker_pid = pid  # type: ignore[attr-defined]
    return list(chosen.values())


def registered(server: Server, *nicks: str) -> list[Client]:
    """Registered clients, each on a different worker process."""
    clients = clients_on_distinct_workers(server, len(nicks))
    for client, nick in zip(clients, nicks):
        client.register(nick)
    return clients


def join_all(channel: str, *clients: Client) -> None:
    """Each joins in turn; returns once everyone has seen the last one arrive."""
    for client in clients:
        client.send(f"JOIN {channel}")
        client.expect("366", client.nick, channel)
    last = clients[-1]
    for client in clients[:-1]:
        client.expect("JOIN", channel, where=lambda m: m.source.startswith(last.nick + "!"))


def motd_on_every_worker(server: Server) -> list[str]:
    """The first MOTD line each worker shows, in the welcome burst and to the MOTD command,
    to a new client of its own."""
    texts = []
    for probe in clients_on_distinct_workers(server, server.nworkers):
        probe.register(f"motd{time.monotonic_ns() % 10**9}")
        texts.append(probe.since("372")[0].params[1])
        probe.send("MOTD")
        texts.append(probe.expect("372").params[1])
        probe.close()
    return texts


def isupport(client: Client) -> dict[str, str]:
    """The ISUPPORT tokens of the client's welcome burst: name -> value ("" for a bare name)."""
    return {t.partition("=")[0]: t.partition("=")[2] for m in client.since("005") for t in m.params[1:-1]}
