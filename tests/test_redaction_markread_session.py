"""REDACT and MARKREAD in the worker, with bytes and a fake hub (tests/test_session.py's): the
request each good command becomes and the FAIL a bad one gets at once; the client's later lines
wait for the hub's answer and go on after it, exactly once; a JOIN of a client with
draft/read-marker asks for the markers first and its burst carries MARKREAD before
RPL_ENDOFNAMES; a REDACT reaches the local members with the capability, and nobody else."""
from __future__ import annotations

from chatstate.state import E_JOIN, E_USER
from ipc import link
from ircproto.chathistory import parse_timestamp
from tests.test_session import CID, new_session, output, register
from tests.test_worker_delivery import A, B, C, D, FakeSession, worker_with
from workers.delivery import on_redact
from workers.session import AWAITING_HUB, READY, TAG_MSGID, TAG_TIME

STAMP = "2019-01-04T14:33:26.123Z"


def with_caps(caps: str):
    s, server, hub = new_session()
    s.receive(f"CAP REQ :{caps}\r\n".encode(), 100.0)
    s.receive(b"CAP END\r\n", 100.0)
    register(s, hub)
    return s, server, hub


def lines(s) -> list[tuple[str, list[str]]]:
    return [(m.command, m.params) for m in output(s)]


# --- REDACT ----------------------------------------------------------------------------------------------
def test_a_redact_asks_the_hub_with_the_line_members_see_and_waits_for_its_answer():
    s, server, hub = with_caps("draft/message-redaction")
    hub.feed((E_JOIN, CID, "#Room", 1.0))
    output(s)
    s.receive(b"REDACT #room m-1 :wrong window\r\nPING :after\r\n", 100.0)
    [request] = hub.drain()
    assert request[:4] == (link.R_REDACT, CID, "#room", "m-1")
    assert request[4] == b":alice!~a@127.0.0.1 REDACT #Room m-1 :wrong window\r\n"  # the channel's own name
    assert request[5].startswith("m")  # an origin id: the REDACT's msgid, through any replay
    assert s.holding == AWAITING_HUB and list(s.backlog) == [b"PING :after"]
    hub.feed((link.D_FAIL, CID, "REDACT", "REDACT_FORBIDDEN", ("#room", "m-1", "No")),
             (link.D_ANSWERED, CID, "REDACT"))
    assert s.holding == READY
    hub.run()
    assert lines(s) == [("FAIL", ["REDACT", "REDACT_FORBIDDEN", "#room", "m-1", "No"]), ("PONG", ["irc.test", "after"])]
    hub.feed((link.D_ANSWERED, CID, "REDACT"))  # a replayed request's answer, when nothing waits
    assert s.holding == READY and output(s) == []


def test_a_bad_redact_is_answered_by_the_worker():
    s, server, hub = with_caps("draft/message-redaction")
    s.receive(b"REDACT #room\r\nREDACT #ro,om m-1\r\nREDACT bob :\r\n", 100.0)
    assert hub.drain() == []
    assert lines(s) == [
        ("461", ["alice", "REDACT", "Not enough parameters"]),
        ("FAIL", ["REDACT", "INVALID_TARGET", "#ro,om", "You cannot delete messages from #ro,om"]),
        ("FAIL", ["REDACT", "UNKNOWN_MSGID", "bob", "*", "This message does not exist or is too old"])]


def test_a_redact_reaches_the_local_members_with_the_capability_the_sender_too():
    redacting = {"draft/message-redaction"}
    sender, tagged, plain, without = (FakeSession(A, caps=redacting), FakeSession(B, TAG_TIME | TAG_MSGID, redacting),
                                      FakeSession(C, caps=redacting), FakeSession(1 << 32 | 4))
    w = worker_with({A: sender, B: tagged, C: plain, 1 << 32 | 4: without})
    line = b":a!~u@h REDACT #room m-1 :oops\r\n"
    on_redact(w, "#room", A, line, "r-1", 1700000000.5, ())
    on_redact(w, "#room", A, line, "r-1", 1700000000.5, ())  # a replay: written once
    assert b"".join(sender.outbuf) == line and b"".join(plain.outbuf) == line
    assert b"".join(tagged.outbuf) == b"@time=2023-11-14T22:13:20.500Z;msgid=r-1 " + line
    assert without.outbuf == [] and w.hub_time == 1700000000.5


def test_a_private_redact_reaches_the_sender_and_the_other_party_only():
    redacting = {"draft/message-redaction"}
    a, b, c = FakeSession(A, caps=redacting), FakeSession(B, caps=redacting), FakeSession(C, caps=redacting)
    w = worker_with({A: a, B: b, C: c})
    on_redact(w, "", A, b":a!~u@h REDACT b m-2\r\n", "r-2", 1.0, (B, D))  # D: on another worker
    assert a.outbuf and b.outbuf and not c.outbuf


# --- MARKREAD --------------------------------------------------------------------------------------------
def test_markread_asks_the_hub_and_shows_the_stored_marker():
    s, server, hub = with_caps("draft/read-marker")
    s.receive(f"MARKREAD #Room timestamp={STAMP}\r\nPING :after\r\n".encode(), 100.0)
    assert hub.drain() == [(link.R_MARKREAD, CID, ("#Room",), parse_timestamp(STAMP), None)]
    assert s.holding == AWAITING_HUB
    hub.feed((link.D_MARKREAD, CID, ("#Room",), (parse_timestamp("2020-01-01T00:00:00Z"),), None))
    hub.run()
    assert lines(s) == [("MARKREAD", ["#Room", "timestamp=2020-01-01T00:00:00.000Z"]), ("PONG", ["irc.test", "after"])]
    s.receive(b"MARKREAD bob\r\n", 100.0)
    hub.drain()
    hub.feed((link.D_MARKREAD, CID, ("bob",), (None,), None))
    assert lines(s) == [("MARKREAD", ["bob", "*"])]
    s.receive(f"MARKREAD bob timestamp={STAMP}\r\n".encode(), 100.0)
    hub.drain()
    hub.feed((link.D_MARKREAD, CID, ("bob",), None, None))  # the store could not set it
    assert lines(s) == [("FAIL", ["MARKREAD", "INTERNAL_ERROR", "bob", "The read timestamp could not be set"])]
    assert s.holding == READY


def test_a_bad_markread_is_answered_by_the_worker():
    s, server, hub = with_caps("draft/read-marker")
    s.receive(b"MARKREAD\r\nMARKREAD #room *\r\n", 100.0)
    assert hub.drain() == []
    assert lines(s) == [("FAIL", ["MARKREAD", "NEED_MORE_PARAMS", "Missing parameters"]),
                        ("FAIL", ["MARKREAD", "INVALID_PARAMS", "*", "Invalid timestamp"])]


def test_a_join_brings_the_channels_marker_before_the_end_of_names():
    s, server, hub = with_caps("draft/read-marker")
    s.receive(b"JOIN #a,#B ,key\r\nPING :after\r\n", 100.0)
    joins = (("#a", ""), ("#B", "key"))
    assert hub.drain() == [(link.R_MARKREAD, CID, ("#a", "#B"), None, joins)]  # the markers first, no join yet
    hub.feed((link.D_MARKREAD, CID, ("#a", "#B"), (parse_timestamp(STAMP), None), joins))
    sent = hub.drain()
    assert sent[:2] == [(link.R_JOIN, CID, "#a", ""), (link.R_JOIN, CID, "#B", "key")]
    assert [r[0] for r in sent[2:]] == [link.R_BARRIER]  # the PONG waits for the joins' answers
    hub.feed((E_USER, D, "dave", "~d", "h", "D", 1.0), (E_JOIN, D, "#b", 1.0))
    hub.feed((E_JOIN, CID, "#a", 1.0), (E_JOIN, CID, "#B", 1.0))
    hub.answer(sent[2])
    got = [(command, params[-2] if command == "353" else params[0 if command in ("JOIN", "MARKREAD") else 1])
           for command, params in lines(s)]
    assert got == [("JOIN", "#a"), ("MARKREAD", "#a"), ("353", "#a"), ("366", "#a"),
                   ("JOIN", "#b"), ("MARKREAD", "#b"), ("353", "#b"), ("366", "#b"), ("PONG", "after")]
    assert s.join_markers is None  # every marker was used, once


def test_the_markers_in_the_join_burst():
    s, server, hub = with_caps("draft/read-marker")
    s.receive(b"JOIN #a,#b\r\n", 100.0)
    hub.drain()
    hub.feed((link.D_MARKREAD, CID, ("#a", "#b"), (parse_timestamp(STAMP), None), (("#a", ""), ("#b", ""))))
    hub.run()
    assert [params for command, params in lines(s) if command == "MARKREAD"] == \
        [["#a", f"timestamp={STAMP}"], ["#b", "*"]]


def test_without_the_capability_a_join_goes_straight_to_the_hub_and_brings_no_marker():
    s, server, hub = with_caps("server-time")
    s.receive(b"JOIN #a\r\n", 100.0)
    assert hub.drain() == [(link.R_JOIN, CID, "#a", "")]
    hub.feed((E_JOIN, CID, "#a", 1.0))
    assert "MARKREAD" not in [command for command, _ in lines(s)]
