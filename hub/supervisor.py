"""The supervisor: binds the listening socket, forks the hub and the workers, keeps them alive.

Theory of operation
-------------------
A small synchronous loop, after gunicorn's arbiter. Signal handlers only queue the signal; the
loop wakes (the signal wakeup fd), handles what was queued, reaps children, restarts the dead
and sleeps again. Everything a child needs is built before `fork` and each child closes what
is not its own, so that when a process dies its peers see end-of-file at once: the hub on the
worker's link, the children on their control channel when the supervisor itself is gone.

Links: the supervisor makes one `multiprocessing.Pipe()` per (hub, worker) pair and hands the
two ends over the control channels, both when a worker starts and, for every worker, when a
new hub starts. A worker that loses its hub keeps its clients and waits for the next link.
The history store (with history on) is linked to the hub the same way.

A child that dies within `BOOT_GRACE` seconds of its start has failed at boot; after
`MAX_BOOT_FAILURES` such failures in a row the supervisor stops the server with a message
rather than looping forever.

The HTTP listener (web.*) is bound here too and shared by the workers like the IRC ones. The
metrics board (web/metrics.py) is made here: the supervisor writes each child's pid, CPU time
and memory into it once a second, counts restarts, and keeps a dead child's counters.
"""
from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import secrets
import select
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import config as config_pkg
from config import Config
from ipc import control
from ipc.child import Heartbeat
from config.tls import server_context, tls_enabled
from web import metrics

log = logging.getLogger("hubchat.supervisor")

BOOT_GRACE = 2.0
MAX_BOOT_FAILURES = 5
GRACEFUL_TIMEOUT = 4.0
HUB = "hub"
WORKER = "worker"
STORE = "store"
HUB_SLOT, STORE_SLOT = -1, -2
SAMPLE_INTERVAL = 1.0  # seconds between samples of every process's CPU and memory, for /metrics


@dataclass
class Child:
    role: str  # HUB, WORKER or STORE
    slot: int  # worker slot, HUB_SLOT or STORE_SLOT
    pid: int
    wid: int
    control: socket.socket
    started: float = field(default_factory=time.monotonic)
    hung: bool = False  # killed for missing its heartbeat

    @property
    def label(self) -> str:
        return self.role if self.role != WORKER else f"worker {self.slot} (wid {self.wid})"


def _run_hub(cfg: Config, ctl: socket.socket, *, heartbeat: Heartbeat, board: metrics.Board | None = None,
             seat=None, **_: object) -> None:
    if seat is not None:
        from hub.clustered import ClusteredHub
        hub = ClusteredHub(cfg, ctl, heartbeat, seat)
    else:
        from hub.hub import Hub
        hub = Hub(cfg, ctl, heartbeat)
    if board is not None:
        hub.metrics_row = board.row(board.hub)
    hub.run()


def _run_store(cfg: Config, ctl: socket.socket, *, heartbeat: Heartbeat, board: metrics.Board | None = None,
               **_: object) -> None:
    from history.service import StoreProcess
    store = StoreProcess(cfg, ctl, heartbeat)
    if board is not None:
        store.metrics_row = board.row(board.store)
    store.run()


def _run_worker(cfg: Config, ctl: socket.socket, *, wid: int, slot: int, listener: socket.socket,
                tls_listener: socket.socket | None, tls_context, loads, boot_id: str, started_at: float,
                heartbeat: Heartbeat, web_listener: socket.socket | None = None,
                board: metrics.Board | None = None) -> None:
    from workers.worker import Worker
    Worker(cfg, wid, slot, listener, ctl, loads, boot_id, started_at, tls_listener, heartbeat, tls_context,
           web_listener=web_listener, board=board).run()


class Supervisor:
    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD)

    def __init__(self, cfg: Config, reload: Callable[[], Config] | None = None,
                 hub_main=_run_hub, worker_main=_run_worker, store_main=_run_store) -> None:
        self.config = cfg
        self.reload = reload
        self.hub_main = hub_main
        self.worker_main = worker_main
        self.store_main = store_main
        self.nworkers = cfg.server.workers or os.cpu_count() or 1
        self.children: dict[int, Child] = {}  # pid -> child
        self.failures: dict[int, int] = {}  # slot -> boot failures in a row
        self.restart_at: dict[int, float] = {}  # slot -> when to start it again
        self.signals: list[int] = []
        self.next_wid = 0
        self.boot_id = secrets.token_hex(3)
        self.started_at = time.time()
        self.stopping = False
        self.exit_code = 0
        self.web_listener: socket.socket | None = None
        self._sampled_at = 0.0
        self._ps: dict[int, object] = {}  # pid -> psutil.Process, made once per process
        self.seat = None  # cluster.seat.Seat with --cluster: this host's number and lease

    # --- setup ---------------------------------------------------------------------------
    @staticmethod
    def _listen(host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(4096)
        return sock

    def bind(self) -> None:
        server = self.config.server
        # Refuse to start with a certificate that does not load. Workers inherit this context
        # instead of reading the files, which may have changed (and been refused) since.
        self.tls_context = server_context(self.config)
        self.listener = self._listen(server.host, server.port)
        self.address = self.listener.getsockname()[:2]
        self.tls_listener = self._listen(server.host, server.tls_port) if tls_enabled(self.config) else None
        web = self.config.web
        if web.enabled:
            try:
                self.web_listener = self._listen(web.host, web.port)
            except OSError as exc:
                raise config_pkg.ConfigError(f"web.host/web.port: cannot listen on {web.host}:{web.port}: "
                                             f"{exc.strerror}") from None
        if self.config.history.enabled:
            os.makedirs(server.data_dir, exist_ok=True)  # a directory that cannot be made stops the start here
        self.loads = multiprocessing.RawArray("q", [-1] * self.nworkers)
        # One heartbeat clock per child (the workers' slots, then the hub and the store), stamped by
        # the child's loop every second: a process that is alive but stuck stops stamping (gunicorn's idea).
        self.beats = multiprocessing.RawArray("d", self.nworkers + 2)
        self.board = metrics.Board(self.nworkers, self.beats)
        self.board.row(self.board.supervisor).put("pid", os.getpid())

    def install_signals(self) -> None:
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.set_wakeup_fd(self.wake_w)
        for sig in self.SIGNALS:
            signal.signal(sig, lambda signum, frame: self.signals.append(signum))

    # --- children ------------------------------------------------------------------------
    def _beat_index(self, slot: int) -> int:
        return slot if slot >= 0 else self.nworkers - 1 - slot

    def _board_row(self, slot: int) -> int:
        return slot if slot >= 0 else self.board.hub if slot == HUB_SLOT else self.board.store

    def _fork(self, role: str, slot: int, run: Callable[..., None], **kwargs: object) -> Child:
        ours, theirs = control.pair()
        self.next_wid += 1
        wid = self.next_wid
        beat = self._beat_index(slot)
        self.beats[beat] = time.monotonic()  # a newborn has not missed a beat
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                self._become_child(role)
                ours.close()
                heartbeat = Heartbeat(self.beats, beat)
                if role != WORKER:
                    run(self.config, theirs, heartbeat=heartbeat, board=self.board, **kwargs)
                else:
                    run(self.config, theirs, wid=wid, slot=slot, heartbeat=heartbeat, **kwargs)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                logging.getLogger("hubchat").exception("%s crashed", role)
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        theirs.close()
        row = self.board.row(self._board_row(slot))
        row.put("pid", pid)
        row.put("up", 1)
        child = Child(role, slot, pid, wid, ours)
        self.children[pid] = child
        log.info("started %s, pid %d", child.label, pid)
        return child

    def _become_child(self, role: str) -> None:
        """Drop the supervisor's signal handling and every fd that is not this child's."""
        signal.set_wakeup_fd(-1)
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the supervisor decides
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # reloads arrive over the control channel
        os.close(self.wake_r)
        os.close(self.wake_w)
        for child in self.children.values():
            child.control.close()
        if role != WORKER:
            self.listener.close()
            if self.tls_listener is not None:
                self.tls_listener.close()
            if self.web_listener is not None:
                self.web_listener.close()

    def hub(self) -> Child | None:
        return next((c for c in self.children.values() if c.role == HUB), None)

    def workers(self) -> list[Child]:
        return [c for c in self.children.values() if c.role == WORKER]

    def store(self) -> Child | None:
        return next((c for c in self.children.values() if c.role == STORE), None)

    def spawn_hub(self) -> None:
        hub = self._fork(HUB, HUB_SLOT, self.hub_main, **({"seat": self.seat} if self.seat else {}))
        for worker in self.workers():
            self._link(hub, worker)
        store = self.store()
        if store is not None:
            self._link(hub, store, control.STORE)

    def spawn_store(self) -> None:
        store = self._fork(STORE, STORE_SLOT, self.store_main)
        hub = self.hub()
        if hub is not None:
            self._link(hub, store, control.STORE)

    def spawn_worker(self, slot: int) -> None:
        self.loads[slot] = 0
        worker = self._fork(WORKER, slot, self.worker_main, listener=self.listener,
                            tls_listener=self.tls_listener, tls_context=self.tls_context, loads=self.loads,
                            boot_id=self.boot_id, started_at=self.started_at, web_listener=self.web_listener,
                            board=self.board)
        hub = self.hub()
        if hub is not None:
            self._link(hub, worker)

    def _link(self, hub: Child, peer: Child, kind: str = control.LINK) -> None:
        hub_end, peer_end = multiprocessing.Pipe(duplex=True)
        try:
            self._tell(hub, (kind, peer.wid) if kind == control.LINK else (kind,), [hub_end.fileno()])
            self._tell(peer, (control.HUB,), [peer_end.fileno()])
        finally:
            hub_end.close()
            peer_end.close()

    def _tell(self, child: Child, message: tuple, fds: list[int] = ()) -> None:  # type: ignore[assignment]
        try:
            control.send(child.control, message, fds)
        except OSError as exc:  # it died; reaping will restart it and relink
            log.debug("could not reach %s: %s", child.label, exc)

    # --- main loop -----------------------------------------------------------------------
    def join_cluster(self) -> None:
        """With --cluster: this host's number and lease, before anything is forked (no thread or
        socket of Redis's outlives this call)."""
        cluster = self.config.cluster
        if not cluster.redis_url:
            return
        from cluster.seat import SeatError, take
        try:
            self.seat = take(cluster.redis_url, cluster.host_name, cluster.lease)
        except SeatError as exc:
            raise config_pkg.ConfigError(str(exc)) from None
        self.next_wid = self.seat.first_wid

    def run(self) -> int:
        self.join_cluster()
        self.bind()
        self.install_signals()
        self.spawn_hub()
        if self.config.history.enabled:
            self.spawn_store()
        for slot in range(self.nworkers):
            self.spawn_worker(slot)
        host, port = self.address
        pids = " ".join(str(w.pid) for w in sorted(self.workers(), key=lambda c: c.slot))
        tls = f" and TLS on {host}:{self.tls_listener.getsockname()[1]}" if self.tls_listener else ""
        if self.web_listener is not None:
            web_host, web_port = self.web_listener.getsockname()[:2]
            tls += f" and web on {'https' if self.tls_listener else 'http'}://{web_host}:{web_port}"
        store = self.store()
        print(f"hubchat listening on {host}:{port}{tls} with {self.nworkers} workers "
              f"(supervisor {os.getpid()}, hub {self.hub().pid}, workers {pids}"  # type: ignore[union-attr]
              f"{f', store {store.pid}' if store else ''})", flush=True)
        while not self.stopping:
            self._sleep(0.2)
            self._handle_signals()
            self._reap()
            self._restart_due()
            self._kill_hung()
            self._sample()
        self._stop_children()
        return self.exit_code

    def _sleep(self, timeout: float) -> None:
        if self.restart_at:
            timeout = max(0.0, min(timeout, min(self.restart_at.values()) - time.monotonic()))
        try:
            select.select([self.wake_r], [], [], timeout)
            while os.read(self.wake_r, 512):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig in (signal.SIGTERM, signal.SIGINT):
                log.info("received %s: shutting down", signal.Signals(sig).name)
                self.stopping = True
            elif sig == signal.SIGHUP:
                self.handle_hup()

    def handle_hup(self) -> None:
        if self.reload is None:
            return
        try:
            new = self.reload()
            if tls_enabled(new) != (self.tls_listener is not None):
                raise config_pkg.ConfigError("server.tls_cert/server.tls_key: turning TLS on or off needs a restart")
            tls_context = server_context(new)  # a certificate that does not load is refused before anyone uses it
        except config_pkg.ConfigError as exc:
            log.error("configuration not reloaded: %s", exc)
            return
        self.tls_context = tls_context
        old = self.config.server
        for key in ("host", "port", "workers"):
            if getattr(new.server, key) != getattr(old, key):
                log.warning("server.%s changed; it takes effect at the next start", key)
        for key in ("enabled", "host", "port"):
            if getattr(new.web, key) != getattr(self.config.web, key):
                log.warning("web.%s changed; it takes effect at the next start", key)
        self.config = new
        for child in list(self.children.values()):
            self._tell(child, (control.CONFIG, new))
        log.info("configuration reloaded")

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            child = self.children.pop(pid, None)
            if child is None:
                continue
            child.control.close()
            if child.role == WORKER:
                self.loads[child.slot] = -1
            self.board.retire(self._board_row(child.slot))  # its counters stay in the totals
            self._ps.pop(pid, None)
            if self.stopping:
                continue
            how = (f"killed by {signal.Signals(-os.waitstatus_to_exitcode(status)).name}"
                   if os.WIFSIGNALED(status) else f"exit code {os.waitstatus_to_exitcode(status)}")
            lived = time.monotonic() - child.started
            if lived < BOOT_GRACE:
                self.failures[child.slot] = self.failures.get(child.slot, 0) + 1
            else:
                self.failures[child.slot] = 0
            fails = self.failures[child.slot]
            if fails >= MAX_BOOT_FAILURES:
                log.error("%s failed %d times in a row within %.0fs of starting (last: %s); stopping the server",
                          child.label, fails, BOOT_GRACE, how)
                self.exit_code = 1
                self.stopping = True
                return
            delay = 0.0 if fails <= 1 else min(0.8, 0.1 * 2 ** (fails - 2))
            log.warning("%s (pid %d) died: %s after %.1fs; restarting%s", child.label, pid, how, lived,
                        f" in {delay:.1f}s" if delay else "")
            self.restart_at[child.slot] = time.monotonic() + delay
            restarts = self.board.row(self.board.supervisor)
            restarts.put("restarts_" + child.role, restarts.get("restarts_" + child.role) + 1)

    def _sample(self) -> None:
        """Every process's CPU time and memory into its row of the board, once a second."""
        now = time.monotonic()
        if now - self._sampled_at < SAMPLE_INTERVAL:
            return
        self._sampled_at = now
        import psutil  # here: the supervisor is imported by tools that never sample
        targets = [(os.getpid(), self.board.supervisor)] + \
            [(c.pid, self._board_row(c.slot)) for c in self.children.values()]
        for pid, index in targets:
            try:
                proc = self._ps.get(pid)
                if proc is None:
                    proc = self._ps[pid] = psutil.Process(pid)
                with proc.oneshot():  # type: ignore[attr-defined]
                    cpu = proc.cpu_times()  # type: ignore[attr-defined]
                    rss = proc.memory_info().rss  # type: ignore[attr-defined]
            except psutil.Error:
                continue
            row = self.board.row(index)
            row.put("cpu_seconds", cpu.user + cpu.system)
            row.put("rss_bytes", rss)

    def _kill_hung(self) -> None:
        """A child whose loop has not stamped its heartbeat for hang_timeout seconds is stuck
        (an endless loop, a blocking call, SIGSTOP): kill it, and reaping restarts it."""
        limit = self.config.server.hang_timeout
        now = time.monotonic()
        for child in list(self.children.values()):
            silent = now - self.beats[self._beat_index(child.slot)]
            if silent > limit and not child.hung:
                child.hung = True
                log.error("%s (pid %d) has not stamped its heartbeat for %.0fs; killing it",
                          child.label, child.pid, silent)
                self._kill(child.pid, signal.SIGKILL)

    def _restart_due(self) -> None:
        now = time.monotonic()
        for slot, when in sorted(self.restart_at.items()):  # the store and the hub (negative slots) first
            if when <= now and not self.stopping:
                del self.restart_at[slot]
                if slot == HUB_SLOT:
                    self.spawn_hub()
                elif slot == STORE_SLOT:
                    self.spawn_store()
                else:
                    self.spawn_worker(slot)

    def _stop_children(self) -> None:
        """Workers first (they say goodbye to their clients), then the hub they report to, then the
        store the hub reports to (it commits what the hub sent last). Each group has its own time:
        a hub still taking 50,000 goodbyes is busy, not stuck."""
        for group in (self.workers, lambda: [c for c in (self.hub(),) if c], lambda: [c for c in (self.store(),) if c]):
            deadline = time.monotonic() + GRACEFUL_TIMEOUT
            for child in group():
                self._kill(child.pid, signal.SIGTERM)
            while group() and time.monotonic() < deadline:
                self._sleep(0.05)
                self._reap()
        for child in self.children.values():
            log.warning("%s did not stop in time; killing it", child.label)
            self._kill(child.pid, signal.SIGKILL)
        while self.children:
            pid, _ = os.waitpid(-1, 0)
            self.children.pop(pid, None)
        self.listener.close()
        if self.tls_listener is not None:
            self.tls_listener.close()
        if self.web_listener is not None:
            self.web_listener.close()
        log.info("stopped")

    @staticmethod
    def _kill(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            if exc.errno != errno.ESRCH:
                raise


def setup_logging(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s[%(process)d] %(message)s")
