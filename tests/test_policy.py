"""The hub's policy on plain data, with no process: a state built from events, a request and a
time in; the events (applied to the state) and replies out, in order. Then the log: numbers,
msgids and times stamped in one place, read by any reader."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from chatstate.state import (E_AWAY, E_CHGHOST, E_CONNECTIONS, E_INVITE, E_JOIN, E_KICK, E_MODE, E_NICK, E_PART,
                             E_QUIT, E_RENAME, E_SETNAME, E_TOPIC, E_UMODE, E_USER, State)
from hub.log import M_CHANMSG, M_USERMSG, M_WALLOPS, Log
from hub.policy import WORKER_LOST_REASON, Policy, Reply
from hub.routing import LinkRouter
from ipc import link
from ircproto import numerics as N

NOW = 1_700_000_000.25
A, B, C = (1 << 32 | 1), (1 << 32 | 2), (2 << 32 | 1)  # alice and bob on worker 1, carol on worker 2
LIMITS = SimpleNamespace(chanlimit=2, max_clients=4, max_clients_per_ip=2, exempt_loopback=True)
LINE = b":alice!~a@h PRIVMSG #room :hi\r\n"


def world(*events: tuple) -> Policy:
    """alice (an operator of #room), bob (a plain member) and carol (no channel), connected and
    registered; then `events`."""
    policy = Policy(State(), LIMITS)
    for cid, nick in ((A, "alice"), (B, "bob"), (C, "carol")):
        policy.connections.admit(cid, "10.0.0.1" if cid != C else "10.0.0.2")
        policy.state.apply((E_USER, cid, nick, "~" + nick[0], "h", nick.title(), 1.0))
    policy.state.apply((E_CONNECTIONS, 3))
    for event in ((E_JOIN, A, "#room", 1.0), (E_JOIN, B, "#room", 1.0), *events):
        policy.state.apply(event)
    return policy


def numeric(cid: int, code: str, *params: str) -> Reply:
    return Reply(cid, (link.D_NUMERIC, cid, code, params))


CASES = [
    # --- connections and registration ---
    ("connect admitted", (), (link.R_CONNECT, 1 << 32 | 9, "10.0.0.3"), [(E_CONNECTIONS, 4)]),
    ("connect: the address is full", (), (link.R_CONNECT, 1 << 32 | 9, "10.0.0.1"),
     [Reply(1 << 32 | 9, (link.D_REFUSE, 1 << 32 | 9, "Too many connections from your address (the limit is 2)"))]),
    ("connect: loopback is exempt", (), (link.R_CONNECT, 1 << 32 | 9, "127.0.0.1"), [(E_CONNECTIONS, 4)]),
    ("connect: already known from a hello", (), (link.R_CONNECT, A, "10.0.0.1"), []),
    ("register", (), (link.R_REGISTER, A, "alice", "~a", "h", "A"), []),  # already registered: a replay
    ("register: refused at the door", (), (link.R_REGISTER, 1 << 32 | 3, "bea", "~x", "h", "X"), []),  # never connected
    ("nick", (), (link.R_NICK, B, "robert"), [(E_NICK, B, "robert", NOW)]),
    ("nick: taken", (), (link.R_NICK, B, "ALICE"), [Reply(B, (link.D_NICK_REFUSED, B, "ALICE"))]),
    ("nick: unchanged", (), (link.R_NICK, B, "bob"), []),
    ("quit", (), (link.R_QUIT, C, "bye"), [(E_QUIT, C, "bye", NOW), (E_CONNECTIONS, 2)]),
    # --- channels ---
    ("join creates", (), (link.R_JOIN, C, "#new", ""), [(E_JOIN, C, "#new", NOW)]),
    ("join: already in", (), (link.R_JOIN, A, "#ROOM", ""), []),
    ("join: too many channels", ((E_JOIN, A, "#two", 1.0),), (link.R_JOIN, A, "#three", ""),
     [numeric(A, N.ERR_TOOMANYCHANNELS, "#three", "You have joined too many channels")]),
    ("join: key", ((E_MODE, A, "#room", (("+", "k", "pw"),), 1.0),), (link.R_JOIN, C, "#room", "no"),
     [numeric(C, N.ERR_BADCHANNELKEY, "#room", "Cannot join channel (+k)")]),
    ("join: invite only", ((E_MODE, A, "#room", (("+", "i", ""),), 1.0),), (link.R_JOIN, C, "#room", ""),
     [numeric(C, N.ERR_INVITEONLYCHAN, "#room", "Cannot join channel (+i)")]),
    ("join: banned", ((E_MODE, A, "#room", (("+", "b", "carol!*@*"),), 1.0),), (link.R_JOIN, C, "#room", ""),
     [numeric(C, N.ERR_BANNEDFROMCHAN, "#room", "Cannot join channel (+b)")]),
    ("join: full", ((E_MODE, A, "#room", (("+", "l", "2"),), 1.0),), (link.R_JOIN, C, "#room", ""),
     [numeric(C, N.ERR_CHANNELISFULL, "#room", "Cannot join channel (+l)")]),
    ("part", (), (link.R_PART, B, "#Room", "later"), [(E_PART, B, "#room", "later")]),
    ("part: no such channel", (), (link.R_PART, B, "#none", ""),
     [numeric(B, N.ERR_NOSUCHCHANNEL, "#none", "No such channel")]),
    ("part: not on it", (), (link.R_PART, C, "#room", ""),
     [numeric(C, N.ERR_NOTONCHANNEL, "#room", "You're not on that channel")]),
    ("topic", (), (link.R_TOPIC, A, "#room", "hello"), [(E_TOPIC, A, "#room", "hello", NOW)]),
    ("topic: +t and not an operator", (), (link.R_TOPIC, B, "#room", "x"),
     [numeric(B, N.ERR_CHANOPRIVSNEEDED, "#room", "You're not channel operator")]),
    ("topic: -t lets a member", ((E_MODE, A, "#room", (("-", "t", ""),), 1.0),), (link.R_TOPIC, B, "#room", "x"),
     [(E_TOPIC, B, "#room", "x", NOW)]),
    # --- channel operators ---
    ("mode: not an operator", (), (link.R_MODE, B, "#room", (("+", "m", ""),)),
     [numeric(B, N.ERR_CHANOPRIVSNEEDED, "#room", "You're not channel operator")]),
    ("mode: only what changes, refusals first, in order", (),
     (link.R_MODE, A, "#room", (("+", "n", ""), ("+", "m", ""), ("+", "v", "nobody"), ("+", "v", "carol"),
                                ("+", "v", "bob"), ("+", "v", "bob"), ("+", "k", "pw"), ("-", "k", ""))),
     [numeric(A, N.ERR_NOSUCHNICK, "nobody", "No such nick/channel"),
      numeric(A, N.ERR_USERNOTINCHANNEL, "carol", "#room", "They aren't on that channel"),
      (E_MODE, A, "#room", (("+", "m", ""), ("+", "v", "bob"), ("+", "k", "pw"), ("-", "k", "*")), NOW)]),
    ("mode: a list entry once", (), (link.R_MODE, A, "#room", (("+", "b", "x!*@*"), ("+", "b", "X!*@*"))),
     [(E_MODE, A, "#room", (("+", "b", "x!*@*"),), NOW)]),
    ("mode: nothing changes", (), (link.R_MODE, A, "#room", (("+", "t", ""), ("-", "l", ""))), []),
    ("kick", (), (link.R_KICK, A, "#room", "bob", "out"), [(E_KICK, A, "#room", B, "out")]),
    ("kick: not on the channel", (), (link.R_KICK, A, "#room", "carol", "out"),
     [numeric(A, N.ERR_USERNOTINCHANNEL, "carol", "#room", "They aren't on that channel")]),
    ("kick: no such nick", (), (link.R_KICK, A, "#room", "zed", ""), [numeric(A, N.ERR_NOSUCHNICK, "zed", "No such nick/channel")]),
    ("invite", (), (link.R_INVITE, B, "carol", "#room"), [(E_INVITE, B, "#room", C)]),
    ("invite: +i needs an operator", ((E_MODE, A, "#room", (("+", "i", ""),), 1.0),),
     (link.R_INVITE, B, "carol", "#room"), [numeric(B, N.ERR_CHANOPRIVSNEEDED, "#room", "You're not channel operator")]),
    ("invite: already there", (), (link.R_INVITE, A, "bob", "#room"),
     [numeric(A, N.ERR_USERONCHANNEL, "bob", "#room", "is already on channel")]),
    ("rename", (), (link.R_RENAME, A, "#room", "#hall", "moved"), [(E_RENAME, A, "#room", "#hall", "moved")]),
    ("rename: taken", ((E_JOIN, C, "#hall", 1.0),), (link.R_RENAME, A, "#room", "#HALL", ""),
     [Reply(A, (link.D_FAIL, A, "RENAME", "CHANNEL_NAME_IN_USE", ("#room", "#HALL", "The channel name is already taken")))]),
    # --- user state ---
    ("user mode: +o is only for OPER", (), (link.R_UMODE, B, "+iow-x"), [(E_UMODE, B, "+iw")]),
    ("oper", (), (link.R_OPER, B), [(E_UMODE, B, "+o")]),
    ("away", (), (link.R_AWAY, B, "lunch"), [(E_AWAY, B, "lunch")]),
    ("setname", (), (link.R_SETNAME, B, "Robert"), [(E_SETNAME, B, "Robert")]),
    # --- operator powers ---
    ("kill: not an operator", (), (link.R_KILL, B, "carol", "x"),
     [numeric(B, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")]),
    ("kill", ((E_UMODE, A, "+o"),), (link.R_KILL, A, "carol", "spam"),
     [(E_QUIT, C, "Killed (alice (spam))", NOW), (E_CONNECTIONS, 2)]),
    ("kill: no such nick", ((E_UMODE, A, "+o"),), (link.R_KILL, A, "zed", "x"),
     [numeric(A, N.ERR_NOSUCHNICK, "zed", "No such nick/channel")]),
    ("wallops", ((E_UMODE, A, "+o"),), (link.R_WALLOPS, A, b"line"), [(M_WALLOPS, b"line")]),
    ("chghost", ((E_UMODE, A, "+o"),), (link.R_CHGHOST, A, "bob", "~b", "new.host"), [(E_CHGHOST, B, "~b", "new.host")]),
    ("chghost: unchanged", ((E_UMODE, A, "+o"),), (link.R_CHGHOST, A, "bob", "~b", "h"), []),
    # --- messages ---
    ("channel message", (), (link.R_CHANMSG, B, "#Room", LINE, "o1", 0, ""), [(M_CHANMSG, "#room", B, LINE, "o1", 0, "")]),
    ("channel message: no such channel", (), (link.R_CHANMSG, B, "#none", LINE, "o1", 0, ""),
     [numeric(B, N.ERR_NOSUCHCHANNEL, "#none", "No such channel")]),
    ("channel message: NOTICE is never answered", (), (link.R_CHANMSG, B, "#none", LINE, "o1", link.MSG_QUIET, ""), []),
    ("channel message: +n keeps outsiders out", (), (link.R_CHANMSG, C, "#room", LINE, "o1", 0, ""),
     [numeric(C, N.ERR_CANNOTSENDTOCHAN, "#room", "Cannot send to channel")]),
    ("channel message: +m", ((E_MODE, A, "#room", (("+", "m", ""),), 1.0),), (link.R_CHANMSG, B, "#room", LINE, "o1", 0, ""),
     [numeric(B, N.ERR_CANNOTSENDTOCHAN, "#room", "Cannot send to channel")]),
    ("channel message: +m lets operators", ((E_MODE, A, "#room", (("+", "m", ""),), 1.0),),
     (link.R_CHANMSG, A, "#room", LINE, "o1", 0, ""), [(M_CHANMSG, "#room", A, LINE, "o1", 0, "")]),
    ("channel message: +C", ((E_MODE, A, "#room", (("+", "C", ""),), 1.0),),
     (link.R_CHANMSG, B, "#room", LINE, "o1", link.MSG_CTCP, ""),
     [numeric(B, N.ERR_CANNOTSENDTOCHAN, "#room", "Cannot send CTCP to channel (+C)")]),
    ("STATUSMSG from an operator", (), (link.R_CHANMSG, A, "@#room", LINE, "o1", 0, ""),
     [(M_CHANMSG, "@#room", A, LINE, "o1", 0, "")]),
    ("user message", (), (link.R_USERMSG, B, "Carol", LINE, "o2", link.MSG_ECHO, "+x"),
     [(M_USERMSG, C, B, LINE, "o2", link.MSG_ECHO, "+x")]),
    ("user message: no such nick", (), (link.R_USERMSG, B, "zed", LINE, "o2", 0, ""),
     [numeric(B, N.ERR_NOSUCHNICK, "zed", "No such nick/channel")]),
    ("user message: away, after the message", ((E_AWAY, C, "gone"),), (link.R_USERMSG, B, "carol", LINE, "o2", 0, ""),
     [(M_USERMSG, C, B, LINE, "o2", 0, ""), numeric(B, N.RPL_AWAY, "carol", "gone")]),
    ("user message: NOTICE hears no away", ((E_AWAY, C, "gone"),), (link.R_USERMSG, B, "carol", LINE, "o2", link.MSG_QUIET, ""),
     [(M_USERMSG, C, B, LINE, "o2", link.MSG_QUIET, "")]),
    # --- plumbing ---
    ("barrier", (), (link.R_BARRIER, B, 7), [Reply(B, (link.D_BARRIER, B, 7))]),
    ("forward", (), (link.R_FORWARD, C, (link.F_IDLE_ASK, B, C)), [Reply(C, (link.F_IDLE_ASK, B, C))]),
]


@pytest.mark.parametrize("events, request_, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_request_decides_these_events_and_replies(events, request_, expected):
    policy = world(*events)
    assert policy.decide(request_, NOW) == expected


@pytest.mark.parametrize("events, request_, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_events_decided_are_already_applied_as_a_replica_applies_them(events, request_, expected):
    """The policy applies each event to the hub's state; a replica applying the published events
    from the state before must reach the same state (MODE applies its changes one at a time)."""
    policy, replica = world(*events), world(*events).state
    for out in policy.decide(request_, NOW):
        if type(out) is not Reply and out[0] not in (M_CHANMSG, M_USERMSG, M_WALLOPS):
            replica.apply(out)
    assert replica.snapshot() == policy.state.snapshot()
    assert replica.connections == policy.state.connections


def test_a_replayed_request_gets_no_error_replies_and_changes_nothing_twice():
    policy = world((E_TOPIC, A, "#room", "same", 1.0), (E_AWAY, B, "out"))
    assert policy.decide((link.R_PART, B, "#none", ""), NOW, replayed=True) == []
    assert policy.decide((link.R_TOPIC, A, "#room", "same"), NOW, replayed=True) == []
    assert policy.decide((link.R_AWAY, B, "out"), NOW, replayed=True) == []
    assert policy.decide((link.R_TOPIC, A, "#room", "same"), NOW) == [(E_TOPIC, A, "#room", "same", NOW)]
    assert policy.decide((link.R_BARRIER, B, 1), NOW, replayed=True) == [Reply(B, (link.D_BARRIER, B, 1))]


def test_the_server_full_refusal_and_a_lost_worker():
    policy = world()
    policy.connections.admit(1 << 32 | 8, "10.0.0.9")
    assert policy.decide((link.R_CONNECT, 3 << 32 | 1, "10.0.0.5"), NOW) == [
        Reply(3 << 32 | 1, (link.D_REFUSE, 3 << 32 | 1, "The server is full (4 connections); try again later"))]
    assert policy.worker_lost(1, NOW) == [(E_QUIT, A, WORKER_LOST_REASON, NOW), (E_QUIT, B, WORKER_LOST_REASON, NOW),
                                          (E_CONNECTIONS, 1)]
    assert list(policy.state.users) == [C] and len(policy.connections) == 1


def test_registration_takes_the_nick_or_is_refused():
    policy = world()
    new = 2 << 32 | 5
    policy.connections.admit(new, "10.0.0.7")
    assert policy.decide((link.R_REGISTER, new, "BOB", "~x", "h", "X"), NOW) == [Reply(new, (link.D_NICK_REFUSED, new, "BOB"))]
    assert policy.decide((link.R_REGISTER, new, "dave", "~d", "10.0.0.7", "D"), NOW) == [
        (E_USER, new, "dave", "~d", "10.0.0.7", "D", NOW)]


# --- the log ---------------------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.seen = []

    def publish(self, seq, msgid, time, event):
        self.seen.append((seq, msgid, time, event))


def test_the_log_numbers_and_stamps_every_event_in_order_for_every_reader():
    log, first, second = Log("h-"), Recorder(), Recorder()
    log.add_reader(first)
    log.add_reader(second)
    log.publish((E_AWAY, A, "x"), 10.0005)
    log.publish((M_CHANMSG, "#room", A, LINE, "origin-1", 0, ""), 10.0005)  # the clock has not moved on
    log.publish((M_USERMSG, C, A, LINE, "origin-2", 0, ""), 9.0)  # the clock went back
    log.publish((E_AWAY, A, ""), 12.5)
    assert first.seen == second.seen
    assert [(seq, msgid, round(time * 1_000_000)) for seq, msgid, time, _ in first.seen] == [
        (1, "h-1", 10_000_500), (2, "origin-1", 10_000_501), (3, "origin-2", 10_000_502), (4, "h-4", 12_500_000)]


def test_the_log_keeps_to_the_clock_at_thousands_of_events_a_millisecond():
    log, seen = Log("h-"), Recorder()
    log.add_reader(seen)
    for _ in range(30_000):  # a second of soak row 2, all stamped with one reading of the clock
        log.publish((M_CHANMSG, "#room", A, LINE, "o", 0, ""), 100.0)
    times = [time for _, _, time, _ in seen.seen]
    assert times == sorted(set(times))  # strictly increasing
    assert times[-1] - 100.0 < 0.031  # 1 us apart: 30 ms ahead of that one reading, not 30 s


def test_a_new_log_starts_after_the_latest_time_a_worker_saw():
    log, seen = Log("h-"), Recorder()
    log.add_reader(seen)
    log.resume_after(50.123)
    log.publish((E_AWAY, A, "x"), 20.0)
    assert round(seen.seen[0][2] * 1_000_000) == 50_123_001


class FakeLink:
    def __init__(self):
        self.items = []

    def send(self, item):
        self.items.append(item)


def test_the_link_router_sends_each_event_where_it_has_recipients():
    policy = world((E_JOIN, C, "#other", 1.0))
    links = {1: FakeLink(), 2: FakeLink()}
    log = Log("h-", [LinkRouter(policy.state, links)])
    for out in policy.decide((link.R_CHANMSG, A, "#room", LINE, "o1", link.MSG_ECHO, ""), NOW):
        log.publish(out, NOW)
    log.publish((M_USERMSG, C, A, LINE, "o2", link.MSG_ECHO, ""), NOW)
    log.publish((E_AWAY, A, "x"), NOW)
    time = links[1].items[0][5]
    later = links[1].items[1][4]  # the next event's stamp: 1 us on, the clock having stood still
    assert round((later - time) * 1_000_000) == 1
    assert links[1].items == [(link.D_CHANMSG, "#room", A, LINE, "o1", time, link.MSG_ECHO, ""),
                              (link.D_ECHO, A, LINE, "o2", later, link.MSG_ECHO, ""), (E_AWAY, A, "x")]
    assert links[2].items == [(link.D_USERMSG, C, A, LINE, "o2", later, link.MSG_ECHO, ""), (E_AWAY, A, "x")]
    outsider = policy.decide((link.R_CHANMSG, C, "#other", LINE, "o3", link.MSG_ECHO, ""), NOW)
    log.publish(outsider[0], NOW)  # carol is #other's only member: her echo rides with the message
    assert links[2].items[-1][0] == link.D_CHANMSG
