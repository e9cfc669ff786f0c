"""The cluster's deterministic part (cluster/ledger.py), on plain data: what every host decides
from the same stream entries, with no Redis and no clock."""
from __future__ import annotations

import pickle
import random
from types import SimpleNamespace

import pytest

from chatstate.state import E_QUIT, HOST_SHIFT, State
from cluster import ledger
from cluster.ledger import C_HOST_GONE, C_HOST_UP, C_SEED, C_WORKER_LOST, Ledger
from hub.policy import Policy, Reply
from ipc import link

LIMITS = SimpleNamespace(chanlimit=10, max_clients=100, max_clients_per_ip=50, exempt_loopback=True, nicklen=30)


def cid(host: int, n: int, worker: int = 1) -> int:
    return (host << HOST_SHIFT | worker) << 32 | n


def host(number: int) -> "SimpleNamespace":
    """One host's hub, as far as deciding goes: its own state, policy and ledger."""
    policy = Policy(State(), LIMITS, history=False)
    return SimpleNamespace(policy=policy, ledger=Ledger())


def entry(origin_host: int, token: str, seq: int, *requests: tuple) -> tuple:
    return (origin_host, token, seq, [(None if r[0] in ledger.CONTROL else 1, i + 1, False, r)
                                      for i, r in enumerate(requests)])


def connect_and_register(c: int, nick: str) -> tuple[tuple, tuple]:
    return (link.R_CONNECT, c, "10.0.0.1"), (link.R_REGISTER, c, nick, "u", "h", "real")


def stream_of_two_hosts() -> list[tuple[str, tuple]]:
    """Both hosts up, each registering a client; both claim the nick "same" at once."""
    a1, b1, a2, b2 = cid(1, 1), cid(2, 1), cid(1, 2), cid(2, 2)
    return [
        ("1000-0", entry(1, "1.a", 1, (C_HOST_UP, 1, "ha", "boot-a"))),
        ("1000-1", entry(2, "2.b", 1, (C_HOST_UP, 2, "hb", "boot-b"))),
        ("1001-0", entry(1, "1.a", 2, *connect_and_register(a1, "alice"), (link.R_CONNECT, a2, "10.0.0.1"))),
        ("1001-1", entry(2, "2.b", 2, *connect_and_register(b1, "bob"), (link.R_CONNECT, b2, "10.0.0.1"))),
        ("1002-0", entry(2, "2.b", 3, (link.R_REGISTER, b2, "same", "u", "h", "r"))),
        ("1002-1", entry(1, "1.a", 3, (link.R_REGISTER, a2, "same", "u", "h", "r"))),
        ("1003-0", entry(1, "1.a", 4, (link.R_JOIN, a1, "#c"), (link.R_JOIN, b1, "#c"))),
    ]


def run(h, stream) -> list:
    out = []
    for eid, e in stream:
        decided = h.ledger.decide(h.policy, eid, e)
        if decided is not None:
            out.extend(outputs for _, _, _, outputs in decided)
    return out


def test_every_host_decides_the_same_from_the_same_entries_and_the_first_claim_wins():
    a, b = host(1), host(2)
    out_a, out_b = run(a, stream_of_two_hosts()), run(b, stream_of_two_hosts())
    assert out_a == out_b
    assert a.policy.state.snapshot() == b.policy.state.snapshot()
    state = a.policy.state
    assert state.nicks["same"] == cid(2, 2)  # the first entry in the stream, whichever host it came from
    refused = [o for outs in out_a for o in outs if type(o) is Reply and o.item[0] == link.D_NICK_REFUSED]
    assert [r.cid for r in refused] == [cid(1, 2)]


def test_the_time_of_a_decision_is_the_entry_s_not_any_host_s_clock():
    a = host(1)
    run(a, stream_of_two_hosts())
    assert a.policy.state.users[cid(1, 1)].signon == 1.001
    assert a.policy.state.users[cid(2, 2)].signon == 1.002


def test_a_copy_of_an_entry_is_dropped_by_its_origin_and_number():
    a = host(1)
    stream = stream_of_two_hosts()
    resent = stream[:4] + [("1001-5", stream[2][1])] + stream[4:]  # sent again after a lost reply
    assert run(a, resent) == run(host(1), stream)
    assert a.ledger.decide(a.policy, "9999-0", stream[-1][1]) is None


def test_host_gone_quits_its_users_once_and_never_after_the_host_is_back():
    a = host(1)
    run(a, stream_of_two_hosts())
    epoch = a.ledger.hosts[2][2]
    gone = ("2000-0", entry(1, "1.a", 5, (C_HOST_GONE, 2, epoch)))
    [(_, _, _, outputs)] = a.ledger.decide(a.policy, *gone)
    quits = [o for o in outputs if o[0] == E_QUIT]
    assert sorted(q[1] for q in quits) == [cid(2, 1), cid(2, 2)]
    assert "bob" not in a.policy.state.nicks and 2 not in a.ledger.hosts
    assert cid(2, 1) not in a.policy.connections
    # A second notice of the same lapse (another hub saw it too) changes nothing.
    [(_, _, _, outputs)] = a.ledger.decide(a.policy, "2000-1", entry(1, "1.c", 1, (C_HOST_GONE, 2, epoch)))
    assert outputs == []
    # The host rejoins (a new epoch) and registers again; a late notice of the old epoch is a no-op.
    run(a, [("2001-0", entry(2, "2.b", 4, (C_HOST_UP, 2, "hb", "boot-b"))),
            ("2001-1", entry(2, "2.b", 5, *connect_and_register(cid(2, 3), "bob")))])
    [(_, _, _, outputs)] = a.ledger.decide(a.policy, "2002-0", entry(1, "1.d", 1, (C_HOST_GONE, 2, epoch)))
    assert outputs == [] and a.policy.state.nicks["bob"] == cid(2, 3)


def test_a_host_gone_refuses_its_connections_that_never_registered():
    a = host(1)
    run(a, [("1-0", entry(1, "1.a", 1, (C_HOST_UP, 1, "ha", "x"))),
            ("1-1", entry(2, "2.b", 1, (C_HOST_UP, 2, "hb", "y"), (link.R_CONNECT, cid(2, 9), "10.0.0.9")))])
    [(_, _, _, outputs)] = a.ledger.decide(a.policy, "2-0", entry(1, "1.a", 2, (C_HOST_GONE, 2, (1, 1))))
    assert [o.item[0] for o in outputs if type(o) is Reply] == [link.D_REFUSE]
    assert len(a.policy.connections) == 0


def test_a_new_incarnation_of_a_host_quits_the_last_one_s_users_first():
    a = host(1)
    run(a, stream_of_two_hosts())
    [(_, _, _, outputs)] = a.ledger.decide(a.policy, "3000-0", entry(2, "2.new", 1, (C_HOST_UP, 2, "hb", "boot-2")))
    assert sorted(o[1] for o in outputs if o[0] == E_QUIT) == [cid(2, 1), cid(2, 2)]
    # The same incarnation's hub restarting (same boot) changes nothing.
    [(_, _, _, outputs)] = a.ledger.decide(a.policy, "3000-1", entry(2, "2.again", 1, (C_HOST_UP, 2, "hb", "boot-2")))
    assert outputs == []


def test_a_lost_worker_quits_its_clients_on_every_host():
    a, b = host(1), host(2)
    stream = stream_of_two_hosts() + [("4000-0", entry(2, "2.b", 4, (C_WORKER_LOST, 2 << HOST_SHIFT | 1)))]
    assert run(a, stream) == run(b, stream)
    assert set(a.policy.state.nicks) == {"alice"}  # bob and "same" were on the lost worker


def test_only_the_first_seed_applies():
    a = host(1)
    record = {"name": "Acc", "hash": "x"}
    run(a, [("1-0", entry(1, "1.a", 1, (C_SEED, {"acc": record}, {}))),
            ("1-1", entry(2, "2.b", 1, (C_SEED, {"other": record}, {})))])
    assert set(a.policy.state.accounts) == {"acc"}


def test_a_hub_that_fails_on_a_request_fails_the_same_everywhere_and_goes_on():
    a = host(1)
    decided = a.ledger.decide(a.policy, "1-0", entry(1, "1.a", 1, ("no such request",), (C_HOST_UP, 1, "ha", "x")))
    assert [outputs for *_, outputs in decided] == [[], []]
    assert len(a.ledger.errors) == 1 and 1 in a.ledger.hosts


@pytest.mark.parametrize("blob", [b"", b"garbage", pickle.dumps("text"), pickle.dumps((1, 2, 3, 4))])
def test_anything_in_the_stream_that_is_not_an_entry_is_refused_not_raised(blob):
    with pytest.raises(ValueError):
        ledger.decode(blob)


def test_a_snapshot_of_the_state_and_ledger_goes_on_deciding_like_the_original():
    a = host(1)
    stream = stream_of_two_hosts()
    run(a, stream[:4])
    copy = SimpleNamespace(policy=Policy(pickle.loads(pickle.dumps(a.policy.state)), LIMITS, history=False),
                           ledger=pickle.loads(pickle.dumps(a.ledger)))
    copy.policy.connections = pickle.loads(pickle.dumps(a.policy.connections))
    assert run(copy, stream[4:]) == run(a, stream[4:])
    assert copy.policy.state.snapshot() == a.policy.state.snapshot()


def test_entry_ids_compare_in_stream_order():
    ids = ["1-10", "1-2", "10-0", "2-0"]
    random.Random(1).shuffle(ids)
    assert sorted(ids, key=ledger.entry_id) == ["1-2", "1-10", "2-0", "10-0"]
