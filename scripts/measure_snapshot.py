"""How long a clustered hub's snapshot (`ClusteredHub._snapshot`) would hold up its loop.

Builds the hub's state through the policy, as the stream would (users spread over workers of
two hosts, each in a few channels), then times the pickling (done in a forked child, so only
the fork is the loop's), the loading a starting hub does, and the fork. Run: .venv/bin/python scripts/measure_snapshot.py --users 10000 --channels 2000
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys
import time
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chatstate.state import HOST_SHIFT, State  # noqa: E402
from cluster.ledger import Ledger  # noqa: E402
from hub.policy import Policy  # noqa: E402
from ipc import link  # noqa: E402


def build(users: int, channels: int, per_user: int) -> tuple[Policy, Ledger]:
    limits = SimpleNamespace(chanlimit=max(per_user, 10), max_clients=users * 2, max_clients_per_ip=users * 2,
                             exempt_loopback=True, nicklen=30)
    policy = Policy(State(), limits, history=True)
    now = 1_700_000_000.0
    for n in range(users):
        host, worker = 1 + n % 2, 1 + n % 4
        cid = (host << HOST_SHIFT | worker) << 32 | n
        policy.decide((link.R_CONNECT, cid, f"10.0.{n // 256 % 256}.{n % 256}"), now)
        policy.decide((link.R_REGISTER, cid, f"user{n}", "u", f"host{n}.example", f"User {n}", ""), now)
        for k in range(per_user):
            policy.decide((link.R_JOIN, cid, f"#chan{(n * 7 + k * 131) % channels}", ""), now)
    for c in range(channels):
        chan = policy.state.channels.get(f"#chan{c}")
        if chan is not None:
            chan.topic = f"the topic of channel {c}, a sentence of some length"
    return policy, Ledger()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=2_000)
    parser.add_argument("--per-user", type=int, default=5, help="channels each user joins")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    policy, ledger = build(args.users, args.channels, args.per_user)
    data = {"state": policy.state, "connections": policy.connections, "dormant": policy.dormant,
            "throttle": policy.throttle, "last_us": 0, "ledger": ledger}
    dumps, loads = [], []
    for _ in range(args.rounds):
        start = time.perf_counter()
        blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        dumps.append(time.perf_counter() - start)
        start = time.perf_counter()
        pickle.loads(blob)
        loads.append(time.perf_counter() - start)
    forks = []
    for _ in range(args.rounds):  # what the hub's loop pays now: the fork (the child pickles, cluster/bridge.py)
        start = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        forks.append(time.perf_counter() - start)
        os.waitpid(pid, 0)
    members = sum(len(c.members) for c in policy.state.channels.values())
    print(f"{len(policy.state.users)} users, {len(policy.state.channels)} channels, {members} memberships: "
          f"snapshot {len(blob) / 1e6:.1f} MB; pickling min {min(dumps) * 1000:.0f} ms, "
          f"median {sorted(dumps)[len(dumps) // 2] * 1000:.0f} ms; loading min {min(loads) * 1000:.0f} ms; "
          f"fork min {min(forks) * 1000:.2f} ms, max {max(forks) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
