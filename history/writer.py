"""The store's writing jobs: one at a time, in the order submitted, in an idle-priority process of
their own while the store keeps up, on threads of the store process when it falls behind.

Why a process at idle priority
------------------------------
A commit is a burst of CPU (milliseconds to tens of ms at 30,000 messages a second: SQLite's
inserts, the msgid index and the search words, about 8 us a message, near what SQLite needs:
measured in docs/performance.md), and the clients' delivery runs on the same cores. Only
SCHED_IDLE keeps such work out of its way: under Linux's scheduler (EEVDF) a task at nice +10
or +19 still holds a core for a slice when a worker wakes, and the clients' latency pays for it;
a SCHED_IDLE task gives the core up at once. SCHED_IDLE cannot be a thread of the store process,
though: a starved thread holding the GIL would stall the store's loop (and with it the hub's
link and every query) for as long as something else kept the cores busy. So the idle work runs
in a child process, `python -m history.writer`, started at SCHED_IDLE, with its own connection,
over a socketpair. Arguments and results cross it pickled: a commit's batches are bytes already
(history.feed.pack), so that is a copy.

When the cores are busy
-----------------------
An idle task runs only while a core has nothing else to do, so on a busy machine the store
falls behind. The store's loop then moves the jobs (`tier`) to a thread of its own at nice +10
(LOW: a share of the CPU, small but certain, as a commit needs), and when it is far behind to a
thread at the normal priority (NORMAL), and back as it catches up. `unstick` (the store looks
every STUCK_CHECK) kills a child that has held one job for STUCK_AFTER: the job is done again on
a thread, and later jobs stay there until a new child is up (a child that died is started again
at the next job that may use it, at most once every RESPAWN_INTERVAL). That is safe because
every job is idempotent (rows are ignored by msgid when stored already, channel settings and
accounts are replaced, read markers only move forward, retention deletes what is due), and
SQLite rolls back a transaction whose process died.

A job is `fn(db, *args)`: `db` is the `Database` of the side that runs it (each side opens
its own), `fn` a module-level function (it is pickled by name for the child). A job starts
only once the one before it has finished, so no two connections ever write at once.
"""
from __future__ import annotations

import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing.connection import Connection
from typing import Any, Callable

log = logging.getLogger("hubchat.store")

RESPAWN_INTERVAL = 10.0  # seconds at least between starts of the idle writer process
STUCK_AFTER = 0.3  # seconds one job may run in the idle writer before it is done again on a thread
LOW_NICENESS = 10
READY = b"ready"  # the idle writer's first word: its database is open
IDLE, LOW, NORMAL = 0, 1, 2  # where the next job runs: the idle writer, the nice +10 thread, the normal one


class Database:
    """What a job writes to: the history and the accounts, in the one file."""

    def __init__(self, path: str, synchronous: str) -> None:
        # Imported here: the idle writer is at SCHED_IDLE before it reads them (serve).
        from accounts.store import AccountStore
        from history.store import SQLiteStore
        self.history = SQLiteStore(path, synchronous)
        self.accounts = AccountStore(path)

    def close(self) -> None:
        self.history.close()
        self.accounts.close()


class WritingJobs:
    def __init__(self, path: str, synchronous: str = "normal", idle_process: bool = True) -> None:
        self.path, self.synchronous = path, synchronous
        self.normal = ThreadPoolExecutor(1, thread_name_prefix="store-writes")
        self.low = ThreadPoolExecutor(1, thread_name_prefix="store-writes-low")
        self.low.submit(_lower_this_thread, LOW_NICENESS).result()  # its one thread, made now, stays
        self.db = self.normal.submit(Database, path, synchronous).result()  # the threads' connection
        self.idle_process = idle_process and hasattr(os, "sched_setscheduler")
        self.idle: _Child | None = None
        self.idle_waiter = ThreadPoolExecutor(1, thread_name_prefix="store-idle-writer")  # waits on the child
        self._last_start = -RESPAWN_INTERVAL
        self.tier = IDLE  # set by the store's loop: where the next jobs run
        self.ran = [0, 0, 0]  # jobs started, by where they ran: IDLE, LOW, NORMAL (for /metrics)
        self.stuck = 0  # idle writers killed by unstick
        self._lock = threading.Lock()
        self._queue: deque[tuple[Future, Callable[..., Any], tuple, bool]] = deque()
        self._busy = False  # a job is running or about to: the next waits for it
        self._running_since: float | None = None  # when the child started the job it runs now
        if self.idle_process:
            self._start_child()

    def submit(self, fn: Callable[..., Any], *args: Any, now: bool = False) -> Future:
        """Queue `fn(db, *args)`; `now`: on a thread whatever the tier, for a job someone waits
        on (the store's hello to a new hub), which an idle writer could hold up for as long as
        the cores are busy."""
        future: Future = Future()
        with self._lock:
            self._queue.append((future, fn, args, now))
            if self._busy:
                return future
            self._busy = True
        self._start_next()
        return future

    def unstick(self, after: float = STUCK_AFTER) -> bool:
        """Kill the idle writer if it has held one job for longer than `after` (it has not had a
        core for it); the job is done again on a thread. Returns whether it did."""
        since, child = self._running_since, self.idle
        if since is None or child is None or time.monotonic() - since < after:
            return False
        log.info("store: the idle writer has held a job for %.1fs; doing it again at a higher priority",
                 time.monotonic() - since)
        child.kill()
        self.stuck += 1
        return True

    def shutdown(self) -> None:
        """Once every job queued is done: the writer has nothing in hand then, so it is simply
        killed (an idle-priority process could take long to see the end of its socket on a busy
        machine; its connection has no transaction open)."""
        self.submit(_nothing, now=True).result()
        self.idle_waiter.submit(self._stop_child).result()
        self.idle_waiter.shutdown()
        self.normal.submit(self.db.close).result()
        self.normal.shutdown()
        self.low.shutdown()

    def idle_writer_ready(self, timeout: float) -> bool:
        """Wait up to `timeout` for the idle writer to have opened its database (while no job is
        in hand: for tests, and for anyone who must know the next job goes there)."""
        child = self.idle
        if child is None:
            return False
        try:
            child.conn.poll(timeout)
        except (EOFError, OSError):
            return False
        return child.ready()

    @property
    def idle_pid(self) -> int | None:
        return self.idle.pid if self.idle is not None else None

    # --- running the queue ---------------------------------------------------------------------
    def _start_next(self) -> None:
        with self._lock:
            if not self._queue:
                self._busy = False
                return
            job = self._queue.popleft()
        # Jobs never overlap, so neither do these counts.
        if self.tier == IDLE and self.idle_process and not job[3] and self._idle_ready():
            self.ran[IDLE] += 1
            self.idle_waiter.submit(self._run_idle, job)
        else:
            thread = self._thread()
            self.ran[NORMAL if thread is self.normal else LOW] += 1
            thread.submit(self._run_here, job)

    def _idle_ready(self) -> bool:
        """Whether the idle writer can take a job now. One that has died is reaped and another
        started (at most once per RESPAWN_INTERVAL); until one has opened its database (at idle
        priority, which takes as long as the cores are busy), jobs run on a thread."""
        child = self.idle
        if child is not None and not child.alive():
            self._lost(child, None)
            child = None
        if child is None:
            self._start_child()
            return False
        return child.ready()

    def _thread(self) -> ThreadPoolExecutor:
        return self.normal if self.tier == NORMAL else self.low

    def _run_here(self, job: tuple) -> None:
        future, fn, args, _ = job
        if future.set_running_or_notify_cancel():
            try:
                result = fn(self.db, *args)
            except BaseException as exc:  # the caller's to see, as with any executor
                future.set_exception(exc)
            else:
                future.set_result(result)
        self._start_next()

    def _run_idle(self, job: tuple) -> None:
        """On the waiting thread: hand the job to the child and wait for its answer; a child that
        is gone hands it to a thread instead."""
        future, fn, args, _ = job
        child = self.idle
        if child is None:
            self._thread().submit(self._run_here, job)
            return
        self._running_since = time.monotonic()
        try:
            outcome, value = child.run(fn, args)
        except (EOFError, OSError) as exc:
            self._running_since = None
            self._lost(child, exc)
            self._thread().submit(self._run_here, job)
            return
        self._running_since = None
        if future.set_running_or_notify_cancel():
            if outcome == "ok":
                future.set_result(value)
            else:
                future.set_exception(value)
        self._start_next()

    def _start_child(self) -> _Child | None:
        if time.monotonic() - self._last_start < RESPAWN_INTERVAL:
            return None
        self._last_start = time.monotonic()
        try:
            self.idle = _Child.start(self.path, self.synchronous)
        except OSError as exc:
            log.warning("store: could not start the idle writer (%s); writing at the normal priority", exc)
            self.idle = None
        return self.idle

    def _lost(self, child: _Child, exc: BaseException | None) -> None:
        if self.idle is child:
            self.idle = None
        code = child.reap()
        if not child.killed:
            log.warning("store: the idle writer exited (code %s%s); writing at the normal priority until it is back",
                        code, f", {exc.__class__.__name__}" if exc else "")

    def _stop_child(self) -> None:
        if self.idle is not None:
            self.idle.stop()
            self.idle = None


class _Child:
    """The idle writer process, seen from the store."""

    def __init__(self, process: subprocess.Popen, conn: Connection) -> None:
        self.process, self.conn = process, conn
        self.killed = False
        self._ready = False

    @classmethod
    def start(cls, path: str, synchronous: str) -> _Child:
        ours, theirs = socket.socketpair()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "history.writer", str(theirs.fileno()), path, synchronous],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (_import_root(), os.environ.get("PYTHONPATH"))))})
        finally:
            theirs.close()
        return cls(process, Connection(ours.detach()))

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def ready(self) -> bool:
        """Whether it has said it opened its database (never asked while it runs a job)."""
        if not self._ready:
            try:
                self._ready = self.conn.poll(0) and self.conn.recv_bytes() == READY
            except (EOFError, OSError):
                return False
        return self._ready

    def run(self, fn: Callable[..., Any], args: tuple) -> tuple[str, Any]:
        self.conn.send_bytes(pickle.dumps((fn, args), pickle.HIGHEST_PROTOCOL))
        return pickle.loads(self.conn.recv_bytes())

    def kill(self) -> None:
        self.killed = True
        try:
            self.process.kill()
        except OSError:
            pass

    def reap(self) -> int | None:
        self.conn.close()
        try:
            return self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def stop(self) -> None:
        self.kill()
        self.reap()


def _nothing(db: Database) -> None:
    pass


def _lower_this_thread(niceness: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)  # one thread, on Linux
    except (AttributeError, OSError):
        pass  # elsewhere the thread writes at the normal priority


def _import_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- the child ------------------------------------------------------------------------------------------
def serve(fd: int, path: str, synchronous: str) -> None:
    """The idle writer: jobs from the store, one at a time, until its socket ends (the store
    stopped, or died: then after the job in hand)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's ^C is the supervisor's to handle
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    conn = Connection(fd)
    db = Database(path, synchronous)
    conn.send_bytes(READY)
    try:
        while True:
            try:
                fn, args = pickle.loads(conn.recv_bytes())
            except EOFError:
                return
            try:
                answer = ("ok", fn(db, *args))
            except BaseException as exc:
                answer = ("error", exc)
            try:
                data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
            except Exception:  # an exception that does not pickle still fails its job
                data = pickle.dumps(("error", RuntimeError(repr(answer[1]))), pickle.HIGHEST_PROTOCOL)
            conn.send_bytes(data)
    finally:
        db.close()


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2], sys.argv[3])
