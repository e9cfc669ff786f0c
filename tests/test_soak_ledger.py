"""The soak run's bookkeeping on synthetic input: loss, duplicates, reordering, order mismatch."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from ledger import Ledger, verify  # noqa: E402

CHANNEL_OF = {"s1": "#a", "s2": "#a", "r1": "#a", "r2": "#a"}
SENT = {"s1": 3, "s2": 2}


def run(deliveries):
    """deliveries: receiver nick -> list of (sender, seq) in arrival order."""
    summaries = []
    for nick, arrivals in deliveries.items():
        ledger = Ledger("#a", nick, sends=nick in SENT)
        for sender, seq in arrivals:
            ledger.record(sender, seq)
        summaries.append(ledger.summary())
    return verify(summaries, SENT, CHANNEL_OF, [])


PERFECT = [("s1", 0), ("s2", 0), ("s1", 1), ("s1", 2), ("s2", 1)]


def test_a_perfect_run_has_no_problems():
    assert run({"r1": PERFECT, "r2": PERFECT,
                "s1": [a for a in PERFECT if a[0] != "s1"], "s2": [a for a in PERFECT if a[0] != "s2"]}) == []


def test_loss_is_reported_with_the_count():
    problems = run({"r1": PERFECT[:-1], "r2": PERFECT})
    assert any("r1" in p and "1 lost" in p for p in problems)


def test_duplicates_are_reported():
    problems = run({"r1": PERFECT + [("s1", 1)], "r2": PERFECT})
    assert any("r1 received 1 duplicate" in p for p in problems)


def test_reordering_within_a_sender_is_reported():
    swapped = [("s1", 1), ("s1", 0), ("s1", 2), ("s2", 0), ("s2", 1)]
    problems = run({"r1": swapped, "r2": PERFECT})
    assert any("out of per-sender order" in p for p in problems)


def test_members_seeing_different_interleavings_is_reported():
    other = [("s2", 0), ("s1", 0), ("s1", 1), ("s1", 2), ("s2", 1)]  # per-sender order intact
    problems = run({"r1": PERFECT, "r2": other})
    assert len(problems) == 1 and problems[0].startswith("members of #a saw different orders")


def test_disconnections_are_reported():
    assert verify([], SENT, CHANNEL_OF, ["r1"]) == ["r1 was disconnected"]


def test_counted_only_members_must_receive_exactly_what_the_others_sent():
    exact, short, extra = (Ledger("#a", n, counted_only=True) for n in ("c1", "c2", "c3"))
    exact.received, short.received, extra.received = 5, 4, 6
    problems = verify([exact.summary(), short.summary(), extra.summary()], SENT, CHANNEL_OF, [])
    assert problems == ["c2 in #a received 4 of 5 messages: 1 lost",
                        "c3 in #a received 6 of 5 messages: 1 extra (duplicates)"]
