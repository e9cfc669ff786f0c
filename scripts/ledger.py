"""Soak-run bookkeeping, with no I/O: what each client received, checked against what was sent.

Every soak message carries its sender's sequence number. A receiver expects each sender's
numbers in order, once each: a number below the next expected one is a duplicate, one above
it means something was skipped (lost, or reordered). Memory stays O(senders) per receiver
however long the run. Receivers that send nothing in a channel all see the whole channel, so
their running hash of the arrival order must be equal: that checks that every member saw the
same order. For runs too large to follow every line, members outside the sample are only
counted: each must still receive exactly what the others sent.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass
class Ledger:
    channel: str
    nick: str
    sends: bool = False
    counted_only: bool = False  # large runs: only the number of deliveries is kept
    next_seq: dict[str, int] = field(default_factory=dict)  # sender -> next expected number
    received: int = 0
    duplicates: int = 0
    gaps: int = 0
    order: "hashlib._Hash" = field(default_factory=lambda: hashlib.blake2b(digest_size=12))

    def record(self, sender: str, seq: int) -> None:
        self.received += 1
        expected = self.next_seq.get(sender, 0)
        if seq < expected:
            self.duplicates += 1
            return
        if seq > expected:
            self.gaps += 1
        self.next_seq[sender] = seq + 1
        self.order.update(f"{sender}:{seq};".encode())

    def summary(self) -> dict:
        return {"channel": self.channel, "nick": self.nick, "sends": self.sends,
                "counted_only": self.counted_only, "next": dict(self.next_seq),
                "received": self.received, "duplicates": self.duplicates, "gaps": self.gaps,
                "order": self.order.hexdigest()}


def verify(receivers: list[dict], sent: dict[str, int], channel_of: dict[str, str],
           disconnected: list[str]) -> list[str]:
    """Plain statements of everything that went wrong, causes (disconnections) first; empty when
    nothing did."""
    problems = [f"{nick} was disconnected" for nick in disconnected]
    senders_in: dict[str, list[str]] = {}
    for sender, channel in channel_of.items():
        if sender in sent:
            senders_in.setdefault(channel, []).append(sender)
    orders: dict[str, dict[str, list[str]]] = {}
    for r in receivers:
        if r.get("counted_only"):
            expected = sum(sent[s] for s in senders_in.get(r["channel"], []) if s != r["nick"])
            if r["received"] != expected:
                what = "lost" if r["received"] < expected else "extra (duplicates)"
                problems.append(f"{r['nick']} in {r['channel']} received {r['received']} of {expected} messages: "
                                f"{abs(expected - r['received'])} {what}")
            continue
        for sender in senders_in.get(r["channel"], []):
            if sender == r["nick"]:
                continue
            got = r["next"].get(sender, 0)
            if got != sent[sender]:
                problems.append(f"{r['nick']} in {r['channel']} got {sender}'s messages up to {got} of "
                                f"{sent[sender]}: {sent[sender] - got} lost")
        if r["duplicates"]:
            problems.append(f"{r['nick']} received {r['duplicates']} duplicate message(s)")
        if r["gaps"]:
            problems.append(f"{r['nick']} saw {r['gaps']} message(s) out of per-sender order")
        if not r["sends"]:
            orders.setdefault(r["channel"], {}).setdefault(r["order"], []).append(r["nick"])
    for channel, variants in sorted(orders.items()):
        if len(variants) > 1:
            groups = "; ".join(f"{len(nicks)} saw order {digest[:8]}" for digest, nicks in variants.items())
            problems.append(f"members of {channel} saw different orders: {groups}")
    return problems
