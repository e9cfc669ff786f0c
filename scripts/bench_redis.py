"""What one Redis core costs per channel message in the cluster's log (docs/scaling.md).

    .venv/bin/python scripts/bench_redis.py [--readers 3] [--batch 50] [--seconds 5]

Starts a redis-server (AOF on, appendfsync everysec, in a temporary directory), then appends
entries shaped like a hub's (one pickled batch of `--batch` channel-message requests of a
100-byte line each) from one writer with pipelining, while `--readers` readers (hosts) XREAD
every entry back, and reports entries and messages per second and Redis's own CPU per message.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cluster import ledger  # noqa: E402


def start_redis() -> tuple[subprocess.Popen, int, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="hubchat-bench-redis-")
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", directory,
                             "--appendonly", "yes", "--save", "", "--logfile", "redis.log"], stdout=subprocess.DEVNULL)
    return proc, port, directory


async def main(args: argparse.Namespace) -> None:
    import redis.asyncio as aioredis
    proc, port, directory = start_redis()
    try:
        url = f"redis://127.0.0.1:{port}/0"
        writer = aioredis.Redis.from_url(url)
        for _ in range(100):
            try:
                await writer.ping()
                break
            except Exception:
                await asyncio.sleep(0.05)
        line = b":sender!~u@host PRIVMSG #channel :" + b"x" * 60 + b"\r\n"
        items = [(1 << 32 | 1, n, False, ("cmsg", 1 << 32 | n, "#channel", line[:-4] + b"%03d\r\n" % n, f"abc-1-{n}", 0, ""))
                 for n in range(args.batch)]
        blob = ledger.encode(1, "1.bench", 1, items)
        stop = time.monotonic() + args.seconds
        read_counts = [0] * args.readers

        async def read(index: int) -> None:
            client = aioredis.Redis.from_url(url)
            last = "0-0"
            while time.monotonic() < stop:
                got = await client.xread({"bench": last}, count=1000, block=200)
                if got:
                    entries = got[0][1]
                    last = entries[-1][0]
                    read_counts[index] += len(entries)
            await client.aclose()

        redis_proc = psutil.Process(proc.pid)
        cpu0 = sum(redis_proc.cpu_times()[:2])
        started = time.monotonic()
        readers = [asyncio.create_task(read(i)) for i in range(args.readers)]
        written = 0
        while time.monotonic() < stop:
            pipe = writer.pipeline(transaction=False)
            for _ in range(16):
                pipe.xadd("bench", {b"d": blob})
            await pipe.execute()
            written += 16
        await asyncio.gather(*readers)
        elapsed = time.monotonic() - started
        cpu = sum(redis_proc.cpu_times()[:2]) - cpu0
        memory = (await writer.info("memory"))["used_memory"]
        messages = written * args.batch
        print(f"batch {args.batch} requests ({len(blob)} bytes an entry), {args.readers} readers: "
              f"{written / elapsed:.0f} entries/s = {messages / elapsed:.0f} messages/s appended, "
              f"each read {min(read_counts) / elapsed:.0f} entries/s; Redis CPU {cpu / elapsed * 100:.0f}% of a core, "
              f"{cpu / messages * 1e6:.2f} us per message; {memory / written:.0f} bytes of memory per entry")
        await writer.aclose()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=3)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args()))
