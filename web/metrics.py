"""Metrics that are correct across processes: one row of numbers per process, in shared memory.

Theory of operation
-------------------
The supervisor makes one `RawArray` of doubles before it forks anyone, as it does for the
accept loads and the heartbeats: a row per worker slot, then the hub's, the store's, its own and
a "retired" row (`Board`). A worker or the hub counts on its hot path in plain ints and copies
them into its row once a second, on its heartbeat tick (`Row.put`: a handful of stores). The
supervisor fills in every process's pid, CPU time and resident memory once a second (psutil),
and when it reaps a child it adds the child's counters to the retired row and clears its row,
so a total over the rows never goes down across restarts (what a killed process counted in its
last second is lost). Whichever worker answers `GET /metrics` reads every row and renders the
Prometheus text format (`render`); `GET /healthz` reads the same rows (`health`).

Why not prometheus_client's multiprocess mode: every increment there takes a lock and writes a
double into an mmap'd file (about a microsecond in Python, on a path that runs millions of
times a second), the files live in a directory that must be wiped at start and cleaned when a
process dies, and every scrape reads and merges them all. A plain `+= 1` costs about 20 ns.

No import of the rest of the project: the supervisor, the hub and the workers all import this.
"""
from __future__ import annotations

import math
import multiprocessing
import time

# The columns of a row. Counters (summed over the rows, the retired one included) first.
COUNTERS = ("registrations", "commands_in", "messages_in", "deliveries", "bytes_in", "bytes_out",
            "sendq_drops", "http_requests", "websockets_opened",
            "store_jobs_idle", "store_jobs_low", "store_jobs_normal", "store_writer_stuck")
STORE_PRIORITIES = ("idle", "low", "normal")  # where the store's writing jobs ran: history/writer.py
GAUGES = ("up", "pid", "cpu_seconds", "rss_bytes", "linked", "conn_tcp", "conn_tls", "conn_websocket",
          "hub_queue_bytes", "hub_parked", "history_unfinished", "history_entries",
          "restarts_worker", "restarts_hub", "restarts_store")
FIELDS = COUNTERS + GAUGES
F = {name: i for i, name in enumerate(FIELDS)}
NF = len(FIELDS)
TRANSPORTS = ("tcp", "tls", "websocket")

HEARTBEAT_STALE = 3.0  # seconds without a heartbeat after which a process does not count as up


class Board:
    """The shared rows: workers 0..n-1, then the hub, the store, the supervisor, the retired."""

    def __init__(self, nworkers: int, beats=None) -> None:
        self.nworkers = nworkers
        self.hub, self.store, self.supervisor, self.retired = nworkers, nworkers + 1, nworkers + 2, nworkers + 3
        self.rows = nworkers + 4
        self.array = multiprocessing.RawArray("d", self.rows * NF)
        self.beats = beats  # the supervisor's heartbeat clocks: workers' slots, then the hub, the store

    def row(self, index: int) -> "Row":
        return Row(self.array, index * NF)

    def get(self, index: int, name: str) -> float:
        return self.array[index * NF + F[name]]

    def total(self, name: str) -> float:
        i = F[name]
        return sum(self.array[r * NF + i] for r in range(self.rows))

    def retire(self, index: int) -> None:
        """A process in this row is gone: keep its counters in the retired row, clear the rest."""
        array, base, retired = self.array, index * NF, self.retired * NF
        for name in COUNTERS:
            array[retired + F[name]] += array[base + F[name]]
        for i in range(NF):
            array[base + i] = 0.0

    def role(self, index: int) -> tuple[str, str]:
        if index < self.nworkers:
            return "worker", str(index)
        return {self.hub: "hub", self.store: "store", self.supervisor: "supervisor"}[index], ""


class Row:
    """One process's row, as that process writes it."""

    __slots__ = ("array", "base")

    def __init__(self, array, base: int) -> None:
        self.array = array
        self.base = base

    def put(self, name: str, value: float) -> None:
        self.array[self.base + F[name]] = value

    def get(self, name: str) -> float:
        return self.array[self.base + F[name]]


def _beat_fresh(board: Board, index: int, now: float) -> bool:
    if board.beats is None:
        return True
    beat = index if index < board.nworkers else board.nworkers + (index - board.hub)
    return now - board.beats[beat] < HEARTBEAT_STALE


def health(board: Board, now: float | None = None) -> tuple[bool, list[str]]:
    """Whether the hub and every worker are up (alive, stamping their heartbeat) and every worker
    is linked to the hub; with one line per process saying which."""
    now = time.monotonic() if now is None else now
    lines = []
    ok = True
    hub_up = board.get(board.hub, "up") > 0 and _beat_fresh(board, board.hub, now)
    ok &= hub_up
    lines.append(f"hub: {'up' if hub_up else 'down'}")
    for slot in range(board.nworkers):
        up = board.get(slot, "up") > 0 and _beat_fresh(board, slot, now)
        linked = up and board.get(slot, "linked") > 0
        ok &= linked
        lines.append(f"worker {slot}: {'linked' if linked else 'up, not linked' if up else 'down'}")
    if board.get(board.store, "pid") > 0:  # reported, but not part of the verdict: history waits for it
        store_up = board.get(board.store, "up") > 0 and _beat_fresh(board, board.store, now)
        lines.append(f"store: {'up' if store_up else 'down'}")
    return ok, lines


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if value == int(value) else repr(value)


def render(board: Board, now: float | None = None) -> str:
    """The Prometheus text exposition format (version 0.0.4) of every row."""
    out: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        out.append(f"# HELP {name} {help_text}")
        out.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            out.append(f"{name}{labels} {_number(value)}")

    def counter(name: str, field: str, help_text: str) -> None:
        family(f"hubchat_{name}_total", "counter", help_text, [("", board.total(field))])

    workers = range(board.nworkers)
    family("hubchat_connections", "gauge", "Client connections open now, by transport.",
           [(f'{{transport="{t}"}}', sum(board.get(w, "conn_" + t) for w in workers)) for t in TRANSPORTS])
    counter("registrations", "registrations", "Clients that completed registration.")
    counter("commands_in", "commands_in", "Command lines received from clients and handled.")
    counter("messages_in", "messages_in", "PRIVMSG, NOTICE and TAGMSG targets clients sent (one per target).")
    counter("deliveries", "deliveries", "Relayed messages written to a recipient (one per recipient).")
    counter("bytes_in", "bytes_in", "Bytes read from clients (IRC, after WebSocket framing).")
    counter("bytes_out", "bytes_out", "Bytes of IRC written to clients (before WebSocket framing).")
    counter("sendq_drops", "sendq_drops", "Clients dropped for passing limits.sendq.")
    counter("http_requests", "http_requests", "HTTP requests answered (WebSocket upgrades included).")
    counter("websockets_opened", "websockets_opened", "WebSocket connections opened.")
    family("hubchat_restarts_total", "counter", "Processes the supervisor restarted after they died, by role.",
           [(f'{{role="{r}"}}', board.get(board.supervisor, "restarts_" + r)) for r in ("worker", "hub", "store")])
    family("hubchat_hub_queue_bytes", "gauge", "Bytes the hub has queued for its links and not yet written.",
           [("", board.get(board.hub, "hub_queue_bytes"))])
    family("hubchat_hub_parked_items", "gauge", "Requests a new hub holds until every worker has said hello.",
           [("", board.get(board.hub, "hub_parked"))])
    family("hubchat_history_unfinished_items", "gauge",
           "Batches and questions sent to the history store that it has not finished (its lag).",
           [("", board.get(board.hub, "history_unfinished"))])
    family("hubchat_history_pending_entries", "gauge", "History entries waiting for the next batch to the store.",
           [("", board.get(board.hub, "history_entries"))])
    family("hubchat_history_write_jobs_total", "counter",
           "The store's writing jobs (commits, retention, read markers) by where they ran: the idle-priority "
           "writer, or a thread at nice +10 (low) or the normal priority once the store fell behind.",
           [(f'{{priority="{p}"}}', board.total("store_jobs_" + p)) for p in STORE_PRIORITIES])
    counter("history_writer_stuck", "store_writer_stuck",
            "Jobs the idle-priority writer held too long without a core, done again on a thread.")

    processes = [i for i in range(board.rows - 1) if board.get(i, "pid") > 0]
    now = time.monotonic() if now is None else now

    def labels(i: int) -> str:
        role, slot = board.role(i)
        return f'{{role="{role}",slot="{slot}"}}' if slot else f'{{role="{role}"}}'

    family("hubchat_process_cpu_seconds_total", "counter", "CPU time (user and system) of each server process.",
           [(labels(i), board.get(i, "cpu_seconds")) for i in processes])
    family("hubchat_process_resident_memory_bytes", "gauge", "Resident memory of each server process.",
           [(labels(i), board.get(i, "rss_bytes")) for i in processes])
    family("hubchat_worker_linked", "gauge", "1 when the worker is linked to the hub.",
           [(f'{{slot="{w}"}}', board.get(w, "linked")) for w in workers])
    ok, _ = health(board, now)
    family("hubchat_healthy", "gauge", "1 when the hub and every worker are up and linked (as /healthz).",
           [("", 1.0 if ok else 0.0)])
    return "\n".join(out) + "\n"
