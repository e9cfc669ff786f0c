"""The store's writing jobs: one at a time, in the order submitted, on one of two threads.

The writing connection's work (commits, retention, read markers) should give way to the clients'
delivery while the store keeps up, and must not starve when something else keeps the cores busy:
the hub's backpressure would then stall every client for as long as that lasted (measured:
docs/performance.md). A thread may lower its own priority but not raise it again, so there are
two threads: one at a lower priority, one at the normal one. Each job goes to the low one unless
the store is behind (`hurry`). A job starts only once the one before it has finished, so the
connection is never used by both threads at once; a job already running on the low thread when
the store falls behind finishes there (one commit: milliseconds of work, at a tenth of a core's
share at worst)."""
from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, Callable


class WritingThreads(Executor):
    def __init__(self, niceness: int) -> None:
        self.low = ThreadPoolExecutor(1, thread_name_prefix="store")
        self.normal = ThreadPoolExecutor(1, thread_name_prefix="store-hurried")
        self.low.submit(_lower_this_thread, niceness).result()  # its one thread, made now, stays
        self.hurry = False  # set by the store's loop: the next jobs run at the normal priority
        self._lock = threading.Lock()
        self._queue: deque[tuple[Future, Callable[..., Any], tuple, dict]] = deque()
        self._busy = False  # a job is running or about to: the next waits for it

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        with self._lock:
            self._queue.append((future, fn, args, kwargs))
            if self._busy:
                return future
            self._busy = True
        self._start_next()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.low.shutdown(wait)
        self.normal.shutdown(wait)

    def _start_next(self) -> None:
        with self._lock:
            if not self._queue:
                self._busy = False
                return
            job = self._queue.popleft()
        (self.normal if self.hurry else self.low).submit(self._run, job)

    def _run(self, job: tuple[Future, Callable[..., Any], tuple, dict]) -> None:
        future, fn, args, kwargs = job
        if future.set_running_or_notify_cancel():
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # the caller's to see, as with any executor
                future.set_exception(exc)
            else:
                future.set_result(result)
        self._start_next()


def _lower_this_thread(niceness: int) -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)  # one thread, on Linux
    except (AttributeError, OSError):
        pass  # elsewhere the store writes at the normal priority
