"""The store process's scheduling of questions against commits (history/service.py), in one
process: the hub's items are handed to `StoreProcess._on_items` as its link would, and what it
sends back is collected. The writing thread is held at a gate to stand for a slow commit, so
which answers can come before it is done is decided by events, not by timing."""
import asyncio
import contextlib
import os
import signal
import socket
import threading
import time

import pytest

import config
from history.feed import (CHANNEL_ENTRY, EVENT_ENTRY, PRIVATE_ENTRY, REDACT_ENTRY, S_ANSWER, S_DONE, S_QUERY,
                          S_WRITE, pack)
from history.service import (BACK_TO_IDLE_AT, CALM_AT, HURRY_AT, LEAVE_IDLE_AT, MAX_BEHIND, Progress, StoreProcess,
                             tier_for)
from history.writer import IDLE, LOW, NORMAL

T = time.time()  # now: retention, which runs at start, keeps it
WAIT = 10.0


class Collected:
    """Stands for the hub's end of the link: what the store sends, as an asyncio queue."""

    def __init__(self) -> None:
        self.closed = False
        self.items: asyncio.Queue = asyncio.Queue()

        self.reading: list[bool] = []  # each set_reading, in order
        self.reading_changed = asyncio.Event()

    def send(self, item: tuple) -> None:
        self.items.put_nowait(item)

    def set_reading(self, reading: bool) -> None:
        self.reading.append(reading)
        self.reading_changed.set()


def keys_of(entries: list[tuple]) -> set[tuple[str, str]] | None:
    """The (owner, target) of every conversation the entries write to; None if one of them is
    a redaction, whose conversation is not known here: what an S_WRITE's keys must say (the
    hub's feed keeps them as the entries come)."""
    keys: set[tuple[str, str]] = set()
    add = keys.add
    for entry in entries:
        kind = entry[0]
        if kind == CHANNEL_ENTRY:
            add(("", entry[3]))
        elif kind == PRIVATE_ENTRY:
            for owner, peer in entry[3]:
                add((owner, peer))
        elif kind == EVENT_ENTRY:
            for key in entry[4]:
                add(("", key))
        elif kind == REDACT_ENTRY:
            return None
    return keys


def channel_line(msgid: str, key: str, text: str, at: float) -> tuple:
    line = f":alice!a@h PRIVMSG {key} :{text}\r\n".encode()
    return (CHANNEL_ENTRY, msgid, at, key, "~alice", line, 0, "")


def batch(fseq: int, entries: list[tuple]) -> tuple:
    """An S_WRITE as the hub's feed sends it."""
    return (S_WRITE, fseq, pack(entries), len(entries), keys_of(entries), {}, {})


def latest(key: str) -> tuple:
    return ("LATEST", key, None, 10, False)


@pytest.fixture
def store(tmp_path):
    cfg = config.load(overrides={"server": {"data_dir": str(tmp_path)}, "history": {"commit_interval": 10.0}})
    a, b = socket.socketpair()
    process = StoreProcess(cfg, a)
    process.idle_writer = False  # the jobs on the thread, where a test can hold one at a gate
    yield process
    a.close()
    b.close()


async def started(process: StoreProcess) -> Progress:
    process.start()
    return Progress(Collected())


def hold_the_writer(process: StoreProcess) -> threading.Event:
    gate = threading.Event()
    process.db.submit(lambda db: gate.wait(3 * WAIT))  # longer than any wait here: a test that waits on it fails
    return gate


async def next_item(progress: Progress, kind: str) -> tuple:
    while True:
        item = await asyncio.wait_for(progress.link.items.get(), WAIT)
        if item[0] == kind:
            return item


def test_keys_of_names_each_conversation_an_entry_writes():
    entries = [channel_line("m1", "#a", "hi", T),
               (PRIVATE_ENTRY, "m2", T, (("a:alice", "bob"), ("bob", "alice")), "~alice", b"x", 0, "")]
    assert keys_of(entries) == {("", "#a"), ("a:alice", "bob"), ("bob", "alice")}


def test_a_query_of_a_quiet_room_is_not_held_up_by_a_busy_rooms_commit(store):
    async def run():
        progress = await started(store)
        store._on_items(progress, [batch(1, [channel_line("q1", "#quiet", "old", T)])])
        store._commit()
        await next_item(progress, S_DONE)
        gate = hold_the_writer(store)  # the next commit cannot finish until the gate opens
        store._on_items(progress, [batch(2, [channel_line("b1", "#busy", "new", T + 1)])])
        store._on_items(progress, [(S_QUERY, 3, 7, "", ("", "#quiet"), (), latest("#quiet"))])
        answer = await next_item(progress, S_ANSWER)
        assert [row[0] for row in answer[3]] == ["q1"]
        assert not gate.is_set()  # answered while the busy room's commit still waited
        gate.set()
        assert (await next_item(progress, S_DONE)) == (S_DONE, 3)
        store.finish()
    asyncio.run(run())


def test_a_query_of_a_room_waits_for_what_was_published_to_it_before(store):
    async def run():
        progress = await started(store)
        gate = hold_the_writer(store)
        store._on_items(progress, [batch(1, [channel_line("b1", "#busy", "one", T)])])
        store._on_items(progress, [(S_QUERY, 2, 7, "", ("", "#busy"), (), latest("#busy"))])
        gate.set()  # had the query not waited for the commit, its answer would be empty
        answer = await next_item(progress, S_ANSWER)
        assert [row[0] for row in answer[3]] == ["b1"]
        store.finish()
    asyncio.run(run())


def test_a_query_of_every_conversation_waits_for_every_commit(store):
    async def run():
        progress = await started(store)
        gate = hold_the_writer(store)
        store._on_items(progress, [batch(1, [channel_line("b1", "#busy", "one", T)])])
        store._on_items(progress, [(S_QUERY, 2, 7, "", None, ("#busy",), ("TARGETS", ("timestamp", 0),
                                                                          ("timestamp", 2 ** 62), 10, False))])
        gate.set()
        answer = await next_item(progress, S_ANSWER)
        assert answer[3] and answer[3][0][0] == "#busy"
        store.finish()
    asyncio.run(run())


def synchronous_mode(db) -> tuple:
    return db.history._db.execute("PRAGMA synchronous").fetchone()


@contextlib.contextmanager
def store_with_its_writer(tmp_path, **history):
    """A store process as the supervisor makes it: with its idle writer (history/writer.py)."""
    cfg = config.load(overrides={"server": {"data_dir": str(tmp_path)}, "history": {"commit_interval": 10.0, **history}})
    a, b = socket.socketpair()
    try:
        yield StoreProcess(cfg, a)
    finally:
        a.close()
        b.close()


def test_the_store_writes_with_the_configured_synchronous_mode(tmp_path):
    async def run(process):
        process.start()
        assert process.db.idle_writer_ready(WAIT)  # the idle writer opens its own connection
        assert process.db.submit(synchronous_mode).result(WAIT) == (2,)  # the idle writer's connection
        process.db.tier = NORMAL
        assert process.db.submit(synchronous_mode).result(WAIT) == (2,)  # the thread's
        process.finish()
    with store_with_its_writer(tmp_path, synchronous="full") as process:
        asyncio.run(run(process))


def test_a_store_whose_writes_fall_behind_hurries_and_stops_reading_the_hub_until_they_catch_up(store):
    async def run():
        progress = await started(store)
        gate = hold_the_writer(store)
        per_batch = MAX_BEHIND // 4
        for n in range(1, 5):
            entries = [channel_line(f"m{n}-{i}", "#busy", "x", T + n + i / per_batch) for i in range(per_batch)]
            store._on_items(progress, [batch(n, entries)])
            store._commit()
        assert progress.link.reading == [False]
        assert store.db.tier == NORMAL  # and the writing jobs run at the normal priority until it catches up
        gate.set()
        progress.link.reading_changed.clear()
        await asyncio.wait_for(progress.link.reading_changed.wait(), WAIT)
        assert progress.link.reading == [False, True]
        assert (await next_item(progress, S_DONE)) is not None
        while store.behind:
            await next_item(progress, S_DONE)
        assert store.db.tier == IDLE  # caught up: back below every other process
        store.finish()
    asyncio.run(run())


@pytest.mark.parametrize("tier, behind, then", [
    (IDLE, 0, IDLE), (IDLE, LEAVE_IDLE_AT - 1, IDLE), (IDLE, LEAVE_IDLE_AT, LOW), (IDLE, HURRY_AT, NORMAL),
    (LOW, LEAVE_IDLE_AT - 1, LOW), (LOW, BACK_TO_IDLE_AT + 1, LOW), (LOW, BACK_TO_IDLE_AT, IDLE),
    (LOW, HURRY_AT - 1, LOW), (LOW, HURRY_AT, NORMAL),
    (NORMAL, HURRY_AT - 1, NORMAL), (NORMAL, CALM_AT + 1, NORMAL), (NORMAL, CALM_AT, LOW), (NORMAL, 0, IDLE),
])
def test_the_writing_jobs_step_down_as_the_store_falls_behind_and_back_later_than_they_left(tier, behind, then):
    assert tier_for(tier, behind) == then


def test_a_commit_the_idle_writer_never_gets_a_core_for_is_done_on_a_thread_and_its_query_answered(tmp_path):
    async def run(process):
        progress = await started(process)
        assert process.db.idle_writer_ready(WAIT)
        writer = process.db.idle_pid
        os.kill(writer, signal.SIGSTOP)  # stands for a writer that other work keeps from every core
        try:
            process._on_items(progress, [batch(1, [channel_line("q1", "#quiet", "hello", T)])])
            process._on_items(progress, [(S_QUERY, 2, 7, "", ("", "#quiet"), (), latest("#quiet"))])
            answer = await next_item(progress, S_ANSWER)  # few entries behind: only the time it waited tells
            assert [row[0] for row in answer[3]] == ["q1"]
            assert process.db.idle_pid != writer
        finally:
            with contextlib.suppress(ProcessLookupError):  # killed for it, as it should be
                os.kill(writer, signal.SIGCONT)
        process.finish()
    with store_with_its_writer(tmp_path) as process:
        asyncio.run(run(process))
