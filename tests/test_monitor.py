"""MONITOR and extended-monitor on plain data: the lists and their limit (`Monitors`), the
packing of long replies, the command through a real `Session` with a fake worker and hub
(tests/test_session.py's), and the replica's events notifying the watchers, leaving nothing
behind when a watcher quits."""
from __future__ import annotations

from chatstate.state import E_AWAY, E_CHGHOST, E_JOIN, E_NICK, E_QUIT, E_SETNAME, E_USER
from ircproto.message import MAX_LINE, wire_length
from tests.test_session import CID, WID, FakeHub, FakeServer, output, register
from workers.handlers import monitor
from ircproto.numerics import ERR_MONLISTFULL, RPL_ENDOFMONLIST, RPL_MONLIST, RPL_MONOFFLINE, RPL_MONONLINE
from workers.handlers.monitor import Monitors, monitors_of, packed
from workers.isupport import MONITOR_LIMIT, isupport_tokens
from workers.session import Session

A, B = CID, WID << 32 | 2  # two clients of this worker
REMOTE = (WID + 1) << 32 | 1  # a user on another worker


# --- the lists -------------------------------------------------------------------------------
def test_add_keeps_the_targets_as_given_once_each_and_ignores_invalid_nicks():
    m = Monitors()
    added, full = m.add(A, ["Bob", "bob", "9lives", "carol", "", "a b", "x" * 31, "BOB"], limit=10, nicklen=30)
    assert (added, full) == (["Bob", "carol"], [])
    assert m.targets(A) == ["Bob", "carol"]
    assert m.watching("bob") == {A} and m.watching("carol") == {A} and m.watching("9lives") == set()
    assert m.add(A, ["CAROL", "dave"], limit=10, nicklen=30) == (["dave"], [])
    assert m.targets(A) == ["Bob", "carol", "dave"]


def test_the_limit_refuses_the_first_target_that_does_not_fit_and_all_after_it():
    m = Monitors()
    assert m.add(A, ["a1", "a2"], limit=3, nicklen=30) == (["a1", "a2"], [])
    # a2 is in already and 9x is invalid: neither needs room; a3 takes the last place
    assert m.add(A, ["a2", "9x", "a3", "a4", "a1", "a5"], limit=3, nicklen=30) == (["a3"], ["a4", "a1", "a5"])
    assert m.targets(A) == ["a1", "a2", "a3"]
    assert m.add(A, ["A1", "a3"], limit=3, nicklen=30) == ([], [])  # a full list still takes what it has
    assert m.add(A, ["b1"], limit=3, nicklen=30) == ([], ["b1"])
    assert m.add(B, ["b1"], limit=3, nicklen=30) == (["b1"], [])  # the limit is per client


def test_remove_and_clear_leave_no_index_entries_behind():
    m = Monitors()
    m.add(A, ["bob", "carol"], limit=10, nicklen=30)
    m.add(B, ["Bob"], limit=10, nicklen=30)
    m.remove(A, ["BOB", "nobody", "9x"])
    assert m.watching("bob") == {B} and m.targets(A) == ["carol"]
    m.remove(A, ["carol"])
    assert A not in m.lists and "carol" not in m.watchers
    m.clear(B)
    m.clear(B)  # twice, or a client that never monitored: nothing
    m.remove(A, ["bob"])
    assert m.lists == {} and m.watchers == {}


def test_packed_fills_lines_up_to_the_budget_and_keeps_every_item_in_order():
    items = [f"nick{i}!~user@host{i}.example" for i in range(60)]
    lines = packed(items, 100)
    assert all(wire_length(line) <= 100 for line in lines) and len(lines) > 1
    assert ",".join(lines).split(",") == items
    assert packed([], 100) == [] and packed(["x" * 150, "y"], 100) == ["x" * 150, "y"]
    # every line but the last is full: the next item would not have fitted
    assert all(wire_length(line) + 1 + wire_length(after.split(",")[0]) > 100 for line, after in zip(lines, lines[1:]))


def test_the_isupport_token_is_the_limit():
    from config import Config
    assert f"MONITOR={MONITOR_LIMIT}" in isupport_tokens(Config()) and MONITOR_LIMIT == 100


# --- the command, through a session ------------------------------------------------------------
def worker_with_clients(*nicks: str) -> tuple[FakeServer, FakeHub, list[Session]]:
    """A fake worker with these registered clients (cids A, B, ...) and a user "remote" elsewhere."""
    server = FakeServer()
    hub = FakeHub(server)
    sessions = []
    for n, nick in enumerate(nicks, start=1):
        s = Session(server, server.outbox, WID << 32 | n, "127.0.0.1", now=100.0, idle_since=1000.0)
        server.sessions[s.cid] = s
        register(s, hub, nick)
        sessions.append(s)
    return server, hub, sessions


def command(s: Session, hub: FakeHub, line: str) -> list:
    """Send one line, let the fake hub answer what it asks (its barrier), and return the output."""
    s.receive(line.encode() + b"\r\n", 100.0)
    hub.run()
    return [(m.command, m.params[1:]) for m in output(s)]


def test_monitor_add_answers_online_then_offline_from_the_replica_after_a_barrier():
    server, hub, (alice,) = worker_with_clients("alice")
    hub.feed((E_USER, REMOTE, "Bob", "~b", "b.host", "Bob", 1.0))
    output(alice)
    alice.receive(b"MONITOR + bob,carol,9bad,BOB\r\n", 100.0)
    assert output(alice) == [] and alice.syncing  # a query: it waits for its barrier
    hub.run()
    assert [(m.command, m.params) for m in output(alice)] == [
        (RPL_MONONLINE, ["alice", "Bob!~b@b.host"]), (RPL_MONOFFLINE, ["alice", "carol"])]
    assert command(alice, hub, "MONITOR L") == [(RPL_MONLIST, ["bob,carol"]),
                                                (RPL_ENDOFMONLIST, ["End of MONITOR list"])]
    assert command(alice, hub, "MONITOR S") == [(RPL_MONONLINE, ["Bob!~b@b.host"]), (RPL_MONOFFLINE, ["carol"])]
    assert command(alice, hub, "MONITOR - BOB") == []
    assert command(alice, hub, "MONITOR L") == [(RPL_MONLIST, ["carol"]), (RPL_ENDOFMONLIST, ["End of MONITOR list"])]
    assert command(alice, hub, "monitor c") == []
    assert command(alice, hub, "MONITOR L") == [(RPL_ENDOFMONLIST, ["End of MONITOR list"])]
    assert command(alice, hub, "MONITOR S") == []
    assert monitors_of(server).lists == {} and monitors_of(server).watchers == {}


def test_monitor_errors_and_the_full_list():
    server, hub, (alice,) = worker_with_clients("alice")
    assert command(alice, hub, "MONITOR") == [("461", ["MONITOR", "Not enough parameters"])]
    assert command(alice, hub, "MONITOR +") == [("461", ["MONITOR", "Not enough parameters"])]
    assert command(alice, hub, "MONITOR X bob") == [("400", ["MONITOR", "X", "Unknown MONITOR modifier"])]
    first = ",".join(f"n{i}" for i in range(MONITOR_LIMIT - 1))
    answers = command(alice, hub, f"MONITOR + {first}")
    assert [code for code, _ in answers] == [RPL_MONOFFLINE] * len(answers)
    assert ",".join(params[0] for _, params in answers).split(",") == first.split(",")
    assert command(alice, hub, "MONITOR + n0,last,over,more") == [
        (RPL_MONOFFLINE, ["last"]), (ERR_MONLISTFULL, [str(MONITOR_LIMIT), "over,more", "Monitor list is full."])]
    assert len(monitors_of(server).targets(alice.cid)) == MONITOR_LIMIT


def test_long_replies_are_split_to_fit_the_line():
    server, hub, (alice,) = worker_with_clients("alice")
    for i in range(30):
        hub.feed((E_USER, REMOTE + i, f"user{i:02}" + "x" * 20, "~" + "u" * 9, "h" * 40, "x", 1.0))
    for part in range(2):  # a client's line holds 15 of these nicks
        command(alice, hub, "MONITOR + " + ",".join(f"USER{i:02}" + "X" * 20 for i in range(part * 15, part * 15 + 15)))
    alice.receive(b"MONITOR S\r\n", 100.0)
    hub.run()
    lines = b"".join(alice.outbuf).split(b"\r\n")[:-1]
    assert len(lines) > 1 and all(len(line) + 2 <= MAX_LINE for line in lines)
    assert all(b" 730 alice " in line for line in lines)
    shown = b",".join(line.rpartition(b" ")[2].lstrip(b":") for line in lines).split(b",")
    assert shown == [f"user{i:02}{'x' * 20}!~{'u' * 9}@{'h' * 40}".encode() for i in range(30)]


# --- notifications from the replica's events ------------------------------------------------------
def lines(s: Session) -> list[tuple]:
    return [(m.command, m.params[1:] if m.command in (RPL_MONONLINE, RPL_MONOFFLINE) else m.params) for m in output(s)]


def test_online_nick_change_and_offline_reach_every_local_watcher_in_hub_order():
    server, hub, (alice, carol) = worker_with_clients("alice", "carol")
    command(alice, hub, "MONITOR + bob,robert")
    command(carol, hub, "MONITOR + bob")
    hub.feed((E_USER, REMOTE, "bob", "~b", "h", "Bob", 1.0))
    assert lines(alice) == [(RPL_MONONLINE, ["bob!~b@h"])] and lines(carol) == [(RPL_MONONLINE, ["bob!~b@h"])]
    hub.feed((E_NICK, REMOTE, "BOB", 2.0))  # a change of case: the same target, still online
    assert lines(alice) == [] and lines(carol) == []
    hub.feed((E_NICK, REMOTE, "Robert", 3.0))
    assert lines(alice) == [(RPL_MONOFFLINE, ["BOB"]), (RPL_MONONLINE, ["Robert!~b@h"])]
    assert lines(carol) == [(RPL_MONOFFLINE, ["BOB"])]
    hub.feed((E_QUIT, REMOTE, "Quit: bye", 4.0))
    assert lines(alice) == [(RPL_MONOFFLINE, ["Robert"])] and lines(carol) == []


def test_a_watcher_that_quits_leaves_nothing_behind_and_its_nick_inherits_nothing():
    server, hub, (alice, carol) = worker_with_clients("alice", "carol")
    command(alice, hub, "MONITOR + bob,dave")
    command(carol, hub, "MONITOR + alice")
    alice.close("Connection closed")
    del server.sessions[alice.cid]  # the worker lets it go; its QUIT comes back from the hub later
    hub.feed((E_USER, REMOTE, "bob", "~b", "h", "Bob", 1.0))  # between the two: nobody to tell
    hub.feed((E_QUIT, alice.cid, "Connection closed", 2.0))
    assert lines(carol) == [(RPL_MONOFFLINE, ["alice"])]
    mons = monitors_of(server)
    assert alice.cid not in mons.lists and "bob" not in mons.watchers and "dave" not in mons.watchers
    command(carol, hub, "MONITOR C")
    assert mons.lists == {} and mons.watchers == {}
    # a new client under the old nick has its own (empty) list
    newcomer = Session(server, server.outbox, WID << 32 | 9, "127.0.0.1", now=100.0, idle_since=1000.0)
    server.sessions[newcomer.cid] = newcomer
    register(newcomer, hub, "alice")
    hub.feed((E_QUIT, REMOTE, "bye", 3.0), (E_USER, REMOTE + 1, "dave", "~d", "h", "Dave", 4.0))
    assert lines(newcomer) == []
    assert command(newcomer, hub, "MONITOR L") == [(RPL_ENDOFMONLIST, ["End of MONITOR list"])]


def test_extended_monitor_sends_away_chghost_and_setname_once_with_or_without_a_shared_channel():
    server, hub, (plain, extended, shared, self_watch) = worker_with_clients("plain", "ext", "shared", "me")
    caps = {"away-notify", "chghost", "setname"}
    plain.set_caps(set(caps))
    for s in (extended, shared, self_watch):
        s.set_caps(caps | {"extended-monitor"})
    hub.feed((E_USER, REMOTE, "bob", "~b", "h", "Bob", 1.0), (E_JOIN, REMOTE, "#room", 1.0),
             (E_JOIN, shared.cid, "#room", 1.0))
    for s in (plain, extended, shared):
        command(s, hub, "MONITOR + bob")
    command(self_watch, hub, "MONITOR + me")
    for s in (plain, extended, shared, self_watch):
        output(s)
    hub.feed((E_AWAY, REMOTE, "lunch"), (E_CHGHOST, REMOTE, "~c", "new.host"), (E_SETNAME, REMOTE, "Robert"),
             (E_AWAY, REMOTE, ""))
    expected = [("AWAY", ["lunch"]), ("CHGHOST", ["~c", "new.host"]), ("SETNAME", ["Robert"]), ("AWAY", [])]
    assert lines(extended) == expected
    assert lines(shared) == expected  # a member and a watcher: once
    assert lines(plain) == []  # no extended-monitor, no shared channel
    # a client watching itself gets its own answers once, as without MONITOR
    hub.feed((E_AWAY, self_watch.cid, "gone"), (E_SETNAME, self_watch.cid, "Me"))
    assert [m.command for m in output(self_watch)] == ["306", "SETNAME"]


def test_extended_monitor_needs_the_notification_cap_too():
    server, hub, (watcher,) = worker_with_clients("watcher")
    watcher.set_caps({"extended-monitor", "setname"})
    command(watcher, hub, "MONITOR + bob")
    hub.feed((E_USER, REMOTE, "bob", "~b", "h", "Bob", 1.0))
    output(watcher)
    hub.feed((E_AWAY, REMOTE, "lunch"), (E_CHGHOST, REMOTE, "~c", "h2"), (E_SETNAME, REMOTE, "Robert"))
    assert lines(watcher) == [("SETNAME", ["Robert"])]


def test_no_monitors_no_work():
    """The hooks' quick exit: a worker where nobody monitors keeps no lists at all."""
    server, hub, (alice,) = worker_with_clients("alice")
    hub.feed((E_USER, REMOTE, "bob", "~b", "h", "Bob", 1.0), (E_AWAY, REMOTE, "x"), (E_NICK, REMOTE, "b2", 1.0),
             (E_QUIT, REMOTE, "bye", 2.0))
    assert monitor._BY_WORKER.get(server) is None
