"""The history store: one small synchronous interface over the messages the hub published, the
read markers and the channel state that must survive a restart. `SQLiteStore` is its one
implementation (stdlib `sqlite3`); another database may implement the same methods later, so
nothing outside this module sees SQL.

The store answers exactly what it is asked: the hub has already checked who may see what.
It is used from one thread (the store thread calls `write` every commit interval, 20 ms by default, and the reads in
between); it is not thread-safe, and `sqlite3` refuses use from a thread other than the one
that opened it.

Rows
----
A `Record` is one message in one history. A channel message is stored once, with owner "";
a private message once per party, each copy under the owner key of the party whose history it
is and with the other party's folded nick as target. Within one (owner, target) the times are
unique and increase in the order written: `time_us` is the history order, and every selector
addresses messages by it (a msgid reference is turned into a time with `time_of` first).

Schema (version `SCHEMA_VERSION`, kept in `PRAGMA user_version`)
----------------------------------------------------------------
- `messages(id INTEGER PRIMARY KEY, msgid, time_us, target, owner, kind, sender, author, line,
  tags)`. Indexes: `messages_by_time` UNIQUE (owner, target, time_us), which every selector
  scans as a range; `messages_by_msgid` UNIQUE (msgid, owner, target), which ignores duplicates
  and serves `time_of`, `message` and `delete`.
- `message_words`: a contentless FTS5 table (unicode61, diacritics removed) whose rowid is
  messages.id, with rows for PRIVMSG and NOTICE only: `body`, `message_text(line)`, and
  `sender`, the sender's nick in hex, one token that matches that nick only, so a search by
  sender reads that sender's rows instead of scanning conversations. Contentless, so the text
  is not stored twice; the price is that removing a row needs the same text again, which
  `message_text` recomputes from the line. So `message_text` is part of the schema: changing
  what it returns needs a new schema version that rebuilds the FTS table. columnsize=0: no
  per-row size table (one write less a row), which only ranking (bm25) reads; results are by
  time.
- `conversations(owner, target, rows, oldest_us)`: one row per (owner, target) with messages,
  kept by every write and delete; indexed by rows and by oldest_us so `prune` finds its work
  without scanning, and it lists an owner's private targets for `targets` and `search`.
- `read_markers(owner, target, time_us)` and `channel_state(key, state)` (state as JSON).
- `marks(name, value)`: `words_from` while search is off (`history.search`, `set_search`): the
  rows above that id have no words. Its presence is the setting, read by every write, so the
  connections of the writing jobs agree without being told; turning search on indexes those
  rows and removes it.

Text that is not UTF-8 (the server keeps such bytes as lone surrogates, `surrogateescape`)
cannot be bound as SQLite text; such a value is stored as the raw bytes (a BLOB) and read
back as the same str, so a channel name or a line with such bytes round-trips unchanged.

Durability
----------
The database is in WAL mode with `synchronous=NORMAL` by default (`history.synchronous`;
"full" fsyncs every commit instead): a commit appends to the -wal file
without fsync, and the WAL is fsynced only when it is checkpointed into the main file.
- If the process dies (SIGKILL, a crash, OOM), nothing committed is lost: the appended WAL
  frames are in the OS's page cache, and the next open recovers them. A `write` in progress
  is rolled back whole: a batch is stored all or not at all.
- If the OS crashes or the power fails, transactions committed since the last checkpoint may
  be lost, newest first: those whose WAL pages the OS had not yet written back. Checkpoints
  come every CHECKPOINT_PAGES pages of WAL, about a second of writes at 30,000 messages a
  second but hours on a quiet server; Linux writes dirty pages back within ~30 s by default,
  so that is the usual loss, with no promise. The database is never corrupted: it opens at
  an earlier consistent state (WAL frames carry checksums; given storage that honours fsync).
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

# 2: message_words gained the sender column and automerge 8. A version 1 database (main has run
# that one) is migrated when opened: its FTS table is rebuilt from the messages.
SCHEMA_VERSION = 3
# Rows `prune` deletes at most per call. A conversation's oldest rows lie all over the table,
# so deleting them dirties ~3 pages for every 4 rows: ~18 us a row by age, ~7 by count on a
# 1M-row database (scripts/bench_store.py), so a call takes ~20 ms, up to ~190 ms when its
# commit also checkpoints. Small enough not to hold up the store thread's next write.
PRUNE_CHUNK = 2_000
SEARCHED_KINDS = ("PRIVMSG", "NOTICE")  # the kinds with words in message_words
ACTIVITY_KINDS = ("PRIVMSG", "NOTICE", "TAGMSG")  # what makes a conversation active for TARGETS
# SQLite's page cache for this connection, in KiB: the ends of the two message indexes that
# every batch writes to stay in memory on a database of millions of rows.
CACHE_KIB = 32 * 1024
# WAL pages before a commit also checkpoints (SQLite's default is 1,000). A batch of 3,000
# dirties ~640 pages, half of them index pages of small private conversations that later
# batches dirty again: a checkpoint copies such a page back once however often it changed
# since the last one. On a 1M-row database 8,000 (32 MiB) gave ~10% more writes/s than 4,000,
# and 4,000 ~15% more than 1,000; 16,000 let the commit that checkpoints take 160 ms.
CHECKPOINT_PAGES = 8_000
# FTS5 merges a level's segments when it has this many (its default is 4): fewer rewrites of
# each token as the index grows, for a few more segments for a search to read. With 8 rather
# than 4, writes into a 1M-row database were ~15% faster.
FTS_AUTOMERGE = 8


class Record(NamedTuple):
    msgid: str
    time_us: int  # the hub's time, integer microseconds
    target: str  # folded channel key, or for a private row the other party's folded nick
    owner: str  # "" for channel rows; the owning party's opaque key for private rows
    kind: str  # PRIVMSG, NOTICE, TAGMSG, JOIN, PART, QUIT, KICK, NICK, TOPIC, MODE
    sender: str  # folded nick
    author: str  # opaque identity key of the sender, or ""
    line: str  # the IRC line without tags
    tags: str  # client-only tags in wire form without the "@", or ""


COLUMNS = "msgid, time_us, target, owner, kind, sender, author, line, tags"  # Record's order
_SEARCHED = f"kind IN ({', '.join(repr(k) for k in SEARCHED_KINDS)})"
_ACTIVE = f"kind IN ({', '.join(repr(k) for k in ACTIVITY_KINDS)})"

_WORDS_TABLE = """CREATE VIRTUAL TABLE message_words USING fts5 (
    body, sender, content='', columnsize=0, tokenize='unicode61 remove_diacritics 2'
)"""
_WORDS_AUTOMERGE = f"INSERT INTO message_words (message_words, rank) VALUES ('automerge', {FTS_AUTOMERGE})"

_MARKS_TABLE = "CREATE TABLE marks (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"
WORDS_FROM = "words_from"  # marks: while search is off, the last row with its words indexed

SCHEMA = f"""
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    msgid TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    target TEXT NOT NULL,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    sender TEXT NOT NULL,
    author TEXT NOT NULL,
    line TEXT NOT NULL,
    tags TEXT NOT NULL
);
CREATE UNIQUE INDEX messages_by_time ON messages (owner, target, time_us);
CREATE UNIQUE INDEX messages_by_msgid ON messages (msgid, owner, target);
{_WORDS_TABLE};
{_WORDS_AUTOMERGE};
CREATE TABLE conversations (
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    rows INTEGER NOT NULL,
    oldest_us INTEGER NOT NULL,
    PRIMARY KEY (owner, target)
) WITHOUT ROWID;
CREATE INDEX conversations_by_rows ON conversations (rows);
CREATE INDEX conversations_by_oldest ON conversations (oldest_us);
CREATE TABLE read_markers (
    owner TEXT NOT NULL,
    target TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    PRIMARY KEY (owner, target)
) WITHOUT ROWID;
CREATE TABLE channel_state (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL
) WITHOUT ROWID;
{_MARKS_TABLE};
PRAGMA user_version = {SCHEMA_VERSION};
"""

_INSERT = f"INSERT OR IGNORE INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
# One INSERT ... SELECT for the whole batch, not a trigger per row: FTS5 flushes its pending
# terms at every statement savepoint, and a trigger per row made writes 3x slower (measured).
_INDEX_WORDS_AFTER = ("INSERT INTO message_words (rowid, body, sender) "
                      f"SELECT id, message_text(line), hex(sender) FROM messages WHERE id > ? AND {_SEARCHED}")
# NOT INDEXED: otherwise SQLite groups by walking all of messages_by_time instead of the
# batch's rowid range.
_COUNT_ROWS_AFTER = ("INSERT INTO conversations (owner, target, rows, oldest_us) "
                     "SELECT owner, target, count(*), min(time_us) FROM messages NOT INDEXED "
                     "WHERE id > ? GROUP BY owner, target "
                     "ON CONFLICT (owner, target) DO UPDATE SET rows = rows + excluded.rows, "
                     "oldest_us = min(oldest_us, excluded.oldest_us)")
_FORGET_WORDS = ("INSERT INTO message_words (message_words, rowid, body, sender) "
                 "SELECT 'delete', id, message_text(line), hex(sender) FROM messages WHERE {where} AND " + _SEARCHED)


def message_text(line: str | bytes) -> str:
    """The words search looks in: the last parameter of a PRIVMSG or NOTICE line, without a
    CTCP ACTION's wrapping (so /me lines are found by their words, not by "ACTION").

    A cheap split rather than `ircproto.message.parse` (0.2 us a line against 1.1 us, measured):
    in a line the hub formatted the source has no space, so the first " :" starts the trailing
    parameter, and without one the text is the last word. The tests check it against `parse`."""
    if type(line) is bytes:  # stored as a BLOB: it was not UTF-8
        line = line.decode("utf-8", "replace")
    start = line.find(" :")
    text = line[start + 2:] if start >= 0 else line.rpartition(" ")[2]
    if text.startswith("\x01ACTION "):
        text = text[8:].removesuffix("\x01")
    return text


def fts_query(text: str) -> str | None:
    """An FTS5 query matching rows whose body holds every word of `text`, or None when it has
    none.

    Each whitespace-separated word becomes one quoted FTS5 string (inner quotes doubled), so
    no input is FTS syntax: `NEAR(`, `*`, `-`, `:` or `AND` are searched as words. A word of
    punctuation only has no tokens: alone it matches nothing; beside other words FTS5 drops it."""
    # FTS5 reads a query only up to a NUL; as a separator it means the same to the tokenizer.
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", " ")
    words = text.split()
    if not words:
        return None
    return " ".join('body : "' + word.replace('"', '""') + '"' for word in words)


def sender_query(sender: str) -> str:
    """The FTS5 query for rows sent by this folded nick (the `sender` column's one token)."""
    stored = _to_db(sender)
    return 'sender : "' + (stored if type(stored) is bytes else stored.encode()).hex() + '"'


def _to_db(text: str) -> str | bytes:
    """A str as SQLite can take it: itself, or for text with lone surrogates (bytes that were not
    UTF-8) those original bytes, stored as a BLOB."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")
    return text


def _from_db(value):
    return value.decode("utf-8", "surrogateescape") if type(value) is bytes else value


def _record(row: tuple) -> Record:
    if bytes in map(type, row):
        row = tuple(map(_from_db, row))
    return Record._make(row)


def _storable(record: Record) -> tuple:
    return tuple(_to_db(v) if type(v) is str else v for v in record)


def _kinds_clause(kinds: frozenset[str] | None) -> tuple[str, tuple[str, ...]]:
    if kinds is None:
        return "", ()
    ordered = tuple(sorted(kinds))  # one statement text per set, for sqlite3's statement cache
    return f" AND kind IN ({', '.join('?' * len(ordered))})", ordered


SYNC_MODES = {"normal": "NORMAL", "full": "FULL"}  # history.synchronous -> the PRAGMA's value


class SQLiteStore:
    def __init__(self, path: str, synchronous: str = "normal") -> None:
        # One thread at a time, not always the same one: the writing jobs move between two
        # threads (history/writer.py), and never overlap.
        self._db = sqlite3.connect(path, isolation_level=None, cached_statements=256, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")  # ":memory:" stays "memory": fine for tests
        self._db.execute(f"PRAGMA synchronous = {SYNC_MODES[synchronous]}")
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES}")
        self._db.create_function("message_text", 1, message_text, deterministic=True)
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version == 0:
            self._db.executescript("BEGIN IMMEDIATE;" + SCHEMA + "COMMIT;")
        elif version == 1:
            self._index_words_again()
        elif version == 2:
            self._db.executescript(f"BEGIN IMMEDIATE; {_MARKS_TABLE}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version != SCHEMA_VERSION:
            self._db.close()
            raise RuntimeError(f"{path}: history schema version {version}, this code reads {SCHEMA_VERSION}")

    def _index_words_again(self) -> None:
        """From version 1: a new message_words, filled from the messages in one statement."""
        with self._transaction() as db:
            db.execute("DROP TABLE message_words")
            db.execute(_WORDS_TABLE)
            db.execute(_WORDS_AUTOMERGE)
            db.execute(_INDEX_WORDS_AFTER, (0,))
            db.execute(_MARKS_TABLE)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def set_search(self, on: bool) -> int:
        """history.search: off, later rows get no words (the mark says from where); on, the rows
        written while it was off are indexed now, in one statement. Returns how many rows that
        indexed (0 when turning it off, or when it was on)."""
        with self._transaction() as db:
            mark = self._words_from()
            if not on:
                if mark is None:
                    db.execute("INSERT INTO marks (name, value) VALUES (?, (SELECT coalesce(max(id), 0) FROM messages))",
                               (WORDS_FROM,))
                return 0
            if mark is None:
                return 0
            indexed = db.execute(_INDEX_WORDS_AFTER, (mark,)).rowcount
            db.execute("DELETE FROM marks WHERE name = ?", (WORDS_FROM,))
            return indexed

    def _words_from(self) -> int | None:
        row = self._db.execute("SELECT value FROM marks WHERE name = ?", (WORDS_FROM,)).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self._db.execute("PRAGMA optimize")
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE: every write transaction reads before it writes (max(id), counts); taking
        # the write lock first means another connection can never make its snapshot stale.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            if self._db.in_transaction:  # SQLite has already rolled back after some errors
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- writing -------------------------------------------------------------------------

    def write(self, records: Iterable[Record]) -> int:
        """Store a batch in one transaction; returns how many rows were new. A record whose
        (owner, target, msgid) is stored already is ignored (the first copy stays), and so is one
        whose (owner, target, time_us) is taken: the hub never sends one, and a row history
        could not address by time would break every selector."""
        rows = records if isinstance(records, list) else list(records)
        if not rows:
            return 0
        try:
            return self._write(rows)
        except UnicodeEncodeError:  # rolled back; rare, so the common batch is not converted
            return self._write([_storable(r) for r in rows])

    def _write(self, rows: list) -> int:
        with self._transaction() as db:
            # Every row this batch adds gets a rowid above the largest there is now, so "id > last"
            # is exactly the new rows: no per-row bookkeeping for the FTS rows and the counts.
            (last,) = db.execute("SELECT coalesce(max(id), 0) FROM messages").fetchone()
            added = db.executemany(_INSERT, rows).rowcount
            if added:
                if self._words_from() is None:
                    db.execute(_INDEX_WORDS_AFTER, (last,))
                db.execute(_COUNT_ROWS_AFTER, (last,))
        return added

    def delete(self, msgid: str) -> int:
        """Remove every row with this msgid (each party's copy) and its words; returns how many."""
        key = _to_db(msgid)
        with self._transaction() as db:
            places = db.execute("SELECT owner, target FROM messages WHERE msgid = ?", (key,)).fetchall()
            if not places:
                return 0
            self._forget_words("msgid = ?", (key,))
            db.execute("DELETE FROM messages WHERE msgid = ?", (key,))
            for owner, target in places:
                self._recount(owner, target, 1)
        return len(places)

    def _forget_words(self, where: str, params: tuple) -> None:
        """Remove the words of the rows `where` selects, of those that have them: a contentless
        FTS5 table takes a 'delete' of words it never held as corruption."""
        mark = self._words_from()
        if mark is not None:
            where, params = f"({where}) AND id <= ?", (*params, mark)
        self._db.execute(_FORGET_WORDS.format(where=where), params)

    def _recount(self, owner, target, removed: int) -> None:
        where = {"owner": owner, "target": target, "removed": removed}
        self._db.execute(
            "UPDATE conversations SET rows = rows - :removed, oldest_us = coalesce("
            "(SELECT min(time_us) FROM messages WHERE owner = :owner AND target = :target), oldest_us) "
            "WHERE owner = :owner AND target = :target", where)
        self._db.execute("DELETE FROM conversations WHERE owner = :owner AND target = :target AND rows <= 0",
                         where)

    def prune(self, now_us: int, max_age_us: int | None, max_per_target: int | None) -> int:
        """Delete messages older than now_us - max_age_us (strictly) and, in each (owner, target),
        all but the newest max_per_target; None turns either rule off. Returns rows deleted.

        Bounded: at most PRUNE_CHUNK rows per call (age first, then counts), in one transaction,
        each step found through an index (conversations by oldest time or by rows, then a range of
        messages_by_time), so a call costs about its deletions, never a scan of the database. A
        return of PRUNE_CHUNK means more may be due: call again (after letting a write in). At
        ~18 us a row, pruning at the rate of 30,000 messages a second would take half a core."""
        budget = PRUNE_CHUNK
        with self._transaction() as db:
            if max_age_us is not None:
                cutoff = now_us - max_age_us
                due = db.execute("SELECT owner, target FROM conversations WHERE oldest_us < ? "
                                 "ORDER BY oldest_us LIMIT ?", (cutoff, budget)).fetchall()
                for owner, target in due:
                    budget -= self._drop_oldest(owner, target, budget, before_us=cutoff)
                    if not budget:
                        break
            if max_per_target is not None and budget:
                due = db.execute("SELECT owner, target, rows FROM conversations WHERE rows > ? "
                                 "ORDER BY rows DESC LIMIT ?", (max_per_target, budget)).fetchall()
                for owner, target, rows in due:
                    budget -= self._drop_oldest(owner, target, min(rows - max_per_target, budget))
                    if not budget:
                        break
        return PRUNE_CHUNK - budget

    def _drop_oldest(self, owner, target, count: int, before_us: int | None = None) -> int:
        """Delete the oldest `count` rows of one conversation, only those before `before_us` when
        given; returns how many went."""
        row = self._db.execute("SELECT time_us FROM messages WHERE owner = ? AND target = ? "
                               "ORDER BY time_us LIMIT 1 OFFSET ?", (owner, target, count)).fetchone()
        upto = row[0] if row else None  # the first row to keep, by count
        if before_us is not None and (upto is None or before_us < upto):
            upto = before_us
        where, params = "owner = ? AND target = ?", (owner, target)
        if upto is not None:
            where, params = where + " AND time_us < ?", params + (upto,)
        self._forget_words(where, params)
        removed = self._db.execute(f"DELETE FROM messages WHERE {where}", params).rowcount
        if removed:
            self._recount(owner, target, removed)
        return removed

    # -- reading one conversation --------------------------------------------------------

    def time_of(self, owner: str, target: str, msgid: str) -> int | None:
        row = self._db.execute("SELECT time_us FROM messages WHERE msgid = ? AND owner = ? AND target = ?",
                               (_to_db(msgid), _to_db(owner), _to_db(target))).fetchone()
        return row[0] if row else None

    def message(self, owner: str, target: str, msgid: str) -> Record | None:
        row = self._db.execute(f"SELECT {COLUMNS} FROM messages WHERE msgid = ? AND owner = ? AND target = ?",
                               (_to_db(msgid), _to_db(owner), _to_db(target))).fetchone()
        return _record(row) if row else None

    def _range(self, owner: str, target: str, bounds: str, params: tuple, newest_first: bool,
               limit: int, kinds: frozenset[str] | None) -> list[Record]:
        """Up to `limit` rows of one conversation within `bounds` (SQL on time_us), taken from the
        newest end or the oldest, returned ascending."""
        if limit <= 0 or kinds is not None and not kinds:
            return []
        kind_sql, kind_params = _kinds_clause(kinds)
        order = "DESC" if newest_first else "ASC"
        rows = self._db.execute(
            f"SELECT {COLUMNS} FROM messages WHERE owner = ? AND target = ?{bounds}{kind_sql} "
            f"ORDER BY time_us {order} LIMIT ?",
            (_to_db(owner), _to_db(target), *params, *kind_params, limit)).fetchall()
        if newest_first:
            rows.reverse()
        return list(map(_record, rows))

    def latest(self, owner: str, target: str, limit: int, after_us: int | None = None,
               kinds: frozenset[str] | None = None) -> list[Record]:
        """The newest `limit` messages, only those strictly after `after_us` when given."""
        if after_us is None:
            return self._range(owner, target, "", (), True, limit, kinds)
        return self._range(owner, target, " AND time_us > ?", (after_us,), True, limit, kinds)

    def before(self, owner: str, target: str, before_us: int, limit: int,
               kinds: frozenset[str] | None = None) -> list[Record]:
        """The `limit` messages right before `before_us` (strictly)."""
        return self._range(owner, target, " AND time_us < ?", (before_us,), True, limit, kinds)

    def after(self, owner: str, target: str, after_us: int, limit: int,
              kinds: frozenset[str] | None = None) -> list[Record]:
        """The `limit` messages right after `after_us` (strictly)."""
        return self._range(owner, target, " AND time_us > ?", (after_us,), False, limit, kinds)

    def around(self, owner: str, target: str, pivot_us: int, limit: int, include_pivot: bool,
               kinds: frozenset[str] | None = None) -> list[Record]:
        """Messages around `pivot_us`: floor(limit / 2) slots for those strictly before it, and the
        other limit - floor(limit / 2) for those after it, which with `include_pivot` start with
        the message at exactly pivot_us (when there is one). A side with fewer messages than its
        slots does not give the rest to the other side. So limit 1 with the pivot is the pivot
        alone; limit 5 is 2 before, the pivot, 2 after; limit 4 without it is 2 and 2."""
        before_slots = limit // 2
        older = self._range(owner, target, " AND time_us < ?", (pivot_us,), True, before_slots, kinds)
        bound = " AND time_us >= ?" if include_pivot else " AND time_us > ?"
        newer = self._range(owner, target, bound, (pivot_us,), False, limit - before_slots, kinds)
        return older + newer

    def between(self, owner: str, target: str, a_us: int, b_us: int, limit: int,
                kinds: frozenset[str] | None = None) -> list[Record]:
        """Messages strictly between two times, the `limit` nearest the FIRST one: right after a_us
        when a_us < b_us, right before it when a_us > b_us. Ascending either way."""
        if a_us == b_us:
            return []
        forward = a_us < b_us
        return self._range(owner, target, " AND time_us > ? AND time_us < ?", (min(a_us, b_us), max(a_us, b_us)),
                           not forward, limit, kinds)

    # -- reading across conversations ----------------------------------------------------

    def _private_targets(self, owner: str, active_before: int | None = None) -> list:
        """The owner's private conversations (targets as stored), none for the channel owner ""."""
        if not owner:
            return []
        if active_before is None:
            rows = self._db.execute("SELECT target FROM conversations WHERE owner = ?", (_to_db(owner),))
        else:
            rows = self._db.execute("SELECT target FROM conversations WHERE owner = ? AND oldest_us < ?",
                                    (_to_db(owner), active_before))
        return [t for (t,) in rows]

    def targets(self, owner: str, channels: Iterable[str], a_us: int, b_us: int,
                limit: int) -> list[tuple[str, int]]:
        """(target, time of its latest PRIVMSG/NOTICE/TAGMSG strictly between the two times) for
        the owner's private targets and the listed channels, ascending by that time. Of more
        than `limit`, those nearest the FIRST time, as `between` counts: the earliest when
        a_us < b_us, the latest when a_us > b_us."""
        if limit <= 0 or a_us == b_us:
            return []
        low, high = min(a_us, b_us), max(a_us, b_us)
        places = [(_to_db(owner), t) for t in self._private_targets(owner, high)]
        places += [("", _to_db(c)) for c in dict.fromkeys(channels)]
        found = []
        for place_owner, place_target in places:
            row = self._db.execute(
                f"SELECT time_us FROM messages WHERE owner = ? AND target = ? AND time_us > ? "
                f"AND time_us < ? AND {_ACTIVE} ORDER BY time_us DESC LIMIT 1",
                (place_owner, place_target, low, high)).fetchone()
            if row:
                found.append((row[0], _from_db(place_target)))
        found.sort()
        chosen = found[:limit] if a_us < b_us else found[-limit:]
        return [(target, time_us) for time_us, target in chosen]

    def search(self, owner: str, channels: Iterable[str], *, target: str | None = None,
               sender: str | None = None, after_us: int | None = None, before_us: int | None = None,
               text: str | None = None, limit: int) -> list[Record]:
        """The newest `limit` PRIVMSG/NOTICE rows, ascending, among the owner's private rows and
        the listed channels (or only `target`: a listed channel, else one of the owner's private
        targets), sent by `sender` (a folded nick), strictly between the times given, holding
        every word of `text` (see `fts_query`; text without words filters nothing).

        With text or sender the FTS match drives, one rowid lookup per row that holds the
        words and has that sender: its cost grows with their number, whatever the limit (a word
        in a quarter of 1.45M rows: ~420 ms). With neither, each conversation is a range scan of its
        newest rows."""
        if limit <= 0:
            return []
        channels = list(dict.fromkeys(channels))
        filters, params = [_SEARCHED], []
        if sender is not None:
            filters.append("sender = ?")
            params.append(_to_db(sender))
        if after_us is not None:
            filters.append("time_us > ?")
            params.append(after_us)
        if before_us is not None:
            filters.append("time_us < ?")
            params.append(before_us)
        words = fts_query(text) if text is not None else None
        # The sender's token narrows the FTS match; `sender = ?` above still decides.
        query = " ".join(filter(None, [words, sender_query(sender) if sender is not None else None])) or None
        if target is not None:
            if target in channels:
                places = [("", _to_db(target))]
            elif owner:
                places = [(_to_db(owner), _to_db(target))]
            else:
                return []
        elif query is None:
            places = [(_to_db(owner), t) for t in self._private_targets(owner)]
            places += [("", _to_db(c)) for c in channels]
        else:
            places = [("", _to_db(c)) for c in channels]
        if query is None:
            return self._newest_in(places, " AND ".join(filters), params, limit)
        return self._newest_matching(query, places, owner if target is None else None,
                                     " AND ".join("m." + f for f in filters), params, limit)

    def _newest_in(self, places: list, where: str, params: list, limit: int) -> list[Record]:
        # Times and ids first, rows only for the winners: an owner with hundreds of
        # conversations must not turn hundreds of times `limit` rows into Records.
        candidates = []
        for place_owner, place_target in places:
            candidates += self._db.execute(
                f"SELECT time_us, id FROM messages WHERE owner = ? AND target = ? AND {where} "
                f"ORDER BY time_us DESC LIMIT ?", (place_owner, place_target, *params, limit)).fetchall()
        candidates.sort()
        ids = [rowid for _, rowid in candidates[-limit:]]
        if not ids:
            return []
        rows = self._db.execute(f"SELECT {COLUMNS} FROM messages WHERE id IN ({', '.join('?' * len(ids))}) "
                                f"ORDER BY time_us, owner, target", ids).fetchall()
        return list(map(_record, rows))

    def _newest_matching(self, query: str, places: list, all_of_owner: str | None, where: str,
                         params: list, limit: int) -> list[Record]:
        """With all_of_owner, every private row of that owner besides the places."""
        terms, scope_params = [], []
        if all_of_owner:  # one index prefix, not one term per private target
            terms.append("m.owner = ?")
            scope_params.append(_to_db(all_of_owner))
        channel_keys = [t for o, t in places if o == ""]
        if channel_keys:
            terms.append(f"m.owner = '' AND m.target IN ({', '.join('?' * len(channel_keys))})")
            scope_params += channel_keys
        for place in places:
            if place[0] != "":
                terms.append("m.owner = ? AND m.target = ?")
                scope_params += place
        if not terms:
            return []
        scope = " OR ".join(f"({term})" for term in terms)
        # CROSS JOIN keeps the FTS match as the outer loop: each match is one rowid lookup.
        rows = self._db.execute(
            f"SELECT {', '.join('m.' + c for c in COLUMNS.split(', '))} FROM message_words "
            f"CROSS JOIN messages AS m ON m.id = message_words.rowid "
            f"WHERE message_words MATCH ? AND ({scope}) AND {where} "
            f"ORDER BY m.time_us DESC, m.owner DESC, m.target DESC LIMIT ?",
            (query, *scope_params, *params, limit)).fetchall()
        rows.reverse()
        return list(map(_record, rows))

    # -- read markers and channel state --------------------------------------------------

    def set_marker(self, owner_key: str, target: str, time_us: int) -> int:
        """Move the marker forward to time_us (never back); returns the marker as stored."""
        ((stored,),) = self._db.execute(
            "INSERT INTO read_markers (owner, target, time_us) VALUES (?, ?, ?) "
            "ON CONFLICT (owner, target) DO UPDATE SET time_us = max(time_us, excluded.time_us) "
            "RETURNING time_us", (_to_db(owner_key), _to_db(target), time_us)).fetchall()
        return stored

    def marker(self, owner_key: str, target: str) -> int | None:
        row = self._db.execute("SELECT time_us FROM read_markers WHERE owner = ? AND target = ?",
                               (_to_db(owner_key), _to_db(target))).fetchone()
        return row[0] if row else None

    def save_channel(self, key: str, state: dict) -> None:
        self._db.execute("INSERT INTO channel_state (key, state) VALUES (?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET state = excluded.state",
                         (_to_db(key), json.dumps(state, separators=(",", ":"))))

    def drop_channel(self, key: str) -> None:
        self._db.execute("DELETE FROM channel_state WHERE key = ?", (_to_db(key),))

    def channels(self) -> dict[str, dict]:
        return {_from_db(key): json.loads(state)
                for key, state in self._db.execute("SELECT key, state FROM channel_state")}
