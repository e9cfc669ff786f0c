"""The history store on its own: SQLiteStore in memory (or in tmp_path when a test reopens the
file), fed Records, asked what CHATHISTORY, search, read markers and pruning ask."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from history import store as store_module
from history.store import SCHEMA_VERSION, Record, SQLiteStore, fts_query, message_text
from ircproto.message import format_line, parse

ROOT = Path(__file__).resolve().parents[1]
MSG = frozenset({"PRIVMSG"})
TIMES = list(range(10, 101, 10))  # the conversation most tests ask about: 10, 20, ..., 100


def rec(time_us: int, target: str = "#lobby", owner: str = "", kind: str = "PRIVMSG", sender: str = "alice",
        text: str | None = None, msgid: str | None = None, tags: str = "") -> Record:
    if kind in ("PRIVMSG", "NOTICE"):
        line = f":{sender}!u@host {kind} {target} :{text if text is not None else f'message at {time_us}'}"
    elif kind == "TAGMSG":
        line = f":{sender}!u@host TAGMSG {target}"
    else:
        line = f":{sender}!u@host {kind} {target}"
    return Record(msgid or f"m{time_us}", time_us, target, owner, kind, sender, "a:" + sender, line, tags)


@pytest.fixture
def store():
    s = SQLiteStore(":memory:")
    yield s
    s.close()


@pytest.fixture
def lobby(store):
    store.write([rec(t) for t in TIMES])
    return store


def times(records) -> list[int]:
    return [r.time_us for r in records]


# -- the selectors' bounds ----------------------------------------------------------------

SELECTOR_TABLE = [
    # latest: the newest `limit`, strictly after after_us when given
    ("latest", dict(limit=3), [80, 90, 100]),
    ("latest", dict(limit=50), TIMES),
    ("latest", dict(limit=0), []),
    ("latest", dict(limit=10, after_us=70), [80, 90, 100]),
    ("latest", dict(limit=2, after_us=70), [90, 100]),
    ("latest", dict(limit=5, after_us=100), []),
    ("latest", dict(limit=2, after_us=0), [90, 100]),
    # before: strictly before the reference
    ("before", dict(before_us=50, limit=2), [30, 40]),
    ("before", dict(before_us=55, limit=2), [40, 50]),
    ("before", dict(before_us=15, limit=5), [10]),
    ("before", dict(before_us=10, limit=5), []),
    ("before", dict(before_us=1000, limit=1), [100]),
    ("before", dict(before_us=50, limit=0), []),
    # after: strictly after the reference
    ("after", dict(after_us=50, limit=2), [60, 70]),
    ("after", dict(after_us=45, limit=2), [50, 60]),
    ("after", dict(after_us=5, limit=1), [10]),
    ("after", dict(after_us=100, limit=5), []),
    ("after", dict(after_us=90, limit=5), [100]),
    # between: strictly inside, the `limit` nearest the FIRST reference, ascending
    ("between", dict(a_us=20, b_us=70, limit=2), [30, 40]),
    ("between", dict(a_us=70, b_us=20, limit=2), [50, 60]),
    ("between", dict(a_us=20, b_us=70, limit=10), [30, 40, 50, 60]),
    ("between", dict(a_us=70, b_us=20, limit=10), [30, 40, 50, 60]),
    ("between", dict(a_us=25, b_us=65, limit=1), [30]),
    ("between", dict(a_us=65, b_us=25, limit=1), [60]),
    ("between", dict(a_us=20, b_us=30, limit=5), []),
    ("between", dict(a_us=30, b_us=30, limit=5), []),
    ("between", dict(a_us=0, b_us=1000, limit=3), [10, 20, 30]),
    ("between", dict(a_us=1000, b_us=0, limit=3), [80, 90, 100]),
    # around: floor(limit/2) before, the rest from the pivot on (with it when include_pivot)
    ("around", dict(pivot_us=50, limit=5, include_pivot=True), [30, 40, 50, 60, 70]),
    ("around", dict(pivot_us=50, limit=5, include_pivot=False), [30, 40, 60, 70, 80]),
    ("around", dict(pivot_us=50, limit=4, include_pivot=True), [30, 40, 50, 60]),
    ("around", dict(pivot_us=50, limit=4, include_pivot=False), [30, 40, 60, 70]),
    ("around", dict(pivot_us=50, limit=1, include_pivot=True), [50]),
    ("around", dict(pivot_us=50, limit=1, include_pivot=False), [60]),
    ("around", dict(pivot_us=50, limit=2, include_pivot=True), [40, 50]),
    ("around", dict(pivot_us=55, limit=4, include_pivot=True), [40, 50, 60, 70]),  # no message at the pivot
    ("around", dict(pivot_us=10, limit=6, include_pivot=True), [10, 20, 30]),  # no side lends its slots
    ("around", dict(pivot_us=100, limit=6, include_pivot=False), [70, 80, 90]),
    ("around", dict(pivot_us=100, limit=6, include_pivot=True), [70, 80, 90, 100]),
    ("around", dict(pivot_us=50, limit=0, include_pivot=True), []),
]


@pytest.mark.parametrize("selector,args,expected", SELECTOR_TABLE)
def test_selector_bounds(lobby, selector, args, expected):
    found = getattr(lobby, selector)("", "#lobby", **args)
    assert times(found) == expected
    assert all(r.target == "#lobby" and r.owner == "" for r in found)


def test_a_selector_returns_whole_records(lobby):
    (last,) = lobby.latest("", "#lobby", 1)
    assert last == rec(100)


def test_an_unknown_conversation_is_empty(lobby):
    assert lobby.latest("", "#other", 10) == []
    assert lobby.around("", "#other", 50, 10, True) == []
    assert lobby.between("", "#other", 0, 1000, 10) == []


# Every other message is a JOIN: 20, 40, ..., 100; PRIVMSGs at 10, 30, 50, 70, 90.
KINDS_TABLE = [
    ("latest", dict(limit=2), [70, 90]),
    ("latest", dict(limit=2, after_us=80), [90]),
    ("before", dict(before_us=60, limit=2), [30, 50]),
    ("before", dict(before_us=50, limit=2), [10, 30]),
    ("after", dict(after_us=40, limit=2), [50, 70]),
    ("between", dict(a_us=10, b_us=100, limit=2), [30, 50]),
    ("between", dict(a_us=100, b_us=10, limit=2), [70, 90]),
    ("around", dict(pivot_us=60, limit=3, include_pivot=True), [50, 70, 90]),  # the pivot is a JOIN
    ("around", dict(pivot_us=50, limit=3, include_pivot=True), [30, 50, 70]),
    ("around", dict(pivot_us=50, limit=4, include_pivot=False), [10, 30, 70, 90]),
]


@pytest.mark.parametrize("selector,args,expected", KINDS_TABLE)
def test_only_the_asked_kinds_count_toward_the_limit(store, selector, args, expected):
    store.write([rec(t, kind="JOIN" if t % 20 == 0 else "PRIVMSG") for t in TIMES])
    assert times(getattr(store, selector)("", "#lobby", **args, kinds=MSG)) == expected
    every_kind = getattr(store, selector)("", "#lobby", **args)
    assert any(r.kind == "JOIN" for r in every_kind)  # without kinds the JOINs are there


def test_kinds_of_several_and_of_none(store):
    store.write([rec(10), rec(20, kind="JOIN"), rec(30, kind="NOTICE"), rec(40, kind="TAGMSG")])
    assert times(store.latest("", "#lobby", 10, kinds=frozenset({"NOTICE", "TAGMSG"}))) == [30, 40]
    assert store.latest("", "#lobby", 10, kinds=frozenset()) == []
    assert store.around("", "#lobby", 20, 10, True, kinds=frozenset({"JOIN"})) == [rec(20, kind="JOIN")]


# -- owners ----------------------------------------------------------------------------------

def private_pair(time_us: int, sender: str, sender_key: str, receiver: str, receiver_key: str, text: str):
    """A private message as the store gets it: once in each party's history."""
    line = f":{sender}!u@host PRIVMSG {receiver} :{text}"
    return [Record(f"p{time_us}", time_us, receiver, sender_key, "PRIVMSG", sender, sender_key, line, ""),
            Record(f"p{time_us}", time_us, sender, receiver_key, "PRIVMSG", sender, sender_key, line, "")]


def test_an_owner_never_sees_another_owners_private_rows(store):
    assert store.write(private_pair(10, "alice", "a:alice", "bob", "a:bob", "secret plans")) == 2
    store.write(private_pair(20, "carol", "a:carol", "bob", "a:bob", "other plans"))
    store.write([rec(30, text="public plans")])
    assert times(store.latest("a:alice", "bob", 10)) == [10]
    assert times(store.latest("a:bob", "alice", 10)) == [10]
    assert times(store.latest("a:bob", "carol", 10)) == [20]
    assert store.latest("a:carol", "alice", 10) == []
    assert store.latest("a:alice", "carol", 10) == []
    assert store.latest("", "bob", 10) == [] and store.latest("", "alice", 10) == []  # channel rows are owner ""
    assert store.latest("a:alice", "#lobby", 10) == []
    assert [(r.owner, r.target) for r in store.search("a:alice", [], text="plans", limit=10)] == [("a:alice", "bob")]
    assert times(store.search("a:bob", [], text="plans", limit=10)) == [10, 20]
    assert store.targets("a:alice", [], 0, 100, 10) == [("bob", 10)]
    assert store.targets("a:carol", [], 0, 100, 10) == [("bob", 20)]


def test_the_channel_owner_has_no_private_rows(store):
    store.write(private_pair(10, "alice", "a:alice", "bob", "a:bob", "secret"))
    store.write([rec(20, text="secret too")])
    assert store.search("", [], text="secret", limit=10) == []
    assert store.search("", [], limit=10) == []
    assert times(store.search("", ["#lobby"], text="secret", limit=10)) == [20]
    assert store.targets("", [], 0, 100, 10) == []
    assert store.search("", ["#lobby"], target="bob", limit=10) == []


def test_search_in_a_channel_not_listed_finds_nothing(store):
    store.write([rec(10, target="#secret", text="hidden"), rec(20, text="hidden too")])
    assert store.search("a:alice", ["#lobby"], text="hidden", limit=10) == [rec(20, text="hidden too")]
    assert store.search("a:alice", ["#lobby"], target="#secret", text="hidden", limit=10) == []
    assert store.search("a:alice", ["#lobby"], target="#secret", limit=10) == []


# -- writing ---------------------------------------------------------------------------------

def test_duplicates_are_ignored_and_the_first_copy_stays(store):
    assert store.write([rec(10), rec(20)]) == 2
    assert store.write([rec(10, text="changed"), rec(30)]) == 1
    assert store.write([rec(40), rec(40, text="again")]) == 1  # within one batch too
    assert store.write([]) == 0
    assert [r.line for r in store.latest("", "#lobby", 10)] == [rec(t).line for t in (10, 20, 30, 40)]


def test_one_msgid_under_two_owners_is_two_rows(store):
    assert store.write(private_pair(10, "alice", "a:alice", "bob", "a:bob", "hi")) == 2
    assert store.write(private_pair(10, "alice", "a:alice", "bob", "a:bob", "hi")) == 0
    assert store.message("a:alice", "bob", "p10").owner == "a:alice"
    assert store.message("a:bob", "alice", "p10").owner == "a:bob"


def test_a_taken_time_is_ignored_too(store):
    store.write([rec(10)])
    assert store.write([rec(10, msgid="other")]) == 0
    assert store.message("", "#lobby", "other") is None


def test_a_generator_is_one_batch(store):
    assert store.write(rec(t) for t in TIMES) == len(TIMES)
    assert times(store.latest("", "#lobby", 100)) == TIMES


def test_a_failed_batch_stores_nothing(store):
    with pytest.raises(sqlite3.Error):
        store.write([rec(10), ("too", "short")])
    assert store.latest("", "#lobby", 10) == []
    assert store.write([rec(10)]) == 1


def test_time_of_and_message(lobby):
    assert lobby.time_of("", "#lobby", "m40") == 40
    assert lobby.time_of("", "#lobby", "nope") is None
    assert lobby.time_of("", "#other", "m40") is None
    assert lobby.message("", "#lobby", "m40") == rec(40)
    assert lobby.message("a:alice", "#lobby", "m40") is None


def test_text_that_is_not_utf8_round_trips(store):
    odd = "#caf\udce9"  # a channel name and a line with a byte that was not UTF-8
    record = rec(10, target=odd, text="na\udcefve words", tags="+x=\udcff")
    assert store.write([record, rec(20)]) == 2
    assert store.latest("", odd, 10) == [record]
    assert store.time_of("", odd, "m10") == 10
    assert store.search("", [odd], text="words", limit=5) == [record]
    assert store.targets("", [odd, "#lobby"], 0, 100, 10) == [(odd, 10), ("#lobby", 20)]
    store.set_marker("a:alice", odd, 10)
    assert store.marker("a:alice", odd) == 10
    assert store.delete("m10") == 1
    assert store.latest("", odd, 10) == []


# -- delete ----------------------------------------------------------------------------------

def fts_rowids(store, word: str) -> list[int]:
    """What the FTS table itself holds for a word, not filtered by a join with messages."""
    return [r for (r,) in store._db.execute("SELECT rowid FROM message_words WHERE message_words MATCH ?",
                                            (fts_query(word),))]


def test_delete_removes_every_copy_and_its_words(store):
    store.write(private_pair(10, "alice", "a:alice", "bob", "a:bob", "redact this please"))
    store.write([rec(20, text="keep this")])
    assert len(fts_rowids(store, "redact")) == 2
    assert store.delete("p10") == 2
    assert store.delete("p10") == 0
    assert store.message("a:alice", "bob", "p10") is None and store.message("a:bob", "alice", "p10") is None
    assert fts_rowids(store, "redact") == []
    assert len(fts_rowids(store, "this")) == 1
    assert store.search("a:alice", ["#lobby"], text="this", limit=10) == [rec(20, text="keep this")]
    assert store.targets("a:alice", ["#lobby"], 0, 100, 10) == [("#lobby", 20)]  # the conversation is gone


def test_with_search_off_no_words_are_indexed_and_turning_it_on_indexes_what_was_stored_meanwhile(store):
    store.write([rec(10, text="alpha before"), rec(20, text="alpha doomed")])
    assert store.set_search(False) == 0
    assert store.set_search(False) == 0  # already off: the mark stays where it was
    store.write([rec(30, text="alpha while off"), rec(40, text="alpha redacted while off"), rec(50, kind="JOIN")])
    assert times(store.search("", ["#lobby"], text="alpha", limit=10)) == [10, 20]  # only what has words
    assert len(fts_rowids(store, "alpha")) == 2
    assert store.delete("m20") == 1  # indexed before the mark: its words go with it
    assert fts_rowids(store, "doomed") == []
    assert store.delete("m40") == 1  # stored without words: none to remove
    assert times(store.latest("", "#lobby", 10)) == [10, 30, 50]  # history itself is whole
    assert store.set_search(True) == 1  # row 30; the JOIN has no words, row 40 is gone
    assert times(store.search("", ["#lobby"], text="alpha", limit=10)) == [10, 30]
    store.write([rec(60, text="alpha after")])
    assert times(store.search("", ["#lobby"], text="alpha", limit=10)) == [10, 30, 60]
    assert store.set_search(True) == 0


def test_search_off_is_kept_in_the_database_for_every_connection(tmp_path):
    path = str(tmp_path / "history.db")
    first, second = SQLiteStore(path), SQLiteStore(path)
    first.set_search(False)
    second.write([rec(10, text="unseen words")])  # the other connection was never told
    assert fts_rowids(second, "unseen") == []
    first.close()
    second.close()
    again = SQLiteStore(path)
    assert again.set_search(True) == 1 and times(again.search("", ["#lobby"], text="unseen", limit=10)) == [10]
    again.close()


def test_a_version_2_database_gets_the_marks_table(tmp_path):
    path = str(tmp_path / "history.db")
    version_2 = (store_module.SCHEMA.replace(store_module._MARKS_TABLE + ";", "")
                 .replace(f"user_version = {SCHEMA_VERSION}", "user_version = 2"))
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(version_2)
    db.close()
    store = SQLiteStore(path)
    assert store._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert store.set_search(False) == 0 and store._words_from() == 0
    store.close()


def test_a_reused_rowid_does_not_inherit_deleted_words(store):
    store.write([rec(10, text="first"), rec(20, text="forbidden word")])
    store.delete("m20")  # the newest row: SQLite gives its rowid to the next row
    store.write([rec(30, text="innocent")])
    assert store.search("", ["#lobby"], text="forbidden", limit=10) == []
    assert times(store.search("", ["#lobby"], text="innocent", limit=10)) == [30]


# -- read markers and channel state -----------------------------------------------------------

def test_a_marker_never_goes_back(store):
    assert store.marker("a:alice", "#lobby") is None
    assert store.set_marker("a:alice", "#lobby", 100) == 100
    assert store.set_marker("a:alice", "#lobby", 50) == 100
    assert store.marker("a:alice", "#lobby") == 100
    assert store.set_marker("a:alice", "#lobby", 200) == 200
    assert store.marker("a:alice", "#lobby") == 200
    assert store.marker("a:alice", "bob") is None
    assert store.marker("a:bob", "#lobby") is None


def test_channel_state_and_markers_survive_a_reopen(tmp_path):
    path = str(tmp_path / "history.db")
    first = SQLiteStore(path)
    first.save_channel("#lobby", {"topic": "hi", "modes": "nt", "bans": ["*!*@bad"], "created": 1733})
    first.save_channel("#old", {"topic": ""})
    first.save_channel("#caf\udce9", {"topic": "caf\udce9"})
    first.save_channel("#lobby", {"topic": "changed", "modes": "nt"})
    first.drop_channel("#old")
    first.drop_channel("#never")
    first.set_marker("a:alice", "#lobby", 42)
    first.write([rec(10)])
    first.close()
    again = SQLiteStore(path)
    assert again.channels() == {"#lobby": {"topic": "changed", "modes": "nt"}, "#caf\udce9": {"topic": "caf\udce9"}}
    assert again.marker("a:alice", "#lobby") == 42
    assert again.latest("", "#lobby", 5) == [rec(10)]
    again.close()


def test_a_file_database_is_wal_with_synchronous_normal(tmp_path):
    s = SQLiteStore(str(tmp_path / "history.db"))
    assert s._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert s._db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert s._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    s.close()


def test_synchronous_full_fsyncs_every_commit(tmp_path):
    s = SQLiteStore(str(tmp_path / "history.db"), "full")
    assert s._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    s.close()


KILLED_WRITER = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from history.store import Record, SQLiteStore

def rec(t):
    return Record(f"m{t}", t, "#lobby", "", "PRIVMSG", "alice", "", f":alice!u@h PRIVMSG #lobby :at {t}", "")

class KilledHalfway(list):  # the process dies while write() is inside its transaction
    def __iter__(self):
        yield from self[:2]
        os.kill(os.getpid(), signal.SIGKILL)

store = SQLiteStore(sys.argv[1])
store.write([rec(10), rec(20)])
store.write(KilledHalfway([rec(30), rec(40), rec(50)]))
"""


def test_a_killed_process_loses_nothing_committed_and_no_half_batch(tmp_path):
    path = tmp_path / "history.db"
    child = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path), str(ROOT)], timeout=30)
    assert child.returncode == -signal.SIGKILL
    assert (tmp_path / "history.db-wal").exists()  # the WAL was never checkpointed: recovery reads it
    again = SQLiteStore(str(path))
    assert times(again.latest("", "#lobby", 10)) == [10, 20]
    again.close()


def test_a_version_1_database_gets_its_words_indexed_again(tmp_path):
    """Version 1 (merged into main before the sender column) had message_words (body) only."""
    path = str(tmp_path / "history.db")
    assert "body, sender," in store_module.SCHEMA and store_module._WORDS_AUTOMERGE in store_module.SCHEMA
    version_1 = (store_module.SCHEMA.replace("body, sender,", "body,").replace(store_module._WORDS_AUTOMERGE + ";", "")
                 .replace(store_module._MARKS_TABLE + ";", "").replace(f"user_version = {SCHEMA_VERSION}", "user_version = 1"))
    db = sqlite3.connect(path, isolation_level=None)
    db.create_function("message_text", 1, message_text)
    db.executescript(version_1)
    db.executemany(store_module._INSERT, [rec(10, text="old words"), rec(20, sender="bob", text="more words"),
                                          rec(30, kind="JOIN")])
    db.execute("INSERT INTO message_words (rowid, body) SELECT id, message_text(line) FROM messages "
               "WHERE kind IN ('PRIVMSG', 'NOTICE')")
    db.execute(store_module._COUNT_ROWS_AFTER, (0,))
    db.close()
    store = SQLiteStore(path)
    assert store._db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert ("automerge", 8) in store._db.execute("SELECT * FROM message_words_config").fetchall()
    assert times(store.search("", ["#lobby"], text="words", limit=10)) == [10, 20]
    assert times(store.search("", ["#lobby"], sender="bob", limit=10)) == [20]
    assert store.delete("m20") == 1
    assert fts_rowids(store, "more") == []
    store.write([rec(40, sender="bob", text="new words")])
    assert times(store.search("", ["#lobby"], sender="bob", text="words", limit=10)) == [40]
    store.close()


def test_another_schema_version_is_refused(tmp_path):
    path = str(tmp_path / "history.db")
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="schema version"):
        SQLiteStore(path)


# -- prune -----------------------------------------------------------------------------------

def conversation_rows(store) -> dict[tuple[str, str], tuple[int, int]]:
    return {(o, t): (rows, oldest) for o, t, rows, oldest in store._db.execute("SELECT * FROM conversations")}


def test_prune_by_age_keeps_the_cutoff_itself(store):
    store.write([rec(t) for t in TIMES] + [rec(t, target="#dev") for t in (15, 95)])
    store.write(private_pair(25, "alice", "a:alice", "bob", "a:bob", "old private"))
    assert store.prune(now_us=1050, max_age_us=1000, max_per_target=None) == 7  # cutoff 50: 10..40, 15, 25 twice
    assert times(store.latest("", "#lobby", 100)) == [50, 60, 70, 80, 90, 100]
    assert times(store.latest("", "#dev", 100)) == [95]
    assert store.latest("a:alice", "bob", 10) == [] and store.latest("a:bob", "alice", 10) == []
    assert conversation_rows(store) == {("", "#lobby"): (6, 50), ("", "#dev"): (1, 95)}
    assert fts_rowids(store, "private") == []
    assert store.prune(now_us=1050, max_age_us=1000, max_per_target=None) == 0


def test_prune_keeps_the_newest_per_target(store):
    store.write([rec(t) for t in TIMES] + [rec(t, target="#dev") for t in (15, 95)])
    for t in (11, 21, 31):
        store.write(private_pair(t, "alice", "a:alice", "bob", "a:bob", f"private {t}"))
    assert store.prune(now_us=0, max_age_us=None, max_per_target=2) == 8 + 1 + 1
    assert times(store.latest("", "#lobby", 100)) == [90, 100]
    assert times(store.latest("", "#dev", 100)) == [15, 95]
    assert times(store.latest("a:alice", "bob", 10)) == [21, 31]
    assert times(store.latest("a:bob", "alice", 10)) == [21, 31]
    assert len(fts_rowids(store, "private")) == 4
    assert store.prune(now_us=0, max_age_us=None, max_per_target=2) == 0
    assert store.prune(now_us=0, max_age_us=None, max_per_target=None) == 0


def test_prune_works_in_chunks(store, monkeypatch):
    monkeypatch.setattr(store_module, "PRUNE_CHUNK", 3)
    store.write([rec(t) for t in TIMES] + [rec(t, target="#dev") for t in range(1, 9)])
    deleted = []
    while n := store.prune(now_us=1000, max_age_us=945, max_per_target=4):
        deleted.append(n)
    # By age (cutoff 55) the oldest conversation first: #dev's 1..8, then #lobby's 10..50; the
    # fifth call has room left for the count rule, which takes #lobby's 60.
    assert deleted == [3, 3, 3, 3, 2]
    assert times(store.latest("", "#lobby", 100)) == [70, 80, 90, 100]
    assert store.latest("", "#dev", 100) == []
    assert conversation_rows(store) == {("", "#lobby"): (4, 70)}


def test_prune_all_and_write_again(store):
    store.write([rec(t) for t in TIMES])
    assert store.prune(now_us=10**6, max_age_us=0, max_per_target=None) == 10
    assert conversation_rows(store) == {}
    assert store.write([rec(200)]) == 1
    assert conversation_rows(store) == {("", "#lobby"): (1, 200)}


# -- targets ---------------------------------------------------------------------------------

@pytest.fixture
def conversations(store):
    store.write([rec(10, target="#a"), rec(40, target="#a"), rec(20, target="#b"), rec(60, target="#b", kind="JOIN"),
                 rec(50, target="#c"), rec(70, target="#d", kind="TAGMSG")])
    store.write(private_pair(30, "bob", "a:bob", "alice", "a:alice", "hi"))
    store.write(private_pair(45, "carol", "a:carol", "alice", "a:alice", "hey"))
    store.write(private_pair(80, "dave", "a:dave", "alice", "a:alice", "yo"))
    return store


TARGETS_TABLE = [
    (0, 100, 10, [("#b", 20), ("bob", 30), ("#a", 40), ("carol", 45), ("#d", 70), ("dave", 80)]),
    (100, 0, 10, [("#b", 20), ("bob", 30), ("#a", 40), ("carol", 45), ("#d", 70), ("dave", 80)]),
    (0, 100, 2, [("#b", 20), ("bob", 30)]),  # nearest the first time
    (100, 0, 2, [("#d", 70), ("dave", 80)]),
    (10, 40, 10, [("#b", 20), ("bob", 30)]),  # strict at both ends: #a's 10 and 40 are out
    (40, 10, 10, [("#b", 20), ("bob", 30)]),
    (35, 90, 10, [("#a", 40), ("carol", 45), ("#d", 70), ("dave", 80)]),  # #b's JOIN at 60 is no activity
    (30, 30, 10, []),
    (0, 100, 0, []),
]


@pytest.mark.parametrize("a,b,limit,expected", TARGETS_TABLE)
def test_targets(conversations, a, b, limit, expected):
    assert conversations.targets("a:alice", ["#a", "#b", "#d", "#a"], a, b, limit) == expected


def test_targets_of_an_owner_with_no_private_rows(conversations):
    assert conversations.targets("a:nobody", ["#c"], 0, 100, 10) == [("#c", 50)]


# -- search ----------------------------------------------------------------------------------

@pytest.fixture
def chatter(store):
    store.write([rec(10, text="hello there world"), rec(20, sender="bob", text="Hello again"),
                 rec(30, text="goodbye world"), rec(40, kind="NOTICE", text="hello notice"),
                 rec(50, kind="TAGMSG"), rec(60, kind="JOIN"), rec(70, target="#dev", text="hello dev"),
                 rec(80, sender="bob", text="\x01ACTION waves hello\x01"), rec(90, text="café crème"),
                 rec(100, text="we are near the end; drop table messages")])
    store.write(private_pair(65, "bob", "a:bob", "alice", "a:alice", "hello privately"))
    return store


SEARCH_TABLE = [
    (dict(text="hello"), [10, 20, 40, 65, 70, 80]),
    (dict(text="HELLO world"), [10]),
    (dict(text="hello", limit=2), [70, 80]),  # the newest matches
    (dict(text="hello", sender="bob"), [20, 65, 80]),
    (dict(text="hello", after_us=20, before_us=70), [40, 65]),  # strict bounds
    (dict(text="hello", target="#dev"), [70]),
    (dict(text="hello", target="bob"), [65]),
    (dict(target="#lobby", after_us=70), [80, 90, 100]),  # no text: every PRIVMSG/NOTICE
    (dict(), [10, 20, 30, 40, 65, 70, 80, 90, 100]),  # TAGMSG and JOIN are never searched
    (dict(sender="bob"), [20, 65, 80]),
    (dict(sender="bob", limit=1), [80]),
    (dict(text="waves"), [80]),
    (dict(text="action"), []),  # the CTCP wrapping is not text
    (dict(text="cafe"), [90]),  # diacritics are not needed
    (dict(text="   "), [10, 20, 30, 40, 65, 70, 80, 90, 100]),  # no words: no text filter
    (dict(text="hello", limit=0), []),
    (dict(text="nothing-like-this"), []),
]


@pytest.mark.parametrize("args,expected", SEARCH_TABLE)
def test_search(chatter, args, expected):
    args = {"limit": 50, **args}
    found = chatter.search("a:alice", ["#lobby", "#dev"], **args)
    assert times(found) == expected
    assert all(r.owner in ("", "a:alice") for r in found)


HOSTILE = ['"', '""', "'", "NEAR(", "NEAR(a b", "near(the end", "*", "a*", "-", "-hello", "hello OR", "AND",
           "OR NOT", "body:hello", "{body}: hello", "sender : x", "^hello", "((((", "))", "日本語", "café", "\x00",
           "\udcff", "+", "\\", "%_", "'; DROP TABLE messages; --", "drop\" OR \"1\"=\"1", "hello\"world",
           "NEAR(hello world, 2)", "🙂 hello"]


@pytest.mark.parametrize("text", HOSTILE)
def test_search_with_hostile_text_never_raises(chatter, text):
    found = chatter.search("a:alice", ["#lobby", "#dev"], text=text, limit=50)
    assert isinstance(found, list)
    assert chatter._db.execute("SELECT count(*) FROM messages").fetchone() == (12,)


@pytest.mark.parametrize("text,expected", [
    ("-hello", [10, 20, 40, 65, 70, 80]),  # punctuation is no operator: the word is searched
    ("near(the end", [100]),
    ("'; DROP TABLE messages; --", [100]),
    ("NEAR(hello world, 2)", []),  # as FTS5's NEAR it would find 10
    ("hello OR", []),  # "or" is a word to find, not an operator
    ("*", []),
    ("hello *", [10, 20, 40, 65, 70, 80]),
])
def test_hostile_text_is_only_words(chatter, text, expected):
    assert times(chatter.search("a:alice", ["#lobby", "#dev"], text=text, limit=50)) == expected


# -- message_text --------------------------------------------------------------------------

@pytest.mark.parametrize("line,text", [
    (":a!u@h PRIVMSG #c :hello there", "hello there"),
    (":a!u@h PRIVMSG #c hello", "hello"),
    (":a!u@h PRIVMSG #c :", ""),
    (":a!u@h PRIVMSG #c ::-) smile", ":-) smile"),
    (":a!u@h NOTICE bob :a : b", "a : b"),
    (":a!u@h PRIVMSG #c :\x01ACTION waves\x01", "waves"),
    (":a!u@h PRIVMSG #c :\x01VERSION\x01", "\x01VERSION\x01"),
    (b":a!u@h PRIVMSG #c :caf\xe9 ok", "caf\ufffd ok"),
])
def test_message_text(line, text):
    assert message_text(line) == text


@settings(max_examples=200, deadline=None)
@given(source=st.from_regex(r"[a-z]{1,8}![a-z~]{1,5}@[a-z.]{1,10}", fullmatch=True),
       target=st.sampled_from(["#lobby", "bob", "#a:b"]), kind=st.sampled_from(["PRIVMSG", "NOTICE"]),
       text=st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=40))
def test_message_text_is_what_parse_finds(source, target, kind, text):
    if text.startswith("\x01ACTION "):
        text = "x" + text
    line = format_line(source, kind, target, text).decode().removesuffix("\r\n")
    assert message_text(line) == parse(line.encode()).params[-1]


# -- query plans -------------------------------------------------------------------------------

def plans(store, call) -> list[str]:
    """The plan of each statement `call` runs, one string per statement (FTS5's own statements
    on its shadow tables, traced as "-- ...", are left out)."""
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    call()
    store._db.set_trace_callback(None)
    return [" | ".join(row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements if sql.split()[0].upper() in ("SELECT", "INSERT", "DELETE", "UPDATE")]


@pytest.mark.parametrize("call", [
    lambda s: s.latest("", "#lobby", 5), lambda s: s.latest("", "#lobby", 5, after_us=3, kinds=MSG),
    lambda s: s.before("", "#lobby", 50, 5), lambda s: s.after("", "#lobby", 50, 5, kinds=MSG),
    lambda s: s.around("", "#lobby", 50, 5, True), lambda s: s.between("", "#lobby", 90, 20, 5),
    lambda s: s.targets("a:alice", ["#lobby"], 0, 100, 5),
    lambda s: s.search("a:alice", ["#lobby"], after_us=1, limit=5),
])
def test_every_selector_is_an_index_range_scan(lobby, call):
    lobby.write(private_pair(15, "bob", "a:bob", "alice", "a:alice", "x"))
    found = plans(lobby, lambda: call(lobby))
    assert found
    for plan in found:
        assert "SCAN messages" not in plan and "SCAN m " not in plan, plan
        if "messages_by_time" in plan:
            assert "TEMP B-TREE" not in plan, plan  # the index gives the order: no sort
    assert any("SEARCH messages USING INDEX messages_by_time (owner=? AND target=?" in p for p in found)


@pytest.mark.parametrize("args", [dict(text="message"), dict(sender="alice"), dict(text="message", sender="alice")])
def test_search_by_text_or_sender_is_driven_by_the_fts_match(lobby, args):
    (plan,) = plans(lobby, lambda: lobby.search("a:alice", ["#lobby"], limit=5, **args))
    assert plan.startswith("SCAN message_words VIRTUAL TABLE") and "SEARCH m USING INTEGER PRIMARY KEY" in plan


def test_the_sender_token_matches_only_that_nick(store):
    store.write([rec(10, sender="bob"), rec(20, sender="bobby"), rec(30, sender="bo"), rec(40, sender="b[o]b"),
                 rec(50, text="626f62 is bob in hex")])
    for nick, expected in (("bob", [10]), ("bo", [30]), ("b[o]b", [40]), ("b", [])):
        assert times(store.search("", ["#lobby"], sender=nick, limit=10)) == expected
    assert times(store.search("", ["#lobby"], text="626f62", limit=10)) == [50]  # words are only the text


@pytest.mark.parametrize("call", [
    lambda s: s.write([rec(500), rec(600, kind="JOIN")]), lambda s: s.delete("m50"),
    lambda s: s.prune(1000, 960, None), lambda s: s.prune(0, None, 3), lambda s: s.prune(1000, 900, 2),
])
def test_writes_deletes_and_prunes_scan_no_table(lobby, call):
    lobby.write(private_pair(15, "bob", "a:bob", "alice", "a:alice", "x"))
    found = plans(lobby, lambda: call(lobby))
    assert any(p.startswith("SEARCH messages") for p in found)
    for plan in found:
        assert "SCAN messages" not in plan and "SCAN conversations" not in plan, plan


# -- the selectors against a model -------------------------------------------------------------

KINDS = ("PRIVMSG", "NOTICE", "JOIN", "TAGMSG")
kind_sets = st.one_of(st.none(), st.frozensets(st.sampled_from(KINDS)))


def model_range(messages, kinds, inside, newest_first: bool, limit: int) -> list[int]:
    xs = [t for t, kind in messages if inside(t) and (kinds is None or kind in kinds)]
    if limit <= 0:
        return []
    return xs[-limit:] if newest_first else xs[:limit]


@settings(max_examples=80, deadline=None)
@given(messages=st.dictionaries(st.integers(0, 60), st.sampled_from(KINDS), max_size=30),
       noise=st.sets(st.integers(0, 60), max_size=10), refs=st.lists(st.integers(-2, 62), min_size=2, max_size=2),
       limit=st.integers(0, 12), kinds=kind_sets, include=st.booleans())
def test_selectors_match_a_model(messages, noise, refs, limit, kinds, include):
    ordered = sorted(messages.items())
    store = SQLiteStore(":memory:")
    try:
        # Another conversation with the same times, and the owner's copy of others: never seen.
        store.write([rec(t, kind=k) for t, k in messages.items()]
                    + [rec(t, target="#noise", msgid=f"n{t}") for t in noise]
                    + [rec(t, owner="a:x", msgid=f"x{t}") for t in noise])
        a, b = refs
        assert times(store.latest("", "#lobby", limit, kinds=kinds)) == model_range(
            ordered, kinds, lambda t: True, True, limit)
        assert times(store.latest("", "#lobby", limit, after_us=a, kinds=kinds)) == model_range(
            ordered, kinds, lambda t: t > a, True, limit)
        assert times(store.before("", "#lobby", a, limit, kinds=kinds)) == model_range(
            ordered, kinds, lambda t: t < a, True, limit)
        assert times(store.after("", "#lobby", a, limit, kinds=kinds)) == model_range(
            ordered, kinds, lambda t: t > a, False, limit)
        low, high = min(a, b), max(a, b)
        assert times(store.between("", "#lobby", a, b, limit, kinds=kinds)) == model_range(
            ordered, kinds, lambda t: low < t < high, a > b, limit)
        before_slots = limit // 2
        expected = (model_range(ordered, kinds, lambda t: t < a, True, before_slots)
                    + model_range(ordered, kinds, (lambda t: t >= a) if include else (lambda t: t > a), False,
                                  limit - before_slots))
        assert times(store.around("", "#lobby", a, limit, include, kinds=kinds)) == expected
    finally:
        store.close()


@settings(max_examples=60, deadline=None)
@given(rows=st.dictionaries(st.integers(0, 80), st.tuples(st.sampled_from(["#a", "#b", "#c", "bob", "carol"]),
                                                        st.sampled_from(KINDS), st.sampled_from(["alice", "bob"])),
                            max_size=40),
       sender=st.sampled_from([None, "alice", "bob"]), after=st.one_of(st.none(), st.integers(-1, 81)),
       before=st.one_of(st.none(), st.integers(-1, 81)), limit=st.integers(0, 10), word=st.booleans())
def test_search_and_targets_match_a_model(rows, sender, after, before, limit, word):
    store = SQLiteStore(":memory:")
    try:
        def owner_of(target):
            return "" if target.startswith("#") else "a:alice"
        store.write([rec(t, target=target, owner=owner_of(target), kind=kind, sender=s,
                         text="odd word" if t % 2 else "even word") for t, (target, kind, s) in rows.items()])
        visible = {"#a", "#b", "bob", "carol"}  # #c is not among the channels asked
        matches = [t for t, (target, kind, s) in sorted(rows.items())
                   if target in visible and kind in ("PRIVMSG", "NOTICE") and (sender is None or s == sender)
                   and (after is None or t > after) and (before is None or t < before) and (not word or t % 2)]
        found = store.search("a:alice", ["#a", "#b"], sender=sender, after_us=after, before_us=before,
                             text="odd" if word else None, limit=limit)
        assert times(found) == (matches[-limit:] if limit else [])
        if after is not None and before is not None:
            latest: dict[str, int] = {}
            for t, (target, kind, _) in sorted(rows.items()):
                inside = min(after, before) < t < max(after, before)
                if target in visible and kind in ("PRIVMSG", "NOTICE", "TAGMSG") and inside:
                    latest[target] = t
            active = sorted((t, target) for target, t in latest.items())
            chosen = (active[:limit] if after < before else active[-limit:]) if limit and after != before else []
            assert store.targets("a:alice", ["#a", "#b"], after, before, limit) == [(x, t) for t, x in chosen]
    finally:
        store.close()
