"""draft/message-redaction (REDACT) and draft/read-marker (MARKREAD) against the real server,
with clients on different workers (proved with psutil): a redacted message leaves history and
its REDACT reaches exactly the members with the capability; who may redact what; read markers
set, read, never moved back, sent with each JOIN, and kept by the store across a SIGKILL of the
hub and a restart.

"Nothing arrives" is proved by order, not by waiting: a channel's traffic reaches each member in
the hub's order, so once a message sent after the REDACT has arrived, a REDACT meant for that
member would have arrived before it.
"""
from __future__ import annotations

import os
import signal
import sqlite3

import pytest

from history.service import DATABASE
from ircproto.chathistory import parse_timestamp
from tests.integration.harness import Server, stopped, wait_for
from tests.integration.test_history import ANSWER_WAIT, ask, join, name, say, texts, with_caps

PLAIN = "batch server-time message-tags echo-message draft/chathistory"
CAPS = PLAIN + " draft/message-redaction draft/read-marker"


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()


def channel_of(server: Server, *caps: str):
    """Clients on distinct workers, the first the channel's operator, all in a new channel."""
    clients = with_caps(server, *((name(f"u{i}_"), c) for i, c in enumerate(caps)))
    channel = "#" + name("red")
    join(channel, *clients)
    return channel, clients


def answer(client, line: str, *commands: str):
    client.send(line)
    return client.expect_any(*commands, timeout=ANSWER_WAIT)


# --- REDACT ---------------------------------------------------------------------------------------
def test_an_author_redacts_their_message_it_leaves_history_and_only_members_with_the_cap_are_told(server):
    channel, (op, bob, old) = channel_of(server, CAPS, CAPS, PLAIN)  # bob is a plain member
    kept = say(bob, channel, "first, kept", op, old)
    gone = say(bob, channel, "second, regretted", op, old)
    bob.send(f"REDACT {channel} {gone['msgid']} :wrong window")
    for member in (bob, op):  # the author's own client too: it answers the REDACT
        redact = member.expect("REDACT", timeout=ANSWER_WAIT)
        assert redact.params == [channel, gone["msgid"], "wrong window"]
        assert redact.source == gone["source"] and redact.tags["msgid"] != gone["msgid"] and redact.tags["time"]
    say(op, channel, "after the redaction", bob, old)
    assert "REDACT" not in [m.command for m in old.received]  # the message after it came, and no REDACT before
    for reader in (op, old):
        _, got = ask(reader, f"CHATHISTORY LATEST {channel} * 10")
        assert texts(got) == [kept["text"], "after the redaction"]
    _, found = ask(bob, f"SEARCH in={channel};text=regretted")
    assert found == []  # gone from the words too


def test_a_plain_member_may_not_redact_someone_elses_message_but_an_operator_may(server):
    channel, (op, alice, bob) = channel_of(server, CAPS, CAPS, CAPS)
    mine = say(alice, channel, "alice speaks", op, bob)
    fail = answer(bob, f"REDACT {channel} {mine['msgid']}", "FAIL", "REDACT")
    assert fail.params == ["REDACT", "REDACT_FORBIDDEN", channel, mine["msgid"],
                           "You are not authorised to delete this message"]
    op.send(f"REDACT {channel} {mine['msgid']} :spam")
    for member in (op, alice, bob):
        assert member.expect("REDACT", timeout=ANSWER_WAIT).params == [channel, mine["msgid"], "spam"]
    _, got = ask(alice, f"CHATHISTORY LATEST {channel} * 10")
    assert mine["text"] not in texts(got)


def test_refusals_unknown_message_other_channel_non_member_and_the_session_carries_on(server):
    channel, (op, alice) = channel_of(server, CAPS, CAPS)
    elsewhere, (carol,) = channel_of(server, CAPS)
    there = say(carol, elsewhere, "in another channel")
    fail = answer(op, f"REDACT {channel} nosuchid\r\nPING :after", "FAIL", "REDACT")
    assert fail.params == ["REDACT", "UNKNOWN_MSGID", channel, "nosuchid", "This message does not exist or is too old"]
    op.expect("PONG", where=lambda m: m.params[-1] == "after")
    # An operator of one channel cannot reach a message of another by naming their own.
    assert answer(op, f"REDACT {channel} {there['msgid']}", "FAIL", "REDACT").params[1] == "UNKNOWN_MSGID"
    refused = answer(op, f"REDACT {elsewhere} {there['msgid']}\r\nPING :again", "442", "REDACT", "FAIL")
    assert refused.command == "442" and refused.params[1] == elsewhere
    op.expect("PONG", where=lambda m: m.params[-1] == "again")
    assert answer(op, f"REDACT #{name('none')} x", "403", "FAIL").command == "403"
    assert answer(op, "REDACT #bad,name x", "FAIL").params[:2] == ["REDACT", "INVALID_TARGET"]
    _, got = ask(carol, f"CHATHISTORY LATEST {elsewhere} * 10")
    assert texts(got) == [there["text"]]


def test_a_private_message_is_redacted_by_its_sender_for_both(server):
    alice, bob = with_caps(server, (name("pa"), CAPS), (name("pb"), CAPS))
    sent = say(alice, bob.nick, "just between us", bob)
    fail = answer(bob, f"REDACT {alice.nick} {sent['msgid']}", "FAIL", "REDACT")
    assert fail.params[1] == "REDACT_FORBIDDEN"  # only the sender
    alice.send(f"@label=r1 REDACT {bob.nick} {sent['msgid']}")
    assert alice.expect("REDACT", timeout=ANSWER_WAIT).params == [bob.nick, sent["msgid"]]
    assert bob.expect("REDACT", timeout=ANSWER_WAIT).params == [bob.nick, sent["msgid"]]
    for reader, other in ((alice, bob), (bob, alice)):
        _, got = ask(reader, f"CHATHISTORY LATEST {other.nick} * 10")
        assert got == []


def test_a_labelled_redact_is_one_labelled_response(server):
    channel, (op, alice) = channel_of(server, CAPS + " labeled-response", CAPS)
    sent = say(op, channel, "to be taken back", alice)
    op.send(f"@label=x7 REDACT {channel} {sent['msgid']}")
    redact = op.expect("REDACT", timeout=ANSWER_WAIT)
    assert redact.tags.get("label") == "x7"
    op.send("@label=x8 REDACT " + channel + " nosuch")
    assert op.expect("FAIL", timeout=ANSWER_WAIT).tags.get("label") == "x8"


def test_a_redact_caught_in_a_hub_restart_is_answered_once_and_still_redacts():
    srv = Server(2)
    try:
        alice, bob = with_caps(srv, ("alice", CAPS), ("bob", CAPS))
        join("#crash", alice, bob)
        gone = say(alice, "#crash", "caught in the crash", bob)
        old = srv.current_hub()
        with stopped(srv.current_store()):  # the first step's question waits at a frozen store
            alice.send("REDACT #crash " + gone["msgid"] + "\r\nPING :after")
            os.kill(old, signal.SIGKILL)
            wait_for(lambda: srv.current_hub() not in (None, old), 20, "a new hub")
        for member in (alice, bob):
            assert member.expect("REDACT", timeout=20).params == ["#crash", gone["msgid"]]
        alice.expect("PONG", where=lambda m: m.params[-1] == "after")
        say(alice, "#crash", "after it", bob)
        assert [m.command for m in alice.received].count("REDACT") == 1
        assert [m.command for m in bob.received].count("REDACT") == 1
        _, got = ask(bob, "CHATHISTORY LATEST #crash * 10")
        assert texts(got) == ["after it"]
    finally:
        srv.stop()


# --- MARKREAD -------------------------------------------------------------------------------------
def test_markread_set_get_never_backwards_and_per_client(server):
    channel, (alice, bob) = channel_of(server, CAPS, CAPS)
    first = say(alice, channel, "one", bob)
    second = say(alice, channel, "two", bob)
    assert answer(bob, f"MARKREAD {channel}", "MARKREAD", "FAIL").params == [channel, "*"]
    got = answer(bob, f"MARKREAD {channel.upper()} timestamp={second['time']}", "MARKREAD", "FAIL")
    assert got.params == [channel, f"timestamp={second['time']}"]  # the channel's own name
    back = answer(bob, f"MARKREAD {channel} timestamp={first['time']}", "MARKREAD", "FAIL")
    assert back.params == [channel, f"timestamp={second['time']}"]  # kept: a marker never goes back
    assert answer(bob, f"MARKREAD {channel}", "MARKREAD").params == [channel, f"timestamp={second['time']}"]
    assert answer(alice, f"MARKREAD {channel}", "MARKREAD").params == [channel, "*"]  # bob's is his own
    future = answer(bob, f"MARKREAD {alice.nick} timestamp=2999-01-01T00:00:00.000Z", "MARKREAD")
    assert parse_timestamp(future.params[1][len("timestamp="):]) < parse_timestamp("2100-01-01T00:00:00Z")
    assert answer(bob, "MARKREAD", "FAIL").params == ["MARKREAD", "NEED_MORE_PARAMS", "Missing parameters"]
    assert answer(bob, f"MARKREAD {channel} yesterday", "FAIL").params[:3] == ["MARKREAD", "INVALID_PARAMS", "yesterday"]


def test_a_join_brings_the_marker_after_the_join_and_before_the_end_of_names(server):
    channel, (alice, bob, old) = channel_of(server, CAPS, CAPS, PLAIN)
    sent = say(alice, channel, "read this", bob, old)
    answer(bob, f"MARKREAD {channel} timestamp={sent['time']}", "MARKREAD")
    start = len(bob.received)
    bob.send(f"PART {channel}\r\nJOIN {channel}")
    bob.expect("366", bob.nick, channel)
    burst = [(m.command, m.params) for m in bob.received[start:]
             if m.command in ("JOIN", "MARKREAD", "353", "366")]
    assert [c for c, _ in burst] == ["JOIN", "MARKREAD", "353", "366"]
    assert burst[1][1] == [channel, f"timestamp={sent['time']}"]
    start = len(old.received)
    old.send(f"PART {channel}\r\nJOIN {channel}")
    old.expect("366", old.nick, channel)
    assert "MARKREAD" not in [m.command for m in old.received[start:]]
    newcomer, = with_caps(server, (name("new"), CAPS))
    newcomer.send(f"JOIN {channel}")
    assert newcomer.expect("MARKREAD", timeout=ANSWER_WAIT).params == [channel, "*"]
    newcomer.expect("366")


def test_markers_survive_a_sigkill_of_the_hub():
    srv = Server(2)
    try:
        channel = "#marks"
        alice, bob = with_caps(srv, ("alice", CAPS), ("bob", CAPS))
        join(channel, alice, bob)
        sent = say(alice, channel, "mark me", bob)
        answer(bob, f"MARKREAD {channel} timestamp={sent['time']}", "MARKREAD")
        old = srv.current_hub()
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: srv.current_hub() not in (None, old), 20, "a new hub")
        got = answer(bob, f"MARKREAD {channel}", "MARKREAD", "FAIL")  # the same connection: the same identity
        assert got.params == [channel, f"timestamp={sent['time']}"]
        bob.send(f"PART {channel}\r\nJOIN {channel}")
        assert bob.expect("MARKREAD", timeout=ANSWER_WAIT).params == [channel, f"timestamp={sent['time']}"]
    finally:
        srv.stop()


def test_a_marker_and_a_redaction_are_on_disk_after_a_restart(tmp_path):
    srv = Server(2, data_dir=str(tmp_path))
    try:
        alice, bob = with_caps(srv, ("alice", CAPS), ("bob", CAPS))
        join("#disk", alice, bob)
        kept, gone = say(alice, "#disk", "stays", bob), say(alice, "#disk", "goes", bob)
        answer(bob, f"MARKREAD #disk timestamp={kept['time']}", "MARKREAD")
        alice.send(f"REDACT #disk {gone['msgid']}")
        bob.expect("REDACT", timeout=ANSWER_WAIT)
    finally:
        assert srv.stop() == 0
    again = Server(2, data_dir=str(tmp_path))
    try:
        carol, = with_caps(again, ("carol", CAPS))
        join("#disk", carol)
        _, got = ask(carol, "CHATHISTORY LATEST #disk * 10")
        assert texts(got) == ["stays"]
        # A new connection is a new identity (until accounts exist): bob's marker is not carol's,
        # nor would it be bob's own again; the store still holds it.
        assert answer(carol, "MARKREAD #disk", "MARKREAD").params == ["#disk", "*"]
    finally:
        again.stop()
    with sqlite3.connect(os.path.join(str(tmp_path), DATABASE)) as db:
        rows = db.execute("SELECT target, time_us FROM read_markers").fetchall()
    assert rows == [("#disk", parse_timestamp(kept["time"]))]


def test_without_history_nothing_hangs_no_marker_is_kept_and_nothing_can_be_redacted(tmp_path):
    srv = Server(2, "--no-history", data_dir=str(tmp_path / "unused"))
    try:
        # The capabilities are not offered without history; the commands still get answers.
        offered = "batch server-time message-tags echo-message"
        alice, bob = with_caps(srv, ("alice", offered), ("bob", offered))
        alice.send("CAP REQ :draft/read-marker")
        assert alice.expect("CAP").params[1] == "NAK"
        join("#off", alice, bob)
        sent = say(alice, "#off", "not kept", bob)
        assert answer(alice, "MARKREAD #off timestamp=" + sent["time"], "MARKREAD", "FAIL").params == \
            ["MARKREAD", "INTERNAL_ERROR", "#off", "The read timestamp could not be set"]
        assert answer(alice, "MARKREAD #off", "MARKREAD", "FAIL").params == ["#off", "*"]
        assert answer(alice, f"REDACT #off {sent['msgid']}\r\nPING :after", "FAIL", "REDACT").params[:2] == \
            ["REDACT", "UNKNOWN_MSGID"]
        alice.expect("PONG", where=lambda m: m.params[-1] == "after")
    finally:
        srv.stop()
