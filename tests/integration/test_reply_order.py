"""Every client is answered in the order it sent its commands, on any worker, with the hub busy
and across a hub restart.

Each client sends random commands, each followed by `PING <token>`, in one write. What it
receives is cut at its PONGs: the answers between PONG n-1 and PONG n must all belong to
command n, and command n's required answers must all be there. Other people's traffic (a line
from another client) may fall anywhere and is left out.
"""
from __future__ import annotations

import itertools
import os
import signal
import threading
from dataclasses import dataclass
from typing import Callable

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ircproto.message import Message
from workers.commands import COMMANDS
from tests.integration.harness import Client, Server, clients_on_distinct_workers, wait_for, worker_pid_of

WORKERS = 4
SHARED = "#shared"
_serial = itertools.count()


@dataclass(frozen=True)
class Expect:
    """What one command may be answered with, and what it must be answered with."""
    line: str
    allowed: Callable[[Message, str], bool]  # (message, token) -> is an answer to this command
    required: Callable[[list[Message], str], bool] = lambda answers, token: True


def numeric(*codes: str, token_at: int | None = None) -> Callable[[Message, str], bool]:
    def allowed(m: Message, token: str) -> bool:
        return m.command in codes and (token_at is None or m.params[token_at] == token)
    return allowed


def has(*codes: str, token_at: int | None = None) -> Callable[[list[Message], str], bool]:
    test = numeric(*codes, token_at=token_at)
    return lambda answers, token: any(test(m, token) for m in answers)


def own(command: str, param: int | None = None, value: Callable[[str], str] = lambda t: t):
    """The echo of the client's own action (its prefix is the source)."""
    def allowed(m: Message, token: str) -> bool:
        return m.command == command and (param is None or m.params[param] == value(token))
    return allowed


def named(code: str, at: int, value: Callable[[str], str]) -> Callable[[list[Message], str], bool]:
    """Required: this numeric, naming what the command named at position `at`."""
    return lambda answers, token: any(m.command == code and m.params[at] == value(token) for m in answers)


def labelled(allowed: Callable[[Message, str], bool], required: Callable[[list[Message], str], bool]) -> Expect:
    """The same command with a label: a labeled-response client gets it as one batch (or one
    labelled line); the others get the plain answers."""
    def batch_line(m: Message, token: str) -> bool:
        return m.command == "BATCH" or m.tags.get("label") == token
    return dict(allowed=lambda m, t: batch_line(m, t) or allowed(m, t),
                required=lambda a, t: any(m.tags.get("label") == t for m in a) or required(a, t))


def fail(command: str, code: str, at: int | None = None, value: str = "") -> Callable[[Message, str], bool]:
    """A standard reply (FAIL <command> <code> ...), naming value.format(t=token) at `at` when given."""
    def allowed(m: Message, token: str) -> bool:
        return m.command == "FAIL" and m.params[:2] == [command, code] and \
            (at is None or m.params[at] == value.format(t=token))
    return allowed


def failed(command: str, code: str, at: int | None = None, value: str = "") -> Callable[[list[Message], str], bool]:
    test = fail(command, code, at, value)
    return lambda answers, token: any(test(m, token) for m in answers)


def either(*tests: Callable[[Message, str], bool]) -> Callable[[Message, str], bool]:
    return lambda m, token: any(t(m, token) for t in tests)


def from_nickserv(text: str) -> Callable[[Message, str], bool]:
    """A NOTICE from NickServ saying text.format(t=token) (in any case)."""
    return lambda m, token: m.command == "NOTICE" and (m.source or "").startswith("NickServ!") and \
        text.format(t=token).upper() in m.params[-1].upper()


def own_channel(token: str) -> str:
    return "#o" + token


def marker(channel: Callable[[str], str]) -> Callable[[Message, str], bool]:
    """draft/read-marker: the MARKREAD of this channel (in a JOIN burst, or answering MARKREAD)."""
    return lambda m, token: m.command == "MARKREAD" and m.params[0] == channel(token)


# One entry per verb in the table (workers/commands.py), with tokens that tie answers to commands.
VOCABULARY: dict[str, Expect] = {
    "join": Expect("JOIN #o{t}", either(own("JOIN", 0, own_channel), numeric("353", "366", "332", "333"),
                                        marker(own_channel)), named("366", 1, own_channel)),
    "join_shared": Expect(f"JOIN {SHARED}", either(own("JOIN", 0, lambda t: SHARED), numeric("353", "366", "332", "333"),
                                                   marker(lambda t: SHARED))),
    "part": Expect("PART #o{t}", either(numeric("442", "403"), own("PART")), has("442", "403")),
    "topic_set": Expect("TOPIC #o{t} :{t}", numeric("442", "403"), has("442", "403")),
    "topic_shared": Expect(f"TOPIC {SHARED} :{{t}}", either(own("TOPIC", 1), numeric("482")),
                           lambda a, t: any(m.command == "482" or (m.command == "TOPIC" and m.params[1] == t) for m in a)),
    "topic_query": Expect(f"TOPIC {SHARED}", numeric("331", "332", "333"), has("331", "332")),
    "mode_key": Expect("MODE {mine} +k {t}", own("MODE", 2), lambda a, t: any(m.command == "MODE" for m in a)),
    "mode_voice": Expect("MODE {mine} +v {me}", own("MODE")),  # nothing once voiced
    "topic_mine": Expect("TOPIC {mine} :{t}", own("TOPIC", 1), lambda a, t: any(m.command == "TOPIC" for m in a)),
    "mode_query": Expect(f"MODE {SHARED}", numeric("324", "329"), has("324")),
    "mode_nochan": Expect("MODE #o{t} +v x", numeric("403"), has("403")),
    "umode": Expect("MODE {me} +w", own("MODE")),
    "names": Expect(f"NAMES {SHARED}", numeric("353", "366"), has("366")),
    "list": Expect("LIST #o{t}", numeric("321", "322", "323"), has("323")),
    "kick": Expect("KICK {mine} {t}", numeric("401"), has("401", token_at=1)),
    "invite": Expect("INVITE {t} {mine}", numeric("401"), has("401", token_at=1)),
    "privmsg_nobody": Expect("PRIVMSG {t} :hello", numeric("401", token_at=1), has("401", token_at=1)),
    "privmsg_nochan": Expect("PRIVMSG #o{t} :hello", numeric("403", "401"), has("403", "401")),
    "labelled_join": Expect("@label={t} JOIN #o{t}", **labelled(
        either(own("JOIN", 0, own_channel), numeric("353", "366", "332", "333"), marker(own_channel)),
        named("366", 1, own_channel))),
    "labelled_motd": Expect("@label={t} MOTD", **labelled(numeric("375", "372", "376", "422"), has("376", "422"))),
    "notice_nobody": Expect("NOTICE {t} :hello", lambda m, t: False),
    "privmsg_shared": Expect(f"PRIVMSG {SHARED} :{{t}}", own("PRIVMSG", 1)),
    "tagmsg_shared": Expect(f"@+typing=active TAGMSG {SHARED}", own("TAGMSG")),
    "who": Expect("WHO {t}", numeric("315", "352"), has("315", token_at=1)),
    "whois": Expect("WHOIS {t}", numeric("401", "318"), has("318", token_at=1)),
    "whois_self": Expect("WHOIS {me}", numeric("311", "319", "312", "313", "301", "317", "318"), has("318")),
    "whowas": Expect("WHOWAS {t}", numeric("406", "369"), has("369", token_at=1)),
    "ison": Expect("ISON {t}", numeric("303"), has("303")),
    "userhost": Expect("USERHOST {t}", numeric("302"), has("302")),
    "monitor_add": Expect("MONITOR + {t}", numeric("731", "734"),
                          lambda a, t: any(m.params[1:2] == [t] or m.command == "734" for m in a)),
    "monitor_list": Expect("MONITOR L", numeric("732", "733"), has("733")),
    "monitor_clear": Expect("MONITOR C", lambda m, t: False),
    "away": Expect("AWAY :{t}", numeric("306"), has("306")),
    "back": Expect("AWAY", numeric("305"), has("305")),
    "setname": Expect("SETNAME :{t}", own("SETNAME")),
    "motd": Expect("MOTD", numeric("375", "372", "376", "422"), has("376", "422")),
    "lusers": Expect("LUSERS", numeric("251", "252", "253", "254", "255", "265", "266"), has("266")),
    "version": Expect("VERSION", numeric("351", "005"), has("351")),
    "time": Expect("TIME", numeric("391"), has("391")),
    "admin": Expect("ADMIN", numeric("256", "257", "258", "259"), has("259")),
    "info": Expect("INFO", numeric("371", "374"), has("374")),
    "help": Expect("HELP {t}", numeric("524"), has("524")),
    "helpop": Expect("HELPOP {t}", numeric("524"), has("524")),
    "invitations": Expect("INVITE", numeric("336", "337"), has("337")),
    "rename": Expect("RENAME #o{t} #p{t}", numeric("403"), named("403", 1, own_channel)),
    "unknown": Expect("FOO{t}", numeric("421"), has("421")),
    "cap_list": Expect("CAP LIST", lambda m, t: m.command == "CAP", lambda a, t: any(m.command == "CAP" for m in a)),
    "pass": Expect("PASS {t}", numeric("462"), has("462")),
    "user": Expect("USER a 0 * :b", numeric("462"), has("462")),
    "pong": Expect("PONG :{t}", lambda m, t: False),
    "oper": Expect("OPER {t} {t}", numeric("491", "464"), has("491", "464")),
    "kill": Expect("KILL {t} :bye", numeric("481"), has("481")),
    "wallops": Expect("WALLOPS :{t}", numeric("481"), has("481")),
    "rehash": Expect("REHASH", numeric("481"), has("481")),
    "chghost": Expect("CHGHOST {t} a b", numeric("481"), has("481")),
    "nick_bad": Expect("NICK #{t}", numeric("432"), has("432")),
    "nick_same": Expect("NICK {me}", lambda m, t: False),
    # Refused by the worker itself (a FAIL), so they hold nothing; a query the hub answers
    # belongs here too once the hub answers R_HISTORY.
    "chathistory_bad": Expect("CHATHISTORY SIDEWAYS{t} #o{t} * 5", fail("CHATHISTORY", "INVALID_PARAMS", 2, "SIDEWAYS{t}"),
                              failed("CHATHISTORY", "INVALID_PARAMS", 2, "SIDEWAYS{t}")),
    "search_bad": Expect("SEARCH in=#o{t};limit=none", fail("SEARCH", "INVALID_PARAMS"), failed("SEARCH", "INVALID_PARAMS")),
    # Answered by the hub after a round trip to the history store, the client's later lines held meanwhile.
    "redact_unknown": Expect("REDACT {mine} {t}", fail("REDACT", "UNKNOWN_MSGID", 3, "{t}"),
                             failed("REDACT", "UNKNOWN_MSGID", 3, "{t}")),
    "redact_nochan": Expect("REDACT #o{t} x", numeric("403"), named("403", 1, own_channel)),
    "markread": Expect("MARKREAD #o{t}", marker(own_channel), lambda a, t: any(marker(own_channel)(m, t) for m in a)),
    "markread_bad": Expect("MARKREAD #o{t} timestamp=never", fail("MARKREAD", "INVALID_PARAMS"),
                           failed("MARKREAD", "INVALID_PARAMS")),
    # Accounts: answered by the worker (an unknown mechanism, a weak password), never by the hub.
    "authenticate_bad": Expect("AUTHENTICATE NOSUCH{t}", numeric("908", "904"),
                               lambda a, t: any(m.command == "904" for m in a)),
    "register_weak": Expect("REGISTER * * short", fail("REGISTER", "WEAK_PASSWORD"),
                            failed("REGISTER", "WEAK_PASSWORD")),
    # NickServ: answered by the worker, from the replica once a barrier is back (a PRIVMSG to it too).
    "ns_info": Expect("NS INFO {t}", from_nickserv("Account {t} is not registered"),
                      lambda a, t: any(from_nickserv("Account {t}")(m, t) for m in a)),
    "nickserv_unknown": Expect("NICKSERV FROB{t}", from_nickserv("Unknown command FROB{t}"),
                               lambda a, t: any(from_nickserv("FROB{t}")(m, t) for m in a)),
    "privmsg_nickserv": Expect("PRIVMSG NickServ :INFO {t}", from_nickserv("Account {t} is not registered"),
                               lambda a, t: any(from_nickserv("Account {t}")(m, t) for m in a)),
}


@dataclass
class Sent:
    kind: str
    token: str
    start: int  # where the client's received messages stood when this sequence was sent


def is_others_traffic(m: Message, me: str, server_name: str) -> bool:
    """A line that another client caused (or a server PING): not an answer to us. NickServ's
    NOTICEs answer us."""
    if m.command == "PING":
        return True
    source = m.source or server_name
    return "!" in source and source.split("!")[0] not in (me, "NickServ")


def check_order(client: Client, sent: list[Sent], server_name: str, complete: bool = True) -> None:
    """Cut what the client received at its PONGs and match each piece to its command."""
    me = client.nick
    segments: list[list[Message]] = [[]]
    tokens = [s.token for s in sent]
    seen_pongs: list[str] = []
    for m in client.received[sent[0].start:]:
        if m.command == "PONG" and m.params[-1] in tokens:
            seen_pongs.append(m.params[-1])
            segments.append([])
        elif not is_others_traffic(m, me, server_name):
            segments[-1].append(m)
    assert seen_pongs == tokens, f"{me}: PONGs out of order or missing: {seen_pongs} != {tokens}"
    assert segments[-1] == [], f"{me}: answers after the last PONG: {segments[-1]}"
    for i, (item, answers) in enumerate(zip(sent, segments)):
        expect = VOCABULARY[item.kind]
        for m in answers:
            assert expect.allowed(m, item.token), (
                f"{me}: command {i} ({item.kind} {item.token}) got {m.command} {m.params}, "
                f"which belongs to another command; before: {[s.kind for s in sent[max(0, i - 2):i]]}")
        if complete:
            assert expect.required(answers, item.token), (
                f"{me}: command {i} ({item.kind}) is missing its answer before PONG {item.token}; got "
                f"{[(m.command, m.params) for m in answers]}; everything: "
                f"{[(m.source, m.command, m.params) for m in client.received[sent[0].start:]]}")


class Load:
    """Members of one channel on every worker, each sending bursts to it while a thread reads
    everything back, so the hub always has channel traffic to route: about 2,000 messages a
    second (8,000 deliveries), paced so that a slow machine is loaded, not swamped."""

    def __init__(self, server: Server) -> None:
        self.clients = clients_on_distinct_workers(server, WORKERS)
        for n, c in enumerate(self.clients):
            c.register(f"load{n}")
            c.send("JOIN #load")
            c.expect("366")
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        burst = b"".join(b"PRIVMSG #load :%d\r\n" % i for i in range(20))
        for c in self.clients:
            c.sock.setblocking(False)
        while not self.stopping.is_set():
            for c in self.clients:
                try:
                    c.sock.send(burst)
                except BlockingIOError:
                    pass
                try:
                    while c.sock.recv(1 << 20):
                        pass
                except (BlockingIOError, InterruptedError):
                    pass
            self.stopping.wait(0.04)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        for c in self.clients:
            c.close()


@pytest.fixture(scope="module")
def busy():
    srv = Server(WORKERS)
    load = Load(srv)
    yield srv
    load.stop()
    srv.stop()
    assert "Traceback" not in srv.stderr, srv.stderr[-3000:]


def participants(server: Server, count: int) -> list[Client]:
    """`count` registered clients over every worker, half with echo-message, message-tags,
    labeled-response and draft/read-marker, all in the shared channel and each in a channel of
    its own."""
    clients: list[Client] = []
    while len(clients) < count:
        clients.extend(clients_on_distinct_workers(server, min(WORKERS, count - len(clients))))
    for n, c in enumerate(clients):
        if n % 2:
            c.send("CAP REQ :echo-message message-tags server-time labeled-response batch draft/read-marker")
            c.send("CAP END")
        c.register(f"p{next(_serial)}")
        c.send(f"JOIN {SHARED},{mine(c)}")
        c.expect("366", c.nick, mine(c))
    return clients


def mine(c: Client) -> str:
    """The client's own channel, where it is the operator."""
    return "#c" + c.nick


def send_sequence(client: Client, kinds: list[str]) -> list[Sent]:
    start = len(client.received)
    sent = [Sent(kind, f"t{next(_serial)}", start) for kind in kinds]
    data = "".join(VOCABULARY[s.kind].line.format(t=s.token, me=client.nick, mine=mine(client))
                   + f"\r\nPING :{s.token}\r\n"
                   for s in sent)
    client.cursor = start
    client.send(data.encode())
    return sent


sequences = st.lists(st.lists(st.sampled_from(sorted(VOCABULARY)), min_size=1, max_size=25), min_size=8, max_size=8)


@pytest.fixture(scope="module")
def crowd(busy):
    """Eight participants on the four workers, placed once for every example."""
    clients = participants(busy, 8)
    assert len({worker_pid_of(busy, c) for c in clients}) == WORKERS
    yield clients
    for c in clients:
        c.close()


def leave_what_the_example_joined(c: Client) -> None:
    """Back to the shared channel and its own, so joins never pile up to CHANLIMIT."""
    c.send(f"JOIN 0\r\nJOIN {SHARED},{mine(c)}")
    c.expect("366", c.nick, mine(c))


@pytest.mark.timeout(240)  # eight examples, each a full round of eight clients on a loaded hub
@settings(max_examples=8, deadline=None, phases=[Phase.generate],  # shrinking would restart servers for minutes
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(sequences)
def test_random_commands_are_answered_in_order_on_every_worker(crowd, per_client):
    sent = [send_sequence(c, kinds) for c, kinds in zip(crowd, per_client)]
    for c, items in zip(crowd, sent):
        c.expect("PONG", where=lambda m, last=items[-1].token: m.params[-1] == last, timeout=20)
    for c, items in zip(crowd, sent):
        check_order(c, items, "hubchat.local")
    for c in crowd:
        leave_what_the_example_joined(c)


def test_the_vocabulary_covers_every_verb():
    """PING follows every command; QUIT ends the connection, so it has a test of its own."""
    used = {expect.line.split()[1] if expect.line.startswith("@") else expect.line.split()[0]
            for expect in VOCABULARY.values()}
    assert set(COMMANDS) - {"PING", "QUIT"} <= {verb.upper() for verb in used}


def test_the_reported_sequence_on_every_worker(busy):
    """JOIN, PING, MODE, PING, TOPIC, PING in one write (the report in issue 13)."""
    for c in participants(busy, WORKERS):
        chan = f"#r{next(_serial)}"
        start = c.cursor = len(c.received)
        c.send(f"JOIN {chan}\r\nPING :a\r\nMODE {chan} +v {c.nick}\r\nPING :b\r\nTOPIC {chan} :hi\r\nPING :c\r\n")
        c.expect("PONG", where=lambda m: m.params[-1] == "c", timeout=20)
        mine = [(m.command, m.params[-1]) for m in c.received[start:] if not is_others_traffic(m, c.nick, "")]
        order = [x for x in mine if x[0] in ("JOIN", "366", "PONG", "MODE", "TOPIC")]
        assert order == [("JOIN", chan), ("366", "End of /NAMES list."), ("PONG", "a"), ("MODE", c.nick),
                         ("PONG", "b"), ("TOPIC", "hi"), ("PONG", "c")], order
        c.close()


def test_order_holds_across_a_hub_restart():
    """The hub is SIGKILLed while clients on every worker have commands in flight: whatever the
    replay re-sends, no answer lands after a later command's PONG."""
    srv = Server(WORKERS)
    try:
        clients = participants(srv, WORKERS * 2)
        kinds = ["join", "privmsg_shared", "mode_query", "time", "topic_shared", "ison", "names", "away",
                 "whois", "back", "motd", "kick", "markread", "redact_unknown"] * 4
        hub = srv.current_hub()
        sent = [send_sequence(c, kinds) for c in clients]
        os.kill(hub, signal.SIGKILL)
        wait_for(lambda: srv.current_hub() not in (None, hub), what="a new hub")
        for c, items in zip(clients, sent):
            c.expect("PONG", where=lambda m, last=items[-1].token: m.params[-1] == last, timeout=30)
        for c, items in zip(clients, sent):
            # Replayed requests are not answered twice with errors, so an answer may be missing;
            # none may be out of place.
            check_order(c, items, "hubchat.local", complete=False)
    finally:
        srv.stop()
