"""What SQLite's parts of storing a message cost: CPU per row of 3,000-row commits, into tables
with one more piece each time, against the store as it is (history.store.SQLiteStore).

    .venv/bin/python scripts/measure_row_cost.py [--rows 200000] [--commits 40]

Each variant first fills its database with --rows rows (as bench_store.py's generator makes
them), then times --commits commits of 3,000 more (process CPU time, mean per row, so the
commits that checkpoint or merge count too). The floor a store with these lookups cannot go
under, in docs/performance.md ("What history costs", fourth round).
"""
from __future__ import annotations

import argparse
import marshal
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_store import Generator  # noqa: E402
from history.store import COLUMNS, SQLiteStore  # noqa: E402

BATCH = 3_000
TABLE = ("CREATE TABLE messages (id INTEGER PRIMARY KEY, msgid TEXT, time_us INTEGER, target TEXT, owner TEXT, "
         "kind TEXT, sender TEXT, author TEXT, line TEXT, tags TEXT);")
BY_TIME = "CREATE UNIQUE INDEX by_time ON messages (owner, target, time_us);"
BY_MSGID = "CREATE UNIQUE INDEX by_msgid ON messages (msgid, owner, target);"
INSERT = f"INSERT OR IGNORE INTO messages ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


def rows_table(schema: str):
    def open_(path: str):
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(schema)

        def write(records) -> None:
            db.execute("BEGIN")
            db.executemany(INSERT, records)
            db.execute("COMMIT")
        return write
    return open_


def blob_table(path: str):
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("CREATE TABLE blocks (id INTEGER PRIMARY KEY, data BLOB)")

    def write(records) -> None:
        db.execute("INSERT INTO blocks (data) VALUES (?)", (marshal.dumps([tuple(r) for r in records]),))
    return write


def the_store(search: bool):
    def open_(path: str):
        store = SQLiteStore(path)
        store.set_search(search)
        return store.write
    return open_


VARIANTS = {
    "one blob per commit": blob_table,
    "rows, no index": rows_table(TABLE),
    "rows + time index": rows_table(TABLE + BY_TIME),
    "rows + time and msgid indexes": rows_table(TABLE + BY_TIME + BY_MSGID),
    "the store, history.search off": the_store(False),
    "the store (words indexed)": the_store(True),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows in each database before timing")
    parser.add_argument("--commits", type=int, default=40, help="commits of 3,000 rows timed")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        for number, (name, opener) in enumerate(VARIANTS.items()):
            generator = Generator(1)  # the same rows for every variant
            write = opener(os.path.join(directory, f"{number}.db"))
            for _ in range(args.rows // BATCH):
                write(generator.records(BATCH))
            timed = [generator.records(BATCH) for _ in range(args.commits)]
            started = time.process_time()
            for records in timed:
                write(records)
            per_row = (time.process_time() - started) / (args.commits * BATCH) * 1e6
            print(f"{name}: {per_row:.2f} us a row", flush=True)


if __name__ == "__main__":
    main()
