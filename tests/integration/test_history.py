"""IRCv3 history against the real server: CHATHISTORY (draft/chathistory, draft/event-playback)
and SEARCH (soju.im/search), asked by clients on different workers (proved with psutil) about
messages sent through several workers.

Every message is sent one at a time and awaited by the other party before the next, a few
milliseconds apart, so the history's order is the order sent and no two messages share a
millisecond; a timestamp reference is always taken halfway between two messages, so the
millisecond rounding of server-time never decides a result.

What the store may choose, these tests expect as follows: AROUND with an odd limit is centred
on the referenced message, which it includes; TARGETS lists its conversations in ascending order
of their latest message; SEARCH's `text` matches a word of the message.
"""
from __future__ import annotations

import itertools
import time

import pytest

from ircproto.chathistory import format_timestamp, parse_timestamp
from tests.integration.harness import Client, Server, clients_on_distinct_workers


CAPS = "batch server-time message-tags echo-message draft/chathistory"
ANSWER_WAIT = 5.0  # seconds for a history answer: it is one hub round trip and a store read
_serial = itertools.count()


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def answering(server):
    """Whether the hub answers history queries at all: asked once, so that, while it does not,
    each test fails at once instead of waiting out every query."""
    probe, = with_caps(server, (name("probe"), "batch"))  # without batch, an empty answer is nothing
    probe.send("CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z timestamp=2000-01-02T00:00:00Z 1")
    try:
        probe.expect_any("BATCH", "FAIL", "CHATHISTORY", timeout=ANSWER_WAIT)
        return True
    except AssertionError:
        return False
    finally:
        probe.close()


@pytest.fixture
def history(answering):
    if not answering:
        pytest.fail("the hub does not answer CHATHISTORY (R_HISTORY) yet")


def name(prefix: str) -> str:
    return f"{prefix}{next(_serial)}_{time.monotonic_ns() % 10**6}"


def with_caps(server: Server, *nick_caps: tuple[str, str]) -> list[Client]:
    """Registered clients, each on its own worker (psutil), each with its own capabilities."""
    clients = clients_on_distinct_workers(server, len(nick_caps))
    for client, (nick, caps) in zip(clients, nick_caps):
        client.nick = nick
        client.send(f"CAP REQ :{caps}")
        assert client.expect("CAP").params[1:] == ["ACK", caps]
        client.send(f"NICK {nick}\r\nUSER u 0 * :Real {nick}\r\nCAP END")
        client.expect("376")
    assert len({c.worker_pid for c in clients}) == len(clients)  # type: ignore[attr-defined]
    return clients


def join(channel: str, *clients: Client) -> None:
    for c in clients:
        c.send(f"JOIN {channel}")
        c.expect("366", c.nick, channel)
    for c in clients[:-1]:
        c.expect("JOIN", channel, where=lambda m: m.source.startswith(clients[-1].nick + "!"))


def say(sender: Client, target: str, text: str, *readers: Client, command: str = "PRIVMSG") -> dict:
    """Send one message and wait until the sender (echo-message) and every reader have it; its
    msgid and time as they were shown."""
    sender.send(f"{command} {target} :{text}")
    echo = sender.expect(command, where=lambda m: m.params[-1] == text)
    for reader in readers:
        seen = reader.expect(command, where=lambda m: m.params[-1] == text)
        assert seen.tags["msgid"] == echo.tags["msgid"]
    time.sleep(0.005)  # the next message is a few milliseconds later
    return {"text": text, "msgid": echo.tags["msgid"], "time": echo.tags["time"], "command": command,
            "source": echo.source}


def ask(client: Client, line: str) -> tuple[list[str], list]:
    """Send a history command; the batch's opening parameters and the messages inside it."""
    start = len(client.received)
    client.send(line)
    opening = client.expect("BATCH", where=lambda m: m.params[0].startswith("+"), timeout=ANSWER_WAIT)
    ref = opening.params[0][1:]
    client.expect("BATCH", "-" + ref, timeout=ANSWER_WAIT)
    inside = [m for m in client.received[start:] if m.tags.get("batch") == ref]
    return opening.params[1:], inside


def texts(messages: list) -> list[str]:
    return [m.params[-1] for m in messages]


def midway(a: dict, b: dict) -> str:
    """A timestamp halfway between two messages' shown times."""
    return "timestamp=" + format_timestamp((parse_timestamp(a["time"]) + parse_timestamp(b["time"])) // 2)


@pytest.fixture(scope="module")
def lobby(server):
    """alice and bob on different workers in one channel, with six messages, alternately from each."""
    alice, bob = with_caps(server, (name("alice"), CAPS), (name("bob"), CAPS))
    channel = "#" + name("hist")
    join(channel, alice, bob)
    sent = []
    for i, word in enumerate(["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]):
        sender, reader = (alice, bob) if i % 2 == 0 else (bob, alice)
        sent.append(say(sender, channel, f"{word} {i}", reader))
    return alice, bob, channel, sent


def test_latest(history, lobby):
    alice, bob, channel, sent = lobby
    header, got = ask(alice, f"CHATHISTORY LATEST {channel} * 10")
    assert header == ["chathistory", channel]
    assert texts(got) == [m["text"] for m in sent]
    assert [m.tags["msgid"] for m in got] == [m["msgid"] for m in sent]
    assert [m.tags["time"] for m in got] == [m["time"] for m in sent]  # the times everyone was shown
    assert [m.source for m in got] == [m["source"] for m in sent] and {m.command for m in got} == {"PRIVMSG"}
    _, bobs = ask(bob, f"CHATHISTORY LATEST {channel} * 10")  # the same from the other worker
    assert [m.tags["msgid"] for m in bobs] == [m["msgid"] for m in sent]
    _, last_two = ask(alice, f"CHATHISTORY LATEST {channel} * 2")
    assert texts(last_two) == [sent[4]["text"], sent[5]["text"]]
    _, since = ask(bob, f"CHATHISTORY LATEST {channel} msgid={sent[3]['msgid']} 10")  # after it, excluded
    assert texts(since) == [sent[4]["text"], sent[5]["text"]]


def test_before_and_after(history, lobby):
    alice, bob, channel, sent = lobby
    _, got = ask(alice, f"CHATHISTORY BEFORE {channel} msgid={sent[3]['msgid']} 2")
    assert texts(got) == [sent[1]["text"], sent[2]["text"]]  # the two closest, oldest first
    _, got = ask(bob, f"CHATHISTORY AFTER {channel} msgid={sent[1]['msgid']} 3")
    assert texts(got) == [sent[2]["text"], sent[3]["text"], sent[4]["text"]]
    _, got = ask(alice, f"CHATHISTORY BEFORE {channel} {midway(sent[2], sent[3])} 10")
    assert texts(got) == [m["text"] for m in sent[:3]]
    _, got = ask(bob, f"CHATHISTORY AFTER {channel} {midway(sent[2], sent[3])} 10")
    assert texts(got) == [m["text"] for m in sent[3:]]
    _, got = ask(alice, f"CHATHISTORY BEFORE {channel} msgid={sent[0]['msgid']} 10")
    assert got == []


def test_around(history, lobby):
    alice, bob, channel, sent = lobby
    _, got = ask(alice, f"CHATHISTORY AROUND {channel} msgid={sent[3]['msgid']} 3")
    assert texts(got) == [sent[2]["text"], sent[3]["text"], sent[4]["text"]]


def test_between(history, lobby):
    alice, bob, channel, sent = lobby
    first, last = sent[0]["msgid"], sent[5]["msgid"]
    _, got = ask(alice, f"CHATHISTORY BETWEEN {channel} msgid={first} msgid={last} 10")
    assert texts(got) == [m["text"] for m in sent[1:5]]  # both ends excluded
    _, got = ask(bob, f"CHATHISTORY BETWEEN {channel} msgid={first} msgid={last} 2")
    assert texts(got) == [sent[1]["text"], sent[2]["text"]]  # counted from the first reference
    _, got = ask(bob, f"CHATHISTORY BETWEEN {channel} msgid={last} msgid={first} 2")
    assert texts(got) == [sent[3]["text"], sent[4]["text"]]  # backwards in time; still oldest first
    _, got = ask(alice, f"CHATHISTORY BETWEEN {channel} {midway(sent[0], sent[1])} {midway(sent[3], sent[4])} 10")
    assert texts(got) == [m["text"] for m in sent[1:4]]


def test_a_labelled_query_carries_its_label_on_the_batch(history, server, lobby):
    _, _, channel, sent = lobby
    carol, = with_caps(server, (name("carol"), CAPS + " labeled-response"))
    join(channel, carol)
    start = len(carol.received)
    carol.send(f"@label=q1 CHATHISTORY LATEST {channel} * 1")
    opening = carol.expect("BATCH", where=lambda m: m.params[0].startswith("+"), timeout=ANSWER_WAIT)
    assert opening.tags.get("label") == "q1" and opening.params[1:] == ["chathistory", channel]
    carol.expect("BATCH", "-" + opening.params[0][1:], timeout=ANSWER_WAIT)
    assert [m.tags.get("label") for m in carol.received[start:]].count("q1") == 1


def test_a_non_member_is_refused_and_carries_on(history, server, lobby):
    _, _, channel, _ = lobby
    mallory, = with_caps(server, (name("mallory"), CAPS))
    mallory.send(f"CHATHISTORY LATEST {channel} * 10\r\nPING :after")
    fail = mallory.expect("FAIL", timeout=ANSWER_WAIT)
    assert fail.params == ["CHATHISTORY", "INVALID_TARGET", "LATEST", channel, "Messages could not be retrieved"]
    mallory.expect("PONG", where=lambda m: m.params[-1] == "after")  # the session resumed
    nowhere = "#" + name("nowhere")
    mallory.send(f"CHATHISTORY BEFORE {nowhere} msgid=x 10")
    assert mallory.expect("FAIL", timeout=ANSWER_WAIT).params[:4] == ["CHATHISTORY", "INVALID_TARGET", "BEFORE", nowhere]
    assert not [m for m in mallory.received if m.command == "BATCH"]


def test_an_empty_channel_is_an_empty_batch(history, server):
    alice, = with_caps(server, (name("alice"), CAPS))
    channel = "#" + name("quiet")
    join(channel, alice)
    header, got = ask(alice, f"CHATHISTORY LATEST {channel} * 10")
    assert header == ["chathistory", channel] and got == []


def test_private_history_for_both_parties_and_not_a_later_user_of_the_nick(history, server):
    alice_nick, bob_nick = name("pa"), name("pb")
    alice, bob = with_caps(server, (alice_nick, CAPS), (bob_nick, CAPS))
    sent = [say(alice, bob_nick, "hello bob", bob), say(bob, alice_nick, "hi alice", alice),
            say(alice, bob_nick, "how are you?", bob), say(bob, alice_nick, "fine", alice, command="NOTICE")]
    header, got = ask(alice, f"CHATHISTORY LATEST {bob_nick} * 10")
    assert header == ["chathistory", bob_nick]
    assert [(m.command, m.params, m.tags["msgid"]) for m in got] == \
        [(m["command"], [bob_nick if i % 2 == 0 else alice_nick, m["text"]], m["msgid"]) for i, m in enumerate(sent)]
    _, bobs = ask(bob, f"CHATHISTORY LATEST {alice_nick} * 10")
    assert [m.tags["msgid"] for m in bobs] == [m["msgid"] for m in sent]
    _, later = ask(bob, f"CHATHISTORY AFTER {alice_nick} msgid={sent[1]['msgid']} 10")
    assert texts(later) == ["how are you?", "fine"]
    # alice's conversation with bob is not bob's nick's: whoever takes the nick next sees none of it
    bob.send("QUIT :gone")
    bob.expect_closed()
    impostor, = with_caps(server, (bob_nick, CAPS))
    header, got = ask(impostor, f"CHATHISTORY LATEST {alice_nick} * 10")
    assert header == ["chathistory", alice_nick] and got == []
    _, targets = ask(impostor, "CHATHISTORY TARGETS timestamp=2000-01-01T00:00:00Z "
                               f"timestamp={format_timestamp(int(time.time() * 1e6) + 60_000_000)} 10")
    assert targets == []


def test_targets(history, server):
    alice_nick, bob_nick, carol_nick = name("ta"), name("tb"), name("tc")
    alice, bob, carol = with_caps(server, (alice_nick, CAPS), (bob_nick, CAPS), (carol_nick, CAPS))
    channel = "#" + name("TChan")  # shown as spelt, though the store keeps it folded
    join(channel, alice, bob)
    sent = [say(alice, bob_nick, "psst", bob), say(bob, channel, "in the channel", alice),
            say(carol, alice_nick, "hello from carol", alice), say(alice, channel, "later in the channel", bob)]
    before = format_timestamp(parse_timestamp(sent[0]["time"]) - 60_000_000)
    after = format_timestamp(parse_timestamp(sent[-1]["time"]) + 60_000_000)
    header, got = ask(alice, f"CHATHISTORY TARGETS timestamp={before} timestamp={after} 10")
    assert header == ["draft/chathistory-targets"]
    assert {m.command for m in got} == {"CHATHISTORY"} and {m.params[0] for m in got} == {"TARGETS"}
    latest = {bob_nick: sent[0]["time"], carol_nick: sent[2]["time"], channel: sent[3]["time"]}
    assert [m.params[1] for m in got] == [bob_nick, carol_nick, channel]  # by their latest message
    for m in got:  # each with the time of its latest message, as it was shown (to the millisecond)
        assert abs(parse_timestamp(m.params[2]) - parse_timestamp(latest[m.params[1]])) <= 1000
    _, bounded = ask(alice, f"CHATHISTORY TARGETS {midway(sent[1], sent[2])} timestamp={after} 10")
    assert [m.params[1] for m in bounded] == [carol_nick, channel]  # bob's conversation ended before
    _, one = ask(alice, f"CHATHISTORY TARGETS timestamp={before} timestamp={after} 1")
    assert len(one) == 1


def test_event_playback_shows_joins_and_parts(history, server):
    watcher_nick, plain_nick, visitor_nick = name("ew"), name("ep"), name("ev")
    watcher, plain, visitor = with_caps(server, (watcher_nick, CAPS + " draft/event-playback"),
                                        (plain_nick, CAPS), (visitor_nick, CAPS))
    channel = "#" + name("events")
    join(channel, watcher, plain)
    say(watcher, channel, "before the visit", plain)
    visitor.send(f"JOIN {channel}")
    visitor.expect("366", visitor_nick, channel)
    for c in (watcher, plain):
        c.expect("JOIN", channel, where=lambda m: m.source.startswith(visitor_nick + "!"))
    say(visitor, channel, "just passing", watcher, plain)
    visitor.send(f"PART {channel} :bye")
    for c in (watcher, plain):
        c.expect("PART", channel, where=lambda m: m.source.startswith(visitor_nick + "!"))
    say(plain, channel, "after the visit", watcher)
    _, got = ask(watcher, f"CHATHISTORY LATEST {channel} * 20")
    events = [(m.command, m.source.split("!")[0], m.params[-1]) for m in got
              if m.command in ("PRIVMSG", "PART") or m.source.startswith(visitor_nick + "!")]
    assert events == [("PRIVMSG", watcher_nick, "before the visit"), ("JOIN", visitor_nick, channel),
                      ("PRIVMSG", visitor_nick, "just passing"), ("PART", visitor_nick, "bye"),
                      ("PRIVMSG", plain_nick, "after the visit")]
    assert all("msgid" in m.tags and "time" in m.tags for m in got)
    _, plain_view = ask(plain, f"CHATHISTORY LATEST {channel} * 20")  # without event-playback: messages only
    assert texts(plain_view) == ["before the visit", "just passing", "after the visit"]


def test_search(history, lobby):
    alice, bob, channel, sent = lobby
    header, got = ask(alice, f"SEARCH in={channel};text=charlie")
    assert header == ["soju.im/search"] and [m.tags["msgid"] for m in got] == [sent[2]["msgid"]]
    _, from_bob = ask(alice, f"SEARCH in={channel};from={bob.nick}")
    assert texts(from_bob) == [sent[1]["text"], sent[3]["text"], sent[5]["text"]]
    _, limited = ask(bob, f"SEARCH in={channel};from={bob.nick};limit=1")
    assert len(limited) == 1
    _, none = ask(bob, f"SEARCH in={channel};text=zulu")
    assert none == []


def test_bad_syntax_is_refused_without_the_hub(lobby):
    alice, _, channel, _ = lobby
    alice.send(f"CHATHISTORY LATEST {channel} * 0\r\nCHATHISTORY SIDEWAYS {channel} * 5\r\n"
               f"CHATHISTORY TARGETS msgid=x timestamp=2000-01-01T00:00:00Z 5\r\nSEARCH in={channel};limit=none")
    fails = [alice.expect("FAIL").params for _ in range(4)]
    assert fails == [["CHATHISTORY", "INVALID_PARAMS", "LATEST", "0", "Invalid limit"],
                     ["CHATHISTORY", "INVALID_PARAMS", "SIDEWAYS", "Unknown subcommand"],
                     ["CHATHISTORY", "INVALID_MSGREFTYPE", "TARGETS", "*", "msgid=x",
                      "Only timestamp references are allowed here"],
                     ["SEARCH", "INVALID_PARAMS", "limit", "Invalid limit"]]
