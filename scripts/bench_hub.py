"""Micro-benchmark of the hub's channel-message handling, with no processes: a `Hub` whose links
are fakes that only count what they are sent. It times `Hub._handle` on frames of channel
messages (the hot path: decide, stamp, route one item to each worker with members), best of
several repeats, and prints microseconds per message.

    .venv/bin/python scripts/bench_hub.py [--workers 4] [--members 100] [--frame 200] [--repeat 7] [--no-history]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import config  # noqa: E402
from ipc import control, link  # noqa: E402
from hub.hub import Hub  # noqa: E402


class FakeLink:
    """What the hub needs of a LinkProtocol: items are counted, never written."""
    closed = False
    written = True

    def __init__(self) -> None:
        self.count = 0

    def send(self, item: tuple) -> None:
        self.count += 1

    def flush(self) -> None:
        pass

    def set_reading(self, reading: bool) -> None:
        pass


def build(workers: int, members: int, history: bool = True) -> tuple[Hub, int]:
    ours, theirs = control.pair()
    hub = Hub(config.load(env={} if history else {"HUBCHAT_HISTORY_ENABLED": "false"}), theirs)
    for wid in range(1, workers + 1):
        hub.links[wid] = FakeLink()  # type: ignore[assignment]
    sender = 0
    for n in range(members):
        wid = 1 + n % workers
        cid = wid << 32 | (n + 1)
        hub._handle(wid, [(link.R_CONNECT, cid, "127.0.0.1"),
                          (link.R_REGISTER, cid, f"u{n}", "~u", "h", "U"),
                          (link.R_JOIN, cid, "#bench", "")])
        sender = sender or cid
    return hub, sender


def message(sender: int, n: int, new_shape: bool) -> tuple:
    line = b":u0!~u@h PRIVMSG #bench :" + b"x" * 60 + b"\r\n"
    if new_shape:  # the origin id only: the hub stamps msgid and time
        return (link.R_CHANMSG, sender, "#bench", line, f"b-{n:x}", 0, "")
    return (link.R_CHANMSG, sender, "#bench", line, f"b-{n:x}", time.time(), 0, "")


async def main(args: argparse.Namespace) -> None:
    hub, sender = build(args.workers, args.members, args.history)
    new_shape = hasattr(hub, "policy")
    frames = [[message(sender, f * args.frame + i, new_shape) for i in range(args.frame)]
              for f in range(args.frames)]
    wid = sender >> 32
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        for frame in frames:
            hub._handle(wid, frame)
        best = min(best, time.perf_counter() - started)
    sent = sum(p.count for p in hub.links.values())
    total = args.frames * args.frame
    print(f"{'new' if new_shape else 'old'} hub: {best / total * 1e6:.3f} us per channel message "
          f"(best of {args.repeat}; {total} messages, {args.workers} worker links, {args.members} members; "
          f"{sent} items queued in all)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--frame", type=int, default=200)
    parser.add_argument("--frames", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--no-history", dest="history", action="store_false",
                        help="a hub without the history store's reader of the log")
    asyncio.run(main(parser.parse_args()))
