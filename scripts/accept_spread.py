"""Measure how evenly the workers share incoming connections.

Starts `python -m hub` on a free loopback port, opens connections in bursts, and asks psutil
which worker process holds each one. Prints one line per run and the worst ratio to the fair
share. Usage: python scripts/accept_spread.py [--workers 4] [--connections 400] [--bursts 4] [--runs 5]
"""
from __future__ import annotations

import argparse
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def one_run(workers: int, connections: int, bursts: int) -> list[int]:
    proc = subprocess.Popen([sys.executable, "-m", "hub", "--workers", str(workers), "--port", "0", "--web-port", "0",
                             "--log-level", "warning"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(re.search(r":(\d+) with", line).group(1))
        pids = [int(p) for p in re.search(r"workers ([\d ]+)\)", line).group(1).split()]
        socks = []
        for _ in range(bursts):
            socks += [socket.create_connection(("127.0.0.1", port)) for _ in range(connections // bursts)]
            time.sleep(0.05)
        ports = {s.getsockname()[1] for s in socks}
        deadline = time.monotonic() + 10
        while True:
            counts = Counter()
            for pid in pids:
                for conn in psutil.Process(pid).net_connections("tcp"):
                    if conn.raddr and conn.raddr.port in ports:
                        counts[pid] += 1
            if sum(counts.values()) == len(socks) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for s in socks:
            s.close()
        return [counts[p] for p in pids]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=400)
    parser.add_argument("--bursts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    fair = args.connections / args.workers
    worst = 1.0
    for run in range(args.runs):
        counts = one_run(args.workers, args.connections, args.bursts)
        worst = max(worst, max(abs(c - fair) / fair for c in counts) + 1)
        print(f"run {run + 1}: {counts} (fair share {fair:.0f}; min {min(counts) / fair:.2f}x, "
              f"max {max(counts) / fair:.2f}x)")
    print(f"worst deviation from the fair share over {args.runs} runs: {worst - 1:.0%}")


if __name__ == "__main__":
    main()
