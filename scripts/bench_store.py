"""Benchmark of the history store (history.store.SQLiteStore) on a file database, no server.

1. Build: write --messages rows in batches of --batch records (3,000: what one 100 ms commit
   carries at 30,000 messages a second): ~100-byte lines in 10 channels, some private messages
   (stored once per party, so two rows), some JOIN/PART/QUIT. Rows/s and commit times.
2. Write runs: --runs runs of --run-batches batches each into the large database, rows/s per
   run, median and range.
3. Read latency, the database reopened: `latest(owner, target, 100)` for --queries random
   conversations (channels; any conversation), p50/p99/max; searches of several kinds.
4. Size: database bytes per stored row, the WAL checkpointed.
5. Prune: calls of prune() until a tenth of the rows are gone, by age, then by count.

    .venv/bin/python scripts/bench_store.py [--messages 1000000] [--db PATH] [--runs 5]

Without --db the database is in a temporary directory, removed at the end; --db PATH must not
exist yet (it is built there and kept).
"""
from __future__ import annotations

import argparse
import os
import platform
import random
import shlex
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from history import store as store_module  # noqa: E402
from history.store import Record, SQLiteStore  # noqa: E402

CHANNELS = [f"#chan{i}" for i in range(10)]
NICKS = [f"user{i}" for i in range(500)]
WORDS = ("the quick brown fox jumps over a lazy dog hello there world server channel message history "
         "search test alpha beta gamma delta lorem ipsum dolor sit amet consectetur adipiscing elit sed do "
         "eiusmod tempor incididunt ut labore et dolore magna aliqua zebra").split()
RARE_WORD = "zebra"  # appended to about 1 message in 1,000
PRIVATE_SHARE = 0.05  # of published messages; each is two rows
EVENT_SHARE = 0.05  # JOIN/PART/QUIT
FRIENDS = 3  # private messages go to one of a few partners each, as people talk


class Generator:
    """Records as the store reader would make them from the hub's log, in log order: times
    strictly increasing (about 30,000 a second), msgids as workers and the hub mint them."""

    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.time_us = 1_733_000_000_000_000
        self.seq = 0
        self.hosts = {n: f"~{n}@host-{self.rnd.randrange(1000)}.example.net" for n in NICKS}
        self.friends = {n: self.rnd.sample(NICKS, FRIENDS) for n in NICKS}

    def text(self) -> str:
        words = self.rnd.choices(WORDS[:-1], k=self.rnd.randint(7, 13))
        if self.rnd.random() < 0.001:
            words.append(RARE_WORD)
        return " ".join(words)

    def records(self, count: int) -> list[Record]:
        rnd, out = self.rnd, []
        while len(out) < count:
            self.time_us += rnd.randint(1, 65)
            self.seq += 1
            nick = rnd.choice(NICKS)
            source = f":{nick}!{self.hosts[nick]}"
            key = "a:" + nick
            msgid = f"9f3a1c{self.seq % 4:x}-{self.seq:x}"  # boot id, worker, counter
            tags = f"+draft/reply=9f3a1c0-{self.seq - 5:x}" if rnd.random() < 0.1 else ""
            r = rnd.random()
            if r < EVENT_SHARE:
                channel, kind = rnd.choice(CHANNELS), rnd.choice(("JOIN", "PART", "QUIT"))
                line = f"{source} {kind} {channel}" if kind != "QUIT" else f"{source} QUIT :Quit: bye"
                out.append(Record(f"5e7b20-{self.seq:x}", self.time_us, channel, "", kind, nick, key, line, ""))
            elif r < EVENT_SHARE + PRIVATE_SHARE:
                other = rnd.choice(self.friends[nick])
                line = f"{source} PRIVMSG {other} :{self.text()}"
                out.append(Record(msgid, self.time_us, other, key, "PRIVMSG", nick, key, line, tags))
                out.append(Record(msgid, self.time_us, nick, "a:" + other, "PRIVMSG", nick, key, line, tags))
            else:
                channel = rnd.choice(CHANNELS)
                line = f"{source} PRIVMSG {channel} :{self.text()}"
                out.append(Record(msgid, self.time_us, channel, "", "PRIVMSG", nick, key, line, tags))
        return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def write_batches(store: SQLiteStore, gen: Generator, messages: int, batch: int) -> tuple[float, list[float]]:
    """Write `messages` rows; returns the seconds in write() and each batch's ms."""
    spent, commits = 0.0, []
    left = messages
    while left > 0:
        records = gen.records(min(batch, left))
        start = time.perf_counter()
        store.write(records)
        took = time.perf_counter() - start
        spent += took
        commits.append(took * 1000)
        left -= len(records)
    return spent, commits


def machine() -> str:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"nproc {os.cpu_count()}, CPU {cpu}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="rows in the database built")
    parser.add_argument("--db", help="build the database here (must not exist) and keep it")
    parser.add_argument("--batch", type=int, default=3_000, help="records per write() (one commit)")
    parser.add_argument("--runs", type=int, default=5, help="write throughput runs after the build")
    parser.add_argument("--run-batches", type=int, default=30, help="batches per throughput run")
    parser.add_argument("--queries", type=int, default=1_000, help="latest() calls timed")
    parser.add_argument("--prune-calls", type=int, default=200, help="at most, for each rule")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print("machine:", machine())
    tmp = None
    if args.db:
        path = Path(args.db)
        if path.exists():
            sys.exit(f"{path} exists: give a new path")
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_store_")
        path = Path(tmp.name) / "history.db"
    gen = Generator(args.seed)
    store = SQLiteStore(str(path))

    spent, commits = write_batches(store, gen, args.messages, args.batch)
    tenth = max(1, len(commits) // 10)
    print(f"build: {args.messages:,} rows in {spent:.1f} s of write(), {args.messages / spent:,.0f} rows/s; "
          f"the first tenth {args.batch * tenth / sum(commits[:tenth]) * 1000:,.0f} rows/s, the last "
          f"{args.batch * tenth / sum(commits[-tenth:]) * 1000:,.0f}; commit of {args.batch}: "
          f"p50 {percentile(commits, 50):.1f} ms, p99 {percentile(commits, 99):.1f} ms, max {max(commits):.1f} ms")

    rates, run_commits = [], []
    for _ in range(args.runs):
        spent, commits = write_batches(store, gen, args.run_batches * args.batch, args.batch)
        rates.append(args.run_batches * args.batch / spent)
        run_commits += commits
    if rates:
        print(f"write runs: {args.runs} x {args.run_batches} batches of {args.batch} into the large database: "
              f"median {statistics.median(rates):,.0f} rows/s, range {min(rates):,.0f}..{max(rates):,.0f}; "
              f"commit p50 {percentile(run_commits, 50):.1f} ms, p99 {percentile(run_commits, 99):.1f} ms, "
              f"max {max(run_commits):.1f} ms")
    store.close()

    store = SQLiteStore(str(path))  # a cold SQLite cache (the OS cache is warm)
    db = store._db
    (rows,) = db.execute("SELECT count(*) FROM messages").fetchone()
    conversations = db.execute("SELECT owner, target FROM conversations").fetchall()
    channels = [c for c in conversations if c[0] == ""]
    rnd = random.Random(args.seed)
    for name, pool in (("channels", channels), ("any conversation", conversations)):
        latencies = []
        for _ in range(args.queries):
            owner, target = rnd.choice(pool)
            start = time.perf_counter()
            found = store.latest(owner, target, 100)
            latencies.append((time.perf_counter() - start) * 1000)
            assert found
        print(f"latest(..., 100) on {rows:,} rows, {name} ({len(pool)}): p50 {percentile(latencies, 50):.2f} ms, "
              f"p99 {percentile(latencies, 99):.2f} ms, max {max(latencies):.2f} ms over {args.queries}")
    owner = next(o for o, _ in conversations if o)
    for label, kwargs in ((f"a rare word ({RARE_WORD!r})", dict(text=RARE_WORD)),
                          ("a common word ('fox', in 1 message of 4)", dict(text="fox")),
                          ("two common words ('fox dog')", dict(text="fox dog")),
                          ("a sender ('user7')", dict(sender="user7")),
                          ("a sender and a common word", dict(sender="user7", text="fox")),
                          ("neither, only a time bound", dict(before_us=gen.time_us))):
        took = []
        for _ in range(5):
            start = time.perf_counter()
            store.search(owner, CHANNELS, limit=100, **kwargs)
            took.append((time.perf_counter() - start) * 1000)
        print(f"search for {label} in 10 channels and the private rows, limit 100: "
              f"median {statistics.median(took):.1f} ms")

    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    print(f"size: {size:,} bytes for {rows:,} rows: {size / rows:.0f} bytes per row")

    (oldest,) = db.execute("SELECT min(time_us) FROM messages").fetchone()
    (newest,) = db.execute("SELECT max(time_us) FROM messages").fetchone()
    for rule in ("age", "count"):  # each with about a tenth of the rows due
        if rule == "age":
            kwargs = dict(max_age_us=(newest - oldest) * 9 // 10, max_per_target=None)
        else:
            (largest,) = db.execute("SELECT max(rows) FROM conversations").fetchone()
            kwargs = dict(max_age_us=None, max_per_target=largest * 9 // 10)
        took, deleted = [], 0
        while len(took) < args.prune_calls:
            start = time.perf_counter()
            n = store.prune(now_us=newest, **kwargs)
            took.append((time.perf_counter() - start) * 1000)
            deleted += n
            if n < store_module.PRUNE_CHUNK:
                break
        print(f"prune by {rule}: calls {len(took)}, deleted {deleted:,} rows "
              f"(at most {store_module.PRUNE_CHUNK} a call): "
              f"median {statistics.median(took):.1f} ms, max {max(took):.1f} ms a call, "
              f"{sum(took) / max(deleted, 1) * 1000:.1f} us a row")
    store.close()
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
