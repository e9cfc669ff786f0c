"""`Session` on its own: bytes in, a fake clock, a fake hub; no process, no socket, no loop.

The fake server is what the session and its handlers may see of a worker (ServerView and
the command table) and what the hub's items are applied to (HubItemTarget); the fake hub
records the requests the session puts in its outbox and feeds the hub's answers back
through the real item handlers (workers/events.py)."""
from __future__ import annotations

import pytest

from chatstate.state import E_JOIN, E_USER, State
from config import load
from ipc import link
from ircproto.message import parse
from workers import commands, events
from workers.session import (AWAITING_BARRIER, AWAITING_HUB, CLOSE_CONNECTION, CLOSED, CONNECTED, NEGOTIATING,
                             PAUSE_READING, READY, REGISTERED, REGISTERING, REQUEST, RESUME_READING, THROTTLED,
                             WAKE_AFTER, IllegalTransition, Outbox, Session)

WID = 1
CID = WID << 32 | 1


class FakeServer:
    """A worker as far as one session, its handlers and the hub's items need one."""
    dispatch = staticmethod(commands.dispatch)
    reads_state = staticmethod(commands.reads_state)

    def __init__(self, **settings) -> None:
        self.config = load(env={}, overrides={"server": {"flood_control": settings.pop("flood_control", False)},
                                              "limits": settings})
        self.server_name = "irc.test"
        self.started_at = 0.0
        self.wid = WID
        self.state = State(WID)
        self.welcome_cache = None
        self.sessions: dict[int, Session] = {}
        self.outbox = Outbox()
        self.refs = 0
        self.forwarded: list[tuple] = []

    def next_batch_ref(self) -> str:
        self.refs += 1
        return f"b{self.refs}"

    def next_msgid(self) -> str:
        self.refs += 1
        return f"m{self.refs}"

    def idle_seconds(self, cid):
        return 0 if cid in self.sessions else None

    def expect_idle(self, asker, target, nick):
        pass

    def run_blocking(self, then, fn, *args):
        then(fn(*args))

    def rehash(self):
        pass

    # HubItemTarget
    def unflushed(self):
        return self.outbox.writers

    def first_delivery(self, msgid):
        return True

    def request(self, item):
        self.forwarded.append(item)

    def acknowledged(self, count):
        pass

    def idle_told(self, asker, target, idle):
        pass


class FakeHub:
    """Drains the outbox: requests recorded, the other effects sorted; hub items fed back."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.requests: list[tuple] = []
        self.closed: list[tuple[str, bool]] = []
        self.reading: list[str] = []
        self.wakes: list[float] = []

    def drain(self) -> list[tuple]:
        """The requests put in the outbox since the last drain."""
        effects, self.server.outbox.effects = self.server.outbox.effects, []
        new = []
        for _, kind, arg in effects:
            if kind == REQUEST:
                new.append(arg)
            elif kind == CLOSE_CONNECTION:
                self.closed.append(arg)
            elif kind in (PAUSE_READING, RESUME_READING):
                self.reading.append(kind)
            elif kind == WAKE_AFTER:
                self.wakes.append(arg)
        self.requests.extend(new)
        return new

    def feed(self, *items: tuple) -> None:
        """Items from the hub, applied as the worker applies them (in hub order, hub_turn set)."""
        outbox = self.server.outbox
        outbox.hub_turn = True
        try:
            for item in items:
                events.HANDLERS[item[0]](self.server, *item[1:])
        finally:
            outbox.hub_turn = False

    def answer(self, request: tuple) -> None:
        """What the real hub would answer to the few requests these tests send."""
        if request[0] == link.R_REGISTER:
            _, cid, nick, user, host, realname, *_ = request
            self.feed((E_USER, cid, nick, user, host, realname, 1.0))
        elif request[0] == link.R_BARRIER:
            self.feed((link.D_BARRIER, request[1], request[2]))
        elif request[0] == link.R_JOIN:
            self.feed((E_JOIN, request[1], request[2], 1.0))

    def run(self) -> None:
        """Answer every request, and what those answers cause, until the session asks nothing more."""
        while True:
            new = self.drain()
            if not new:
                return
            for request in new:
                self.answer(request)


def new_session(**settings) -> tuple[Session, FakeServer, FakeHub]:
    server = FakeServer(**settings)
    s = Session(server, server.outbox, CID, "127.0.0.1", now=100.0, idle_since=1000.0)
    server.sessions[CID] = s
    return s, server, FakeHub(server)


def output(s: Session) -> list:
    """What the session has written to its client (and forget it)."""
    data, s.outbuf = b"".join(s.outbuf), []
    return [parse(line) for line in data.split(b"\r\n") if line]


def register(s: Session, hub: FakeHub, nick: str = "alice", now: float = 100.0) -> None:
    s.receive(f"NICK {nick}\r\nUSER a 0 * :Alice\r\n".encode(), now)
    hub.run()
    s.receive(b"PING :settled\r\n", now)  # its barrier covers the registration: local answers go at once
    hub.run()
    output(s)
    assert s.may_answer_now


def test_nick_and_user_ask_the_hub_and_its_grant_registers():
    s, server, hub = new_session()
    assert (s.phase, s.holding) == (CONNECTED, READY)
    s.receive(b"NICK alice\r\nUSER a 0 * :Alice A\r\nPING :later\r\n", 100.0)
    assert hub.drain() == [(link.R_REGISTER, CID, "alice", "~a", "127.0.0.1", "Alice A", "")]
    assert (s.phase, s.holding) == (REGISTERING, AWAITING_HUB)
    assert list(s.backlog) == [b"PING :later"]  # held until the hub answers
    assert output(s) == []
    hub.answer(hub.requests[0])
    assert (s.phase, s.holding) == (REGISTERED, READY)
    lines = output(s)
    assert [m.command for m in lines[:5]] == ["001", "002", "003", "004", "005"]
    assert lines[-1].command == "376"  # the PONG waits: the hub may still owe an answer
    [barrier] = hub.drain()
    assert barrier[0] == link.R_BARRIER
    hub.answer(barrier)
    lines = output(s)
    assert [m.command for m in lines] == ["PONG"]
    assert lines[-1].command == "PONG" and lines[-1].params == ["irc.test", "later"]


def test_cap_negotiation_holds_registration_until_cap_end():
    s, server, hub = new_session()
    s.receive(b"CAP LS 302\r\nNICK alice\r\nUSER a 0 * :Alice\r\n", 100.0)
    assert s.phase == NEGOTIATING and hub.drain() == []
    s.receive(b"CAP REQ :server-time message-tags\r\n", 100.0)
    assert output(s)[-1].params[1:] == ["ACK", "server-time message-tags"]
    s.receive(b"CAP END\r\n", 100.0)
    assert s.phase == REGISTERING and hub.drain()[0][0] == link.R_REGISTER
    assert s.tag_mode == 3


def test_a_refused_nick_goes_back_to_connected_and_the_next_one_is_asked_for():
    s, server, hub = new_session()
    s.receive(b"NICK taken\r\nUSER a 0 * :Alice\r\n", 100.0)
    hub.drain()
    hub.feed((link.D_NICK_REFUSED, CID, "taken"))
    assert (s.phase, s.holding, s.nick) == (CONNECTED, READY, None)
    assert [(m.command, m.params[:2]) for m in output(s)] == [("433", ["*", "taken"])]
    s.receive(b"NICK free\r\n", 100.0)
    assert hub.drain()[0][:3] == (link.R_REGISTER, CID, "free")


def test_an_illegal_transition_raises():
    s, server, hub = new_session()
    with pytest.raises(IllegalTransition):
        s.cap_ended()  # no CAP negotiation began
    register(s, hub)
    with pytest.raises(IllegalTransition):
        s.cap_began()  # registration is over


def test_answers_replayed_after_a_hub_restart_are_absorbed():
    """The old hub refused the nick and died before acknowledging; the registration is replayed
    and the new hub, where the nick is free, grants it: the client is registered under it."""
    s, server, hub = new_session()
    s.receive(b"NICK bob\r\nUSER b 0 * :Bob\r\n", 100.0)
    hub.drain()
    hub.feed((link.D_NICK_REFUSED, CID, "bob"))
    hub.feed((link.D_NICK_REFUSED, CID, "bob"))  # the replay, refused again: nothing changes
    assert (s.phase, s.holding, s.nick) == (CONNECTED, READY, None)
    hub.feed((E_USER, CID, "bob", "~b", "127.0.0.1", "Bob", 1.0))  # or granted this time
    assert (s.phase, s.holding, s.nick) == (REGISTERED, READY, "bob")
    assert [m.command for m in output(s)][-1] == "376"


def test_a_query_waits_behind_a_barrier_and_later_lines_wait_with_it():
    s, server, hub = new_session()
    register(s, hub)
    s.receive(b"JOIN #a\r\nWHO #a\r\nPING :after\r\n", 100.0)
    join, barrier = hub.drain()
    assert join == (link.R_JOIN, CID, "#a", "") and barrier[0] == link.R_BARRIER
    assert s.holding == AWAITING_BARRIER and list(s.backlog) == [b"WHO #a", b"PING :after"]
    hub.answer(join)
    assert output(s)[0].command == "JOIN"
    hub.answer(barrier)  # the replica now has alice in #a
    assert s.holding == READY and not s.backlog
    lines = output(s)
    assert [m.command for m in lines] == ["352", "315", "PONG"]
    assert lines[0].params[5] == "alice"


def test_a_local_answer_waits_for_the_hub_to_answer_what_came_before():
    s, server, hub = new_session()
    register(s, hub)
    s.receive(b"JOIN #a\r\nPING :one\r\n", 100.0)
    join, barrier = hub.drain()
    assert output(s) == []  # PONG must not overtake the JOIN's answers
    hub.answer(join)
    hub.answer(barrier)
    assert [m.command for m in output(s)] == ["JOIN", "353", "366", "PONG"]


def test_fakelag_holds_lines_until_the_clock_allows_them():
    s, server, hub = new_session(flood_control=True, flood_burst=2, flood_rate=1)
    register(s, hub)
    s.receive(b"PING :1\r\nPING :2\r\nPING :3\r\nPING :4\r\n", 200.0)
    assert [m.params[-1] for m in output(s)] == ["1", "2"]
    assert s.holding == THROTTLED and len(s.backlog) == 2
    hub.drain()
    assert hub.wakes == [pytest.approx(1.0)]
    s.unthrottle(201.0)
    assert [m.params[-1] for m in output(s)] == ["3"]
    s.unthrottle(202.0)
    assert [m.params[-1] for m in output(s)] == ["4"] and s.holding == READY


def test_a_long_backlog_pauses_reading_and_an_empty_one_resumes_it():
    s, server, hub = new_session()
    register(s, hub)
    s.receive(b"NICK bob\r\n" + b"PING :x\r\n" * 70, 100.0)  # the nick change holds the rest
    [nick] = hub.drain()
    assert nick == (link.R_NICK, CID, "bob") and hub.reading == [PAUSE_READING]
    hub.feed((link.D_NICK_REFUSED, CID, "bob"))
    hub.drain()
    assert hub.reading == [PAUSE_READING, RESUME_READING] and not s.backlog


def test_a_line_longer_than_the_readq_closes_with_its_reason():
    s, server, hub = new_session()
    s.receive(b"x" * 20000, 100.0)
    assert s.phase == CLOSED
    hub.drain()
    assert hub.closed == [("Input line too long (no line ending)", True)]
    s.receive(b"NICK late\r\n", 101.0)  # closed is final: nothing more happens
    assert hub.drain() == [] and output(s) == []


def test_ping_timeout_by_the_clock():
    s, server, hub = new_session(ping_interval=90, ping_timeout=60)
    register(s, hub, now=100.0)
    s.tick(150.0)
    assert output(s) == []
    s.tick(191.0)
    [ping] = output(s)
    assert ping.command == "PING" and s.ping_sent_at == 191.0
    s.tick(240.0)
    assert s.phase == REGISTERED
    s.tick(252.0)
    hub.drain()
    assert s.phase == CLOSED and hub.closed == [("Ping timeout: 152 seconds", True)]


def test_any_input_answers_the_ping():
    s, server, hub = new_session(ping_interval=90, ping_timeout=60)
    register(s, hub, now=100.0)
    s.tick(191.0)
    s.receive(b"PONG :irc.test\r\n", 200.0)
    s.tick(255.0)
    assert s.phase == REGISTERED


def test_registration_timeout_and_the_other_close_reasons():
    s, server, hub = new_session(registration_timeout=60)
    s.tick(161.0)
    hub.drain()
    assert hub.closed == [("Registration timed out", True)]

    s, server, hub = new_session()
    s.receive(b"GET / HTTP/1.1\r\n", 100.0)
    hub.drain()
    assert hub.closed == [("This is an IRC server, not a web server: connect to it with an IRC client", True)]

    s, server, hub = new_session()
    s.receive(b"QUIT :bye\r\n", 100.0)  # before registration: closed at once
    hub.drain()
    assert hub.closed == [("Quit: bye", True)]

    s, server, hub = new_session()
    register(s, hub)
    s.receive(b"QUIT :bye\r\n", 100.0)  # registered: through the hub, which lets the client go
    assert hub.drain() == [(link.R_QUIT, CID, "Quit: bye")] and s.holding == AWAITING_HUB
    hub.feed((link.D_REFUSE, CID, "Quit: bye"))
    hub.drain()
    assert hub.closed == [("Quit: bye", True)] and not s.announced

    s, server, hub = new_session()
    s.disconnected(ConnectionResetError(104, "Connection reset by peer"))
    hub.drain()
    assert hub.closed == [("Read error: Connection reset by peer", True)]


def test_a_labelled_command_is_answered_in_one_batch():
    s, server, hub = new_session()
    s.receive(b"CAP REQ :labeled-response batch\r\nNICK alice\r\nUSER a 0 * :Alice\r\nCAP END\r\n", 100.0)
    hub.run()
    s.receive(b"PING :settled\r\n", 100.0)
    hub.run()
    output(s)
    s.receive(b"@label=q1 MOTD\r\n", 100.0)
    lines = output(s)
    assert lines[0].command == "BATCH" and lines[0].tags["label"] == "q1"
    assert lines[-1].command == "BATCH" and lines[-1].params[0] == "-" + lines[0].params[0][1:]
    assert all(m.tags.get("batch") == lines[0].params[0][1:] for m in lines[1:-1])


def test_writes_go_to_the_outbox_once_per_iteration():
    s, server, hub = new_session()
    s.write(b"one\r\n")
    s.write(b"two\r\n")
    assert server.outbox.writers == [s] and s.outbuf == [b"one\r\n", b"two\r\n"]
