"""The store process: history's one writer and reader, fed by the hub over a link.

Theory of operation
-------------------
The hub's feed (history/feed.py) sends numbered items: batches of entries (S_WRITE) and
queries (S_QUERY). Entries wait in `pending` until the next commit, at most
`history.commit_interval` later: one transaction per interval, however many messages it holds
(a redacted message's removal, REDACT_ENTRY, is done in the same commit, after its records);
they become `Record`s on the writing thread. A query's answer holds everything published
before it: what is pending for the conversation it reads is committed first, and it waits
for the commits that write to it (a query of every conversation, TARGETS or SEARCH, waits for
all). So do the other questions: a REDACT's lookup (S_LOOKUP, the facts only: the hub's policy
decides) and read markers (S_MARKREAD, which the store moves forward only: `set_marker` keeps
the later).

Writes run off the loop (the writing jobs, below) and reads on a thread of their own, each with
its own connection (WAL lets one writer and readers work at once), so the loop keeps reading
the link and stamping the heartbeat while a commit or a query runs,
and a slow search (a common word in a large database takes hundreds of milliseconds) does not
hold up the commits. The writing jobs run in a child process at idle priority (history/writer.py),
so the store's bulk work gives way to the clients' delivery; when the store falls behind, on a
thread of this process at nice +10 (LEAVE_IDLE_AT), then at the normal priority (HURRY_AT); at
MAX_BEHIND it stops reading its link until it has caught up.
When an item is committed or answered, S_DONE tells the hub, which may then forget it, and
acknowledge to the workers the requests that caused it; S_DONE(n) means every item up to n, so
it waits for a slower query before it (`Progress`). The numbers belong to one hub: a new hub
starts its own, and the store answers each link only about its own items.

On SIGTERM the store commits what it holds before it exits; the supervisor stops it last,
after the hub has flushed everything to it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

from config import Config
from history.feed import (CHANNEL_ENTRY, EVENT_ENTRY, PRIVATE_ENTRY, REDACT_ENTRY, unpack, S_ANSWER, S_DONE, S_FAIL,
                          S_FOUND, S_HELLO, S_LOOKUP, S_MARKERS, S_MARKREAD, S_QUERY, S_WRITE)
from accounts.store import AccountStore
from history.store import Record, SQLiteStore
from history.writer import IDLE, LOW, NORMAL, Database, WritingJobs
from ipc import control, link
from ipc.child import ChildProcess, Heartbeat
from ircproto.casemap import casefold

log = logging.getLogger("hubchat.store")

DATABASE = "history.sqlite3"
# Where the writing jobs run (history/writer.py), by entries behind (handed over, not committed):
LEAVE_IDLE_AT = 3_000  # from the idle writer to the nice +10 thread (about 0.1 s of row 2's load)
BACK_TO_IDLE_AT = 1_000  # and back
HURRY_AT = 20_000  # to the thread at the normal priority
CALM_AT = 5_000  # and back to the nice +10 one
MAX_BEHIND = 100_000  # entries handed to the writing jobs and not yet committed (about 3 s at 30,000
#   messages a second, some 40 MB) before the store stops reading the hub's link
PRUNE_INTERVAL = 10.0  # seconds between retention passes
STUCK_CHECK = 0.1  # seconds between looks at how long the idle writer has held its job (history/writer.py)
SPOKEN = frozenset(("PRIVMSG", "NOTICE"))  # what a client without event-playback is sent
PERSIST_TAGS = ("+draft/persist", "+persist")  # a TAGMSG with one of these is kept


def database_path(config: Config) -> str:
    return os.path.join(config.server.data_dir, DATABASE)


class Progress:
    """One hub link's items in the order they came, and which are finished."""

    def __init__(self, link: link.LinkProtocol) -> None:
        self.link = link
        self.open: deque[list] = deque()  # [fseq, finished], oldest first

    def expect(self, fseq: int) -> list:
        entry = [fseq, False]
        self.open.append(entry)
        return entry

    def finish(self, entry: list) -> None:
        entry[1] = True
        upto = 0
        while self.open and self.open[0][1]:
            upto = self.open.popleft()[0]
        if upto and not self.link.closed:
            self.link.send((S_DONE, upto))


class StoreProcess(ChildProcess):
    label = "store"
    idle_writer = True  # the writing jobs in an idle-priority process (tests that hold a job in hand say False)
    metrics_row = None  # web.metrics.Row, given by the supervisor

    def __init__(self, config: Config, control_sock: socket.socket, heartbeat: Heartbeat | None = None) -> None:
        super().__init__(config, control_sock, heartbeat)
        self.control_handlers[control.HUB] = self.new_hub_link
        self.hub: link.LinkProtocol | None = None
        self.db: WritingJobs | None = None  # the writing jobs, in order (made at start)
        self.reads = ThreadPoolExecutor(1, thread_name_prefix="store-reads")  # the one that answers queries
        self.reader: SQLiteStore | None = None  # made on the reading thread
        self.pending: list[bytes] = []  # batches of entries as the feed packed them (history.feed.pack)
        self.pending_count = 0  # entries in them
        self.pending_keys: set[tuple[str, str]] = set()  # the (owner, target) of every pending entry
        self.pending_anything = False  # a pending entry may touch any conversation (a redaction)
        self.pending_channels: dict[str, dict | None] = {}
        self.pending_accounts: dict[str, dict | None] = {}  # accounts made or changed (None: dropped)
        self.pending_upto = 0  # the last item folded into pending
        self.pending_progress: Progress | None = None
        self.last_commit: Future | None = None
        self.commits: deque[tuple[Future, set | None]] = deque()  # not yet done, with what each writes (None: anything)
        self.behind = 0  # entries in commits not yet done
        self.paused: link.LinkProtocol | None = None  # the hub link not read while the commits catch up
        self._commit_timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pruned = 0  # rows removed by this round of retention so far

    # --- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        # The writing jobs run below the hub and the workers while the store keeps up, and higher
        # as it falls behind (history/writer.py, tier_for). The loop and the reading thread
        # keep the normal priority, so a question is read, and answered, as soon as what it reads
        # is committed.
        self.loop = asyncio.get_running_loop()
        path = database_path(self.config)
        self.db = WritingJobs(path, self.config.history.synchronous, idle_process=self.idle_writer)
        # First of the jobs, so every commit after it indexes words or not as configured.
        self.db.submit(set_search, self.config.history.search, now=True).add_done_callback(
            lambda f: self._soon(_searching, f.exception() or f.result()))
        self.reads.submit(self._open_reader, path).result()
        log.info("store: history in %s", path)
        self.loop.call_soon(self._prune)  # retention first: a database that waited over a stop is pruned at once
        self.loop.call_later(STUCK_CHECK, self._watch_the_writer)

    def _watch_the_writer(self) -> None:
        """A commit in the idle writer's hands that has waited STUCK_AFTER for a core is done again
        on a thread, however little is behind: a quiet room's commit, and the CHATHISTORY that
        waits on it, must not wait for as long as other work keeps the cores busy."""
        db = self.db
        db.unstick()  # type: ignore[union-attr]
        row = self.metrics_row
        if row is not None:  # where the jobs ran, for /metrics: a store behind competes with the clients
            for name, count in zip(("store_jobs_idle", "store_jobs_low", "store_jobs_normal"), db.ran):  # type: ignore[union-attr]
                row.put(name, count)
            row.put("store_writer_stuck", db.stuck)  # type: ignore[union-attr]
        self.loop.call_later(STUCK_CHECK, self._watch_the_writer)  # type: ignore[union-attr]

    def _open_reader(self, path: str) -> None:
        self.reader = SQLiteStore(path)

    def finish(self) -> None:
        # A stop waits for the last commit: at the normal priority, and one already in the idle
        # writer's hands is done again here rather than waited for (it may not get a core soon).
        self.db.tier = NORMAL  # type: ignore[union-attr]
        self.db.unstick(after=0.0)  # type: ignore[union-attr]
        self._commit()
        if self.last_commit is not None:
            self.last_commit.exception()  # waits for it: what was sent before the stop is committed
        self.db.shutdown()  # type: ignore[union-attr]
        self.reads.submit(self.reader.close).result()  # type: ignore[union-attr]
        self.reads.shutdown()
        log.info("store: committed everything and closed")

    def new_hub_link(self, fds: list[int]) -> None:
        asyncio.get_running_loop().create_task(self._attach_hub(fds[0]))

    async def _attach_hub(self, fd: int) -> None:
        self._commit()  # what the last hub sent is the last hub's: numbered in its own count
        protocol = link.LinkProtocol(lambda items: self._on_items(progress, items))
        progress = Progress(protocol)
        await link.open_link(fd, protocol)
        self.hub = protocol
        channels = await asyncio.wrap_future(self.db.submit(kept_channels, now=True))  # type: ignore[union-attr]
        accounts = await asyncio.wrap_future(self.db.submit(kept_accounts, now=True))  # type: ignore[union-attr]
        protocol.send((S_HELLO, channels, accounts))
        log.info("store: linked to the hub (%d channels kept, %d accounts)", len(channels), len(accounts))

    # --- the hub's items -----------------------------------------------------------------------
    def _on_items(self, source: Progress, items: list[tuple]) -> None:
        for item in items:
            try:
                op = item[0]
                if op == S_WRITE:
                    self._write(source, *item[1:])
                elif op == S_QUERY:
                    self._query(source, *item[1:])
                elif op == S_LOOKUP:
                    _, fseq, msgid, place, peer, context = item
                    self._answer(source, fseq, lookup, fseq, msgid, place, peer, context)
                elif op == S_MARKREAD:
                    self._answer(source, item[1], markers, *item[2:], writes=True)
            except Exception:
                log.exception("store: failed on %r", item[:2])

    def _write(self, source: Progress, fseq: int, packed: bytes, count: int, keys: set | None, channels: dict,
               accounts: dict) -> None:
        """A batch, kept packed: the loop does nothing per message (it shares the normal priority
        with the reading thread's answers); the writing jobs unpack it."""
        if self.pending_progress is not source:
            self._commit()
        self.pending_progress = source
        if count:
            self.pending.append(packed)
            self.pending_count += count
        if keys is None:
            self.pending_anything = True
        else:
            self.pending_keys.update(keys)
        self.pending_channels.update(channels)
        self.pending_accounts.update(accounts)
        self.pending_upto = fseq
        if self._commit_timer is None:
            self._commit_timer = asyncio.get_running_loop().call_later(self.config.history.commit_interval,
                                                                      self._commit)

    def _query(self, source: Progress, fseq: int, cid: int, owner: str, scope, channels, query) -> None:
        self._answer(source, fseq, answer, cid, owner, scope, channels, query, self.config.history.max_query,
                     reads=None if scope is None else {tuple(scope)})

    def _answer(self, source: Progress, fseq: int, fn: Callable[..., tuple], *args: Any,
                writes: bool = False, reads: set | None = None) -> None:
        """A question: its answer holds everything published before it. So what is pending is
        committed first, then `fn(store, *args)` runs, on the reading thread once that commit is
        done, or, for a question that writes (a read marker moved), on the writing thread after
        it; its answer, then S_DONE in order. A question that reads one conversation (`reads`:
        its (owner, target)) waits only for what writes to it: a query of a quiet room is not
        held up by the commits of a busy one."""
        if writes or reads is None or self.pending_anything or not self.pending_keys.isdisjoint(reads):
            self._commit()
        before = self.last_commit if writes or reads is None else self._last_commit_writing(reads)
        entry = source.expect(fseq)

        def answered(result: tuple) -> None:
            if not source.link.closed:
                source.link.send(result)
            source.finish(entry)

        def run(_: Any = None) -> None:
            future = (self.db.submit(on_history, fn, *args) if writes else  # type: ignore[union-attr]
                      self.reads.submit(fn, self.reader, *args))
            future.add_done_callback(lambda f: self._soon(answered, f.result()))
        if writes or before is None or before.done():
            run()
        else:
            before.add_done_callback(run)

    def _open_commits(self) -> deque:
        """The commits not yet done, oldest first (the done ones are let go here)."""
        commits = self.commits
        while commits and commits[0][0].done():
            commits.popleft()
        return commits

    def _last_commit_writing(self, reads: set) -> Future | None:
        """The latest commit not yet done that writes to `reads` (the writing thread does its
        jobs in order: the others before it are done when it is)."""
        for future, keys in reversed(self._open_commits()):
            if keys is None or not keys.isdisjoint(reads):
                return future
        return None

    def _commit(self) -> None:
        if self._commit_timer is not None:
            self._commit_timer.cancel()
            self._commit_timer = None
        source, upto = self.pending_progress, self.pending_upto
        if source is None:
            return
        batches, channels, accounts, size = self.pending, self.pending_channels, self.pending_accounts, self.pending_count
        keys = None if self.pending_anything else self.pending_keys
        self.pending, self.pending_channels, self.pending_accounts, self.pending_count = [], {}, {}, 0
        self.pending_keys, self.pending_anything, self.pending_progress = set(), False, None
        entry = source.expect(upto)
        self.last_commit = future = self.db.submit(commit, batches, channels, accounts)  # type: ignore[union-attr]
        self._open_commits().append((future, keys))
        self.behind += size
        self._place_jobs()
        if self.behind >= MAX_BEHIND and self.paused is None:
            # The writing thread gives way to the clients' delivery: when it cannot keep up, stop
            # taking more, so the hub's link backs up and the hub stops reading requests. Memory
            # stays bounded, and the CPU the clients leave is the store's to catch up with.
            self.paused = source.link
            self.paused.set_reading(False)
            log.warning("store: %d messages behind; the hub waits until they are written", self.behind)
        future.add_done_callback(lambda f: self._soon(self._committed, (source, entry, f, size)))

    def _committed(self, done: tuple[Progress, list, Future, int]) -> None:
        source, entry, future, size = done
        self.behind -= size
        self._place_jobs()
        if future.exception() is not None:
            # Not done, so not acknowledged: the hub keeps the batch, and sends it again to the
            # store the supervisor starts in this one's place.
            log.critical("store: a commit failed (%s); exiting so that a new store takes over", future.exception())
            os._exit(1)
        source.finish(entry)
        if self.paused is not None and self.behind <= MAX_BEHIND // 2:
            self.paused.set_reading(True)
            self.paused = None
            log.info("store: caught up")

    def _place_jobs(self) -> None:
        db = self.db
        tier = tier_for(db.tier, self.behind)  # type: ignore[union-attr]
        if tier != db.tier:  # type: ignore[union-attr]
            if tier == NORMAL:
                log.info("store: %d messages behind; writing at the normal priority", self.behind)
            elif db.tier == NORMAL:  # type: ignore[union-attr]
                log.info("store: %d messages behind; writing below the normal priority again", self.behind)
            db.tier = tier  # type: ignore[union-attr]

    def _prune(self) -> None:
        """One chunk of retention per job on the database thread, so a query or a commit waits
        behind one chunk at most; the next chunk is queued when this one is done."""
        history = self.config.history
        if not (history.max_age or history.max_per_target):
            return

        def pruned(count: int) -> None:
            self.pruned += count
            if count:
                self.loop.call_soon(self._prune)  # type: ignore[union-attr]
                return
            if self.pruned:
                log.info("store: pruned %d messages past retention", self.pruned)
            self.pruned = 0
            self.loop.call_later(PRUNE_INTERVAL, self._prune)  # type: ignore[union-attr]
        future = self.db.submit(retention, history.max_age, history.max_per_target)  # type: ignore[union-attr]
        future.add_done_callback(lambda f: self._soon(pruned, f.result()))

    # --- helpers ---------------------------------------------------------------------------------
    def _soon(self, then: Callable[[Any], None], value: Any) -> None:
        """Run `then(value)` on the loop (a future's callback runs on the database thread)."""
        try:
            self.loop.call_soon_threadsafe(then, value)  # type: ignore[union-attr]
        except RuntimeError:  # the loop is closing: finish() waits for the database itself
            pass


def tier_for(tier: int, behind: int) -> int:
    """Where the next writing jobs run, given where they run now and how many entries the store is
    behind: each step has its way back lower than its way in, so the jobs do not flap."""
    if behind >= HURRY_AT:
        return NORMAL
    if behind <= BACK_TO_IDLE_AT:
        return IDLE
    if tier == NORMAL:
        return LOW if behind <= CALM_AT else NORMAL
    if tier == IDLE:
        return LOW if behind >= LEAVE_IDLE_AT else IDLE
    return LOW


# --- the writing jobs (history/writer.py: fn(db, *args), in the idle writer or on the thread) ---------------
def commit(db: Database, batches: list[bytes], channels: dict[str, dict | None],
           accounts: dict[str, dict | None]) -> int:
    return write_batches(db.history, batches, channels, db.accounts, accounts)


def on_history(db: Database, fn: Callable[..., Any], *args: Any) -> Any:
    return fn(db.history, *args)


def set_search(db: Database, on: bool) -> int:
    return db.history.set_search(on)


def _searching(indexed: int | BaseException) -> None:
    if isinstance(indexed, BaseException):
        log.error("store: could not apply history.search (%s)", indexed)
    elif indexed:
        log.info("store: search is on again: indexed the words of %d messages stored while it was off", indexed)


def retention(db: Database, max_age: int, max_per_target: int) -> int:
    return prune(db.history, max_age, max_per_target)


def kept_channels(db: Database) -> dict[str, dict]:
    return db.history.channels()


def kept_accounts(db: Database) -> dict[str, dict]:
    return db.accounts.all()


def write_batches(store: SQLiteStore, batches: list[bytes], channels: dict[str, dict | None],
                  account_store: AccountStore | None = None, accounts: dict[str, dict | None] | None = None) -> int:
    """`write`, for batches as the feed packed them: unpacked and made Records here, by the
    writing jobs (below the clients' delivery while the store keeps up)."""
    entries = [entry for batch in batches for entry in unpack(batch)]
    return write(store, records_of(entries), channels, deletions_of(entries), account_store, accounts)


def write(store: SQLiteStore, records: list[Record], channels: dict[str, dict | None],
          deletions: list[str] = (), account_store: AccountStore | None = None,
          accounts: dict[str, dict | None] | None = None) -> int:
    """One commit's worth: the records, the channels' settings, then the redacted messages (after
    the records: a message is never stored again once it is redacted, whatever batch held it),
    then the accounts made or changed (their own transaction, in the same file)."""
    try:
        if accounts and account_store is not None:
            account_store.write(accounts)
        added = store.write(records)
        for key, settings in channels.items():
            if settings is None:
                store.drop_channel(key)
            else:
                store.save_channel(key, settings)
        for msgid in deletions:
            store.delete(msgid)
        return added
    except Exception:
        log.exception("store: could not write %d records and %d redactions", len(records), len(deletions))
        raise


def lookup(store: SQLiteStore, fseq: int, msgid: str, place: tuple[str, str], peer: str, context: tuple) -> tuple:
    """A REDACT's first step: the message `msgid` as stored at `place` (owner, target), and, given
    a peer owner, that owner's copy of it (a private message's other party files it under its
    sender's nick). Facts only: the hub's policy decides what they allow."""
    try:
        row = store.message(place[0], place[1], msgid)
        peer_row = store.message(peer, row.sender, msgid) if row is not None and peer else None
        found = (tuple(row) if row else None, tuple(peer_row) if peer_row else None)
    except Exception:
        log.exception("store: could not look up %r for a redaction", msgid)
        found = None
    return (S_FOUND, fseq, context, found)


def markers(store: SQLiteStore, cid: int, owner: str, keys: tuple[str, ...], targets: tuple[str, ...],
            time_us: int | None, joins) -> tuple:
    """Read markers of (owner, key) for each key; with time_us, keys[0]'s moved forward first (the
    store keeps the later). A failure answers times None, except for a JOIN's markers, which are
    then unknown (None each): the joins go ahead."""
    try:
        if time_us is not None:
            times = [store.set_marker(owner, keys[0], time_us)]
        else:
            times = [store.marker(owner, key) for key in keys]
    except Exception:
        log.exception("store: could not %s read markers of %r", "set" if time_us is not None else "read", keys)
        times = [None] * len(keys) if joins is not None else None
    return (S_MARKERS, cid, targets, times, joins)


def prune(store: SQLiteStore, max_age: int, max_per_target: int) -> int:
    """One chunk (history.store.PRUNE_CHUNK rows at most); 0 when nothing is past retention, or
    when the chunk failed (logged: retention tries again at the next interval instead of stopping)."""
    try:
        return store.prune(int(time.time() * 1_000_000), max_age * 1_000_000 or None, max_per_target or None)
    except Exception:
        log.exception("store: retention failed")
        return 0


def answer(store: SQLiteStore, cid: int, owner: str, scope: tuple[str, str] | None, channels: tuple[str, ...],
           query: tuple, max_limit: int) -> tuple:
    subcommand, playback = query[0], query[-1]
    kinds = None if playback else SPOKEN
    command = "SEARCH" if subcommand == "SEARCH" else "CHATHISTORY"
    try:
        if subcommand == "TARGETS":
            _, start, end, limit, _ = query
            rows = store.targets(owner, channels, _time(start), _time(end), min(limit, max_limit))
        elif subcommand == "SEARCH":
            _, _, sender, after, before, text, limit, _ = query
            rows = store.search(owner, channels, target=scope[1] if scope else None,
                                sender=casefold(sender) if sender else None, after_us=after, before_us=before,
                                text=text, limit=min(limit, max_limit))
        else:
            rows = _select(store, scope, query, kinds, max_limit)
    except Exception:
        log.exception("store: could not answer %r", query)
        return (S_FAIL, cid, command, "MESSAGE_ERROR", (subcommand, "Messages could not be retrieved"))
    return (S_ANSWER, cid, query, [tuple(row) for row in rows])


def _select(store: SQLiteStore, scope: tuple[str, str], query: tuple, kinds, max_limit: int) -> list:
    owner, target = scope
    subcommand, limit = query[0], min(query[-2], max_limit)

    def at(ref) -> int | None:
        """A reference's time; None for a msgid this conversation does not hold."""
        kind, value = ref
        return value if kind == "timestamp" else store.time_of(owner, target, value)

    if subcommand == "LATEST":
        ref = query[2]
        after = None if ref is None else at(ref)
        if ref is not None and after is None:
            return []
        return store.latest(owner, target, limit, after_us=after, kinds=kinds)
    if subcommand == "BETWEEN":
        start, end = at(query[2]), at(query[3])
        if start is None or end is None:
            return []
        return store.between(owner, target, start, end, limit, kinds=kinds)
    pivot = at(query[2])
    if pivot is None:
        return []
    if subcommand == "BEFORE":
        return store.before(owner, target, pivot, limit, kinds=kinds)
    if subcommand == "AFTER":
        return store.after(owner, target, pivot, limit, kinds=kinds)
    return store.around(owner, target, pivot, limit, include_pivot=query[2][0] == "msgid", kinds=kinds)


def _time(ref) -> int:
    return ref[1]


# --- entries (from the hub's feed) become records ------------------------------------------------------
def records_of(entries: list[tuple]) -> list[Record]:
    records = []
    add = records.append
    for entry in entries:
        kind = entry[0]
        if kind == CHANNEL_ENTRY:
            _, msgid, time_s, key, author, line, flags, tags = entry
            command = _command(flags, tags)
            if command is not None:
                text = _text(line)
                add(Record(msgid, round(time_s * 1_000_000), key, "", command, _sender(text), author, text, tags))
        elif kind == PRIVATE_ENTRY:
            _, msgid, time_s, parties, author, line, flags, tags = entry
            command = _command(flags, tags)
            if command is not None:
                text = _text(line)
                sender, time_us = _sender(text), round(time_s * 1_000_000)
                for owner, peer in parties:
                    add(Record(msgid, time_us, peer, owner, command, sender, author, text, tags))
        elif kind == EVENT_ENTRY:
            _, msgid, time_s, command, keys, author, text = entry
            sender, time_us = _sender(text), round(time_s * 1_000_000)
            for key in keys:
                add(Record(msgid, time_us, key, "", command, sender, author, text, ""))
    return records


def deletions_of(entries: list[tuple]) -> list[str]:
    """The msgids of the messages redacted in a batch, in order."""
    return [entry[1] for entry in entries if entry[0] == REDACT_ENTRY]


def _command(flags: int, tags: str) -> str | None:
    if flags & link.MSG_TAGMSG:
        names = {tag.partition("=")[0] for tag in tags.split(";")}
        return "TAGMSG" if any(name in names for name in PERSIST_TAGS) else None
    return "NOTICE" if flags & link.MSG_QUIET else "PRIVMSG"


def _text(line: bytes) -> str:
    text = line.decode("utf-8", "replace")
    return text[:-2] if text.endswith("\r\n") else text


def _sender(line: str) -> str:
    """The folded nick of ':nick!user@host COMMAND ...'."""
    return casefold(line[1:line.find("!")]) if line.startswith(":") and "!" in line[:line.find(" ")] else ""
