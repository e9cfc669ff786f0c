"""CHATHISTORY LATEST latency on a large database while the server carries load.

Fills a data directory with `--messages` stored messages (10 channels, as the store writes
them), starts the server on it (history on), starts soak row 2's load against it
(scripts/soak.sh --target: 100 members, 30,000 msg/s), and meanwhile one client in one of
the filled channels asks `CHATHISTORY LATEST <channel> * 100` again and again, one at a
time, timing each from the request to the end of its batch. Prints p50/p99/max.

    .venv/bin/python scripts/bench_history.py [--messages 1000000] [--queries 1000] [--workers 2]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from history.service import DATABASE  # noqa: E402
from history.store import Record, SQLiteStore  # noqa: E402

CHANNELS = 10


def fill(path: str, count: int) -> float:
    store = SQLiteStore(path)
    started = time.perf_counter()
    t0 = int((time.time() - 86400) * 1_000_000)  # a day ago, one message every few ms up to now
    step = max(1, 86_400_000_000 // count)
    batch = []
    for i in range(count):
        channel = f"#fill{i % CHANNELS}"
        nick = f"user{i % 97}"
        batch.append(Record(f"fill-{i:x}", t0 + i * step, channel, "", "PRIVMSG", nick, f"~{i % 97:x}.1",
                            f":{nick}!~u@127.0.0.1 PRIVMSG {channel} :message number {i} with some words in it",
                            ""))
        if len(batch) == 3000:
            store.write(batch)
            batch = []
    store.write(batch)
    store.close()
    return time.perf_counter() - started


class Asker:
    def __init__(self, port: int, nick: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.send(f"CAP REQ :batch server-time message-tags draft/chathistory\r\nNICK {nick}\r\n"
                  f"USER u 0 * :bench\r\nCAP END\r\n")
        self.until(b" 376 ")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def until(self, needle: bytes) -> bytes:
        while needle not in self.buf:
            data = self.sock.recv(1 << 20)
            if not data:
                raise SystemExit("bench_history: the server closed the connection")
            self.buf += data
            for line in self.buf.split(b"\r\n")[:-1]:
                if line.startswith(b"PING "):
                    self.send("PONG " + line[5:].decode() + "\r\n")
        head, _, self.buf = self.buf.partition(needle)
        rest, sep, self.buf = self.buf.partition(b"\r\n")
        return head + needle + rest

    def latest(self, channel: str) -> int:
        self.send(f"CHATHISTORY LATEST {channel} * 100\r\n")
        opening = self.until(b" BATCH +")
        ref = re.search(rb"BATCH \+(\S+)", opening).group(1)
        block = self.until(b" BATCH -" + ref)
        return block.count(b" PRIVMSG ")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-load", dest="load", action="store_false", help="ask with no soak load running")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="hubchat-bench-")
    server = load = None
    try:
        took = fill(os.path.join(data_dir, DATABASE), args.messages)
        size = sum(f.stat().st_size for f in Path(data_dir).iterdir())
        print(f"bench_history: filled {args.messages} messages in {took:.1f}s; "
              f"{size / args.messages:.0f} bytes per message on disk")
        server = subprocess.Popen([sys.executable, "-m", "hub", "--workers", str(args.workers), "--port", "0",
                                   "--web-port", "0",
                                   "--no-flood-control", "--log-level", "warning", "--data-dir", data_dir],
                                  cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "HUBCHAT_LIMITS_MAX_CLIENTS": "200000"})
        port = int(re.search(r"listening on \S+:(\d+)", server.stdout.readline()).group(1))
        asker = Asker(port, "asker")
        asker.send("JOIN #fill0\r\n")
        asker.until(b" 366 ")
        if args.load:
            load = subprocess.Popen([sys.executable, "scripts/soak.py", "--target", f"127.0.0.1:{port}",
                                     "--clients", "100", "--channels", "1", "--senders", "10", "--rate", "30000",
                                     "--duration", "30", "--sample", "2", "--out", os.path.join(data_dir, "soak")],
                                    cwd=ROOT, stdout=subprocess.PIPE, text=True)
            while "registered and joined" not in (load.stdout.readline() or "registered and joined"):
                pass
        times = []
        for _ in range(args.queries):
            started = time.perf_counter()
            got = asker.latest("#fill0")
            times.append((time.perf_counter() - started) * 1000)
            assert got == 100, f"LATEST 100 returned {got} messages"
        times.sort()
        print(f"bench_history: CHATHISTORY LATEST 100 x {args.queries} on {args.messages} messages"
              f"{' under soak row 2 load' if args.load else ''}: p50 {times[len(times) // 2]:.2f} ms, "
              f"p99 {times[int(len(times) * 0.99)]:.2f} ms, max {times[-1]:.2f} ms "
              f"(machine: {os.cpu_count()} CPUs)")
        if load is not None:
            out, _ = load.communicate(timeout=120)
            print("bench_history: the load: " + next((line for line in out.splitlines() if "latency p50" in line),
                                                      "no summary"))
    finally:
        for proc in (load, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
