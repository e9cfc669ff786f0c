"""Alternating pairs of soak runs, for old-versus-new comparisons on a noisy machine.

    .venv/bin/python scripts/soak_pairs.py --pairs 4 A=DIR_A B=DIR_B -- <scripts/soak.sh arguments>

Runs `scripts/soak.sh <arguments> --out ...` from each checkout in turn (A, B, A, B, ...; more
than two sides take turns the same way). A side written `LABEL=@ARGS` instead runs from this
checkout with ARGS added, e.g. `on=@ off=@--no-history` compares history on and off; a word
`NAME=VALUE` among ARGS is set in the server's environment instead (a setting:
`nosearch=@HUBCHAT_HISTORY_SEARCH=false`). Prints each run's p50, p99 and the hub's and the
workers' mean CPU over the seconds the load was at full rate, then the medians and ranges.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]


def summary(text: str) -> dict:
    rate = float(re.search(r"(\d+(?:\.\d+)?) msg/s for", text).group(1))
    latency = re.search(r"latency p50 ([\d.]+)ms p99 ([\d.]+)ms", text)
    hub, workers, store = [], [], []
    for line in text.splitlines():
        sent = re.search(r"sent (\d+)/s", line)
        if not sent or int(sent.group(1)) < 0.9 * rate:
            continue
        hub += [int(x) for x in re.findall(r"hub \d+: (\d+)%", line)]
        store += [sum(int(x) for x in re.findall(r"(?:store|writer) \d+: (\d+)%", line))] if "store " in line else []
        shares = [int(x) for x in re.findall(r"worker \d+: (\d+)%", line)]
        if shares:
            workers.append(sum(shares))
    mean = lambda xs: round(statistics.mean(xs), 1) if xs else None  # noqa: E731
    return {"p50": float(latency.group(1)) if latency else None, "p99": float(latency.group(2)) if latency else None,
            "hub": mean(hub), "workers": mean(workers), "store": mean(store), "passed": "soak: passed" in text}


class Side(NamedTuple):
    label: str
    checkout: Path
    extra: list[str]  # soak.sh arguments added
    env: dict[str, str]  # set in the soak's (so the server's) environment


def side_of(text: str) -> Side:
    """`LABEL=DIR`, or `LABEL=@ARGS`: this checkout, ARGS's `NAME=VALUE` words to the environment
    and the rest to soak.sh."""
    label, _, where = text.partition("=")
    if not where.startswith("@"):
        return Side(label, Path(where), [], {})
    words = where[1:].split()
    setting = [w for w in words if "=" in w and not w.startswith("-")]
    return Side(label, ROOT, [w for w in words if w not in setting], dict(w.split("=", 1) for w in setting))


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """This script's words, and soak.sh's after `--` (argparse would hand them to the sides)."""
    cut = argv.index("--") if "--" in argv else len(argv)
    return argv[:cut], argv[cut + 1:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("sides", nargs="+", help="LABEL=DIR, or LABEL=@ARGS for this checkout with ARGS added; "
                                                 "then -- and scripts/soak.sh's arguments")
    own, soak = split_argv(sys.argv[1:])
    args = parser.parse_args(own)
    if len(args.sides) < 2:
        parser.error("at least two sides")
    sides = [side_of(text) for text in args.sides]
    results: dict[str, list[dict]] = {label: [] for label, _, _, _ in sides}
    for i in range(args.pairs):
        for label, checkout, extra, env in sides:
            with tempfile.TemporaryDirectory() as out:
                run = subprocess.run(["bash", "scripts/soak.sh", *soak, *extra, "--out", out], cwd=checkout,
                                     capture_output=True, text=True, env={**os.environ, **env})
            got = summary(run.stdout)
            results[label].append(got)
            print(f"{label} {i + 1}: " + " ".join(f"{k} {v}" for k, v in got.items()), flush=True)
    for label, runs in results.items():
        cells = []
        for key in ("p99", "p50", "hub", "workers", "store"):
            values = [r[key] for r in runs if r[key] is not None]
            if values:
                cells.append(f"{key} {statistics.median(values):g} ({min(values):g}-{max(values):g})")
        print(f"{label}: " + ", ".join(cells) + f"; {sum(r['passed'] for r in runs)}/{len(runs)} passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
