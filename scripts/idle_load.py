"""A load at idle priority (SCHED_IDLE) beside a soak run: what does work that only uses idle
time cost the clients on this machine?

    .venv/bin/python scripts/idle_load.py --kind cpu|memory [--share 0.26] [--seconds 60]

`cpu` is a pure Python loop (a working set of a few KB); `memory` copies 1 MiB blocks around a
64 MiB buffer, streaming through the caches as a database's pages would. Either holds its CPU
at `--share` of one core (its own CPU time against the wall clock, checked after every block),
so the two differ only in the memory they touch. `scripts/soak.sh --idle-load KIND[:SHARE]`
runs one for the length of the run (docs/performance.md, "What history costs").
"""
from __future__ import annotations

import argparse
import os
import time

BUFFER = 64 << 20
BLOCK = 1 << 20


def run(kind: str, share: float, seconds: float) -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)
    buffer = memoryview(bytearray(BUFFER if kind == "memory" else BLOCK))
    started_wall, started_cpu = time.monotonic(), time.process_time()
    offset = 0
    while (elapsed := time.monotonic() - started_wall) < seconds:
        if (time.process_time() - started_cpu) > share * elapsed:
            time.sleep(0.001)
            continue
        if kind == "memory":
            source = (offset + 7 * BLOCK) % (BUFFER - BLOCK)
            buffer[offset:offset + BLOCK] = buffer[source:source + BLOCK]
            offset = (offset + BLOCK) % (BUFFER - BLOCK)
        else:
            total = 0
            for i in range(5_000):
                total += i


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("cpu", "memory"), required=True)
    parser.add_argument("--share", type=float, default=0.26, help="of one core (the store's writer at row 2: 0.26)")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    run(args.kind, args.share, args.seconds)


if __name__ == "__main__":
    main()
