"""Server-side history in the client's core, with strings only: capability negotiation,
CHATHISTORY LATEST/BEFORE/TARGETS, SEARCH (soju.im/search), FAIL, and each line shown once.

The server lines follow the IRCv3 chathistory, batch and server-time specifications and
soju's search extension; hubchat's server side answers them once it has history."""
import time

import pytest

from client import history as H
from client.core import ChatCore
from client.render import plain, segments
from ircproto.message import parse

NOW = 1_796_000_000.0  # 2026-11-30T00:53:20Z: the core's clock in these tests
ALL_CAPS = "batch server-time message-tags draft/chathistory draft/event-playback soju.im/search echo-message"


def stamp(seconds_before_now: float) -> str:
    return H.format_server_time(NOW - seconds_before_now)


class Clock:
    def __init__(self, now=NOW):
        self.now = now

    def __call__(self):
        return self.now


def feed(core, line):
    return core.handle_message(parse(line.encode(), 8189))


def kinds(events):
    return [(e.kind, e.text) for e in events]


def negotiate(core, offered=ALL_CAPS, isupport="CHATHISTORY=100"):
    """Connect: CAP LS 302, whatever the server offers, ACK of what was asked, welcome, MOTD end."""
    assert core.start_lines()[0] == b"CAP LS 302\r\n"
    feed(core, f":srv CAP * LS :{offered}")
    sent = core.take_sends()
    if sent and sent[0].startswith(b"CAP REQ"):
        asked = parse(sent[0].rstrip(b"\r\n")).params[-1]
        feed(core, f":srv CAP * ACK :{asked}")
        sent += core.take_sends()
    feed(core, ":srv 001 me :Welcome")
    if isupport:
        feed(core, f":srv 005 me {isupport} :are supported by this server")
    feed(core, ":srv 376 me :End of /MOTD command.")
    return sent + core.take_sends()


def connected(offered=ALL_CAPS, isupport="CHATHISTORY=100", clock=None):
    core = ChatCore("me", clock=clock or Clock())
    negotiate(core, offered, isupport)
    return core


def joined(core, room="#lobby", *others):
    events = feed(core, f":me!u@h JOIN {room}")
    events += feed(core, f":srv 353 me = {room} :me {' '.join(others)}")
    events += feed(core, f":srv 366 me {room} :End of /NAMES list.")
    return events, core.take_sends()


def history_batch(core, ref, target, *lines, kind="chathistory"):
    """The server's answer: BATCH +ref, each line tagged batch=ref, BATCH -ref."""
    events = feed(core, f":srv BATCH +{ref} {kind} {target}".rstrip())
    for line in lines:
        tags, _, rest = line.partition(" ")
        events += feed(core, f"@batch={ref};{tags[1:]} {rest}" if line.startswith("@") else f"@batch={ref} {line}")
    return events + feed(core, f":srv BATCH -{ref}")


def said(seconds_before_now, msgid, who, target, text, command="PRIVMSG"):
    return f"@time={stamp(seconds_before_now)};msgid={msgid} :{who}!u@h {command} {target} :{text}"


# --- capability negotiation --------------------------------------------------------------

def test_only_offered_capabilities_are_requested_in_our_order():
    sent = negotiate(ChatCore("me"), offered="sasl=PLAIN soju.im/search echo-message batch=x server-time")
    assert sent[0] == b"CAP REQ :batch server-time soju.im/search\r\n"
    assert sent[1] == b"CAP END\r\n"


def test_a_server_offering_none_of_them_gets_cap_end_at_once_and_nothing_else():
    core = ChatCore("me")
    sent = negotiate(core, offered="chghost setname", isupport="")
    assert sent == [b"CAP END\r\n"]
    assert core.caps == set() and not core.history_enabled and not core.search_enabled


def test_a_multiline_ls_is_read_to_its_end_before_asking():
    core = ChatCore("me")
    core.start_lines()
    feed(core, ":srv CAP * LS * :batch server-time")
    assert core.take_sends() == []
    feed(core, ":srv CAP * LS :draft/chathistory")
    assert core.take_sends() == [b"CAP REQ :batch server-time draft/chathistory\r\n"]


def test_nak_still_ends_negotiation_and_enables_nothing():
    core = ChatCore("me")
    core.start_lines()
    feed(core, ":srv CAP * LS :batch draft/chathistory")
    core.take_sends()
    feed(core, ":srv CAP * NAK :batch draft/chathistory")
    assert core.take_sends() == [b"CAP END\r\n"] and not core.history_enabled


def test_a_server_without_cap_registers_without_a_word_about_it():
    core = ChatCore("me")
    core.start_lines()
    assert feed(core, ":srv 421 * CAP :Unknown command") == []
    feed(core, ":srv 001 me :hi")
    assert core.registered and core.take_sends() == []


def test_history_needs_batch_as_well():
    core = connected(offered="draft/chathistory server-time")
    _, sent = joined(core)
    assert not core.history_enabled and sent == []


def test_cap_new_and_del_follow_the_server():
    core = connected(offered="batch")
    feed(core, ":srv CAP me NEW :draft/chathistory")
    assert core.take_sends() == [b"CAP REQ draft/chathistory\r\n"]
    feed(core, ":srv CAP me ACK :draft/chathistory")
    assert core.history_enabled and core.take_sends() == []  # no second CAP END after registration
    feed(core, ":srv CAP me DEL :draft/chathistory")
    assert not core.history_enabled


# --- without history: today's behaviour ---------------------------------------------------

def test_without_history_nothing_changes():
    core = connected(offered="multi-prefix", isupport="")
    events, sent = joined(core, "#lobby", "bob")
    assert sent == [] and kinds(events)[0] == ("open", "You joined #lobby.")
    [event] = feed(core, ":bob!u@h PRIVMSG #lobby :hello")
    assert (event.kind, event.text, event.history) == ("message", "hello", "")
    out = core.handle_input("/older")
    assert out.send == [] and out.events[0].text == "This server keeps no message history."
    out = core.handle_input("/search words")
    assert out.send == [] and out.events[0].kind == "error" and "search" in out.events[0].text
    assert not core.holding


# --- LATEST on join -------------------------------------------------------------------------

@pytest.mark.parametrize("isupport,limit", [("CHATHISTORY=100", 50), ("CHATHISTORY=20", 20),
                                            ("CHATHISTORY=0", 50), ("", 50)])
def test_joining_asks_for_the_latest_lines_capped_by_isupport(isupport, limit):
    core = connected(isupport=isupport)
    _, sent = joined(core)
    assert sent == [f"CHATHISTORY LATEST #lobby * {limit}\r\n".encode()]


def test_a_history_batch_becomes_history_events_in_order_with_their_times_between_separators():
    core = connected()
    joined(core, "#lobby", "alice", "bob")
    events = history_batch(core, "h1", "#lobby",
                           said(7200, "m1", "alice", "#lobby", "first"),
                           said(3600, "m2", "bob", "#lobby", "\x01ACTION waves\x01"),
                           said(60, "m3", "alice", "#lobby", "third", command="NOTICE"))
    assert kinds(events) == [("separator", H.EARLIER), ("message", "first"), ("action", "waves"),
                             ("notice", "third"), ("separator", H.NOW)]
    assert all(e.history == "latest" and e.target == "#lobby" for e in events)
    assert [e.ts for e in events[1:4]] == [NOW - 7200, NOW - 3600, NOW - 60]
    assert [e.nick for e in events[1:4]] == ["alice", "bob", "alice"]
    assert [e.msgid for e in events[1:4]] == ["m1", "m2", "m3"]


def test_history_changes_nothing_about_the_room():
    """With draft/event-playback, history carries JOIN, PART, NICK...: shown, never applied."""
    core = connected()
    joined(core, "#lobby", "bob")
    events = history_batch(core, "h1", "#lobby",
                           f"@time={stamp(300)} :carol!u@h JOIN #lobby",
                           f"@time={stamp(200)} :bob!u@h NICK robert",
                           f"@time={stamp(100)} :carol!u@h PART #lobby :bye",
                           f"@time={stamp(90)} :bob!u@h TAGMSG #lobby")
    assert kinds(events)[1:-1] == [("join", "carol joined #lobby"), ("nick", "bob is now known as robert"),
                                   ("part", "carol left #lobby (bye)")]
    assert core.members() == ["bob", "me"]


def test_an_empty_latest_batch_shows_nothing_and_ends_paging():
    core = connected()
    joined(core)
    assert history_batch(core, "h1", "#lobby") == []
    out = core.handle_input("/older")
    assert out.send == [] and out.events[0].text == "No earlier messages in #lobby."


def test_live_lines_wait_for_the_history_and_come_after_it():
    core = connected()
    joined(core, "#lobby", "bob")
    assert feed(core, said(1, "live1", "bob", "#lobby", "said while the history was on its way")) == []
    assert feed(core, ":carol!u@h JOIN #lobby") == []
    typed = core.handle_input("and me")
    assert typed.send == [b"PRIVMSG #lobby :and me\r\n"] and typed.events == []
    assert feed(core, ":srv 332 me #lobby :the topic")[0].text == "Topic: the topic"  # not a live line: at once
    events = history_batch(core, "h1", "#lobby", said(600, "old1", "bob", "#lobby", "from before"))
    assert kinds(events) == [("separator", H.EARLIER), ("message", "from before"), ("separator", H.NOW),
                             ("message", "said while the history was on its way"),
                             ("join", "carol joined #lobby"), ("message", "and me")]
    assert [e.history for e in events[3:]] == ["", "", ""]
    assert not core.holding
    [later] = feed(core, ":bob!u@h PRIVMSG #lobby :and now")
    assert later.text == "and now"  # nothing held any more


def test_held_lines_come_out_when_the_history_never_does():
    clock = Clock()
    core = connected(clock=clock)
    joined(core)
    feed(core, ":bob!u@h PRIVMSG #lobby :hello")
    clock.now += H.HOLD_SECONDS - 1
    assert core.expire_held() == []
    clock.now += 2
    assert kinds(core.expire_held()) == [("message", "hello")]
    assert not core.holding


def test_lines_of_other_rooms_are_not_held():
    core = connected()
    joined(core, "#lobby")
    history_batch(core, "h0", "#lobby")
    joined(core, "#dev")
    [event] = feed(core, ":bob!u@h PRIVMSG #lobby :elsewhere")
    assert event.target == "#lobby"


# --- older lines ------------------------------------------------------------------------------

def test_older_lines_are_asked_for_before_the_oldest_shown_until_an_empty_batch():
    core = connected()
    joined(core, "#lobby", "bob")
    history_batch(core, "h1", "#lobby", said(3000, "m2", "bob", "#lobby", "two"),
                  "@time=2026-11-29T21:00:00.123Z;msgid=m1 :bob!u@h PRIVMSG #lobby :one")
    out = core.request_older()
    assert out.send == [b"CHATHISTORY BEFORE #lobby timestamp=2026-11-29T21:00:00.123Z 50\r\n"]
    assert core.request_older().send == []  # one request at a time
    events = history_batch(core, "h2", "#lobby", said(90000, "m0", "bob", "#lobby", "zero"))
    assert kinds(events) == [("separator", H.EARLIER), ("message", "zero"), ("separator", H.END_EARLIER)]
    assert {e.history for e in events} == {"older"}
    assert core.handle_input("/older").send == [
        f"CHATHISTORY BEFORE #lobby timestamp={stamp(90000)} 50\r\n".encode()]
    events = history_batch(core, "h3", "#lobby")
    assert kinds(events) == [("separator", H.NO_EARLIER)] and events[0].history == "older"
    out = core.request_older("#lobby")
    assert out.send == [] and out.events[0].text == "No earlier messages in #lobby."


def test_older_goes_by_msgid_when_the_server_takes_msgids():
    """Two lines may share a millisecond: with MSGREFTYPES=timestamp,msgid the reference is exact."""
    core = connected(isupport="CHATHISTORY=100 MSGREFTYPES=timestamp,msgid")
    joined(core)
    history_batch(core, "h1", "#lobby", said(60, "first-of-two", "bob", "#lobby", "a"),
                  said(60, "second-of-two", "bob", "#lobby", "b"), said(30, "later", "bob", "#lobby", "c"))
    assert core.request_older().send == [b"CHATHISTORY BEFORE #lobby msgid=first-of-two 50\r\n"]


def test_older_uses_the_oldest_live_line_when_no_history_came():
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby")  # empty: done
    core2 = connected()
    joined(core2)
    core2._pending.clear()  # as if the history request had failed
    core2._held.clear()
    feed(core2, said(30, "l1", "bob", "#lobby", "live"))
    assert core2.request_older().send == [f"CHATHISTORY BEFORE #lobby timestamp={stamp(30)} 50\r\n".encode()]


def test_an_older_page_of_lines_already_shown_goes_on_to_the_next_page():
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby", said(100, "m5", "bob", "#lobby", "five"))
    feed(core, said(50, "m6", "bob", "#lobby", "six"))
    core.request_older()
    core._history["#lobby"].oldest_ts, core._history["#lobby"].oldest_raw = NOW - 50, stamp(50)  # a gap
    events = history_batch(core, "h2", "#lobby", said(100, "m5", "bob", "#lobby", "five"))
    assert events == []
    assert core.take_sends() == [f"CHATHISTORY BEFORE #lobby timestamp={stamp(100)} 50\r\n".encode()]


# --- recent private conversations -----------------------------------------------------------

def test_targets_are_asked_for_at_the_end_of_the_motd_and_open_the_private_conversations():
    core = ChatCore("me", clock=Clock())
    sent = negotiate(core, isupport="CHATHISTORY=30")
    assert sent[-1] == (f"CHATHISTORY TARGETS timestamp={stamp(0)} timestamp={stamp(30 * 86400)} 30\r\n"
                        .encode())
    events = history_batch(core, "t1", "", f":srv CHATHISTORY TARGETS bob {stamp(86400 * 2)}",
                           f":srv CHATHISTORY TARGETS #lobby {stamp(10)}",
                           f":srv CHATHISTORY TARGETS carol timestamp={stamp(120)}",
                           f":srv CHATHISTORY TARGETS me {stamp(5)}",
                           kind="draft/chathistory-targets")
    assert core.queries == {"carol": "carol", "bob": "bob"} and list(core.queries) == ["carol", "bob"]
    [event] = events
    assert event.kind == "targets" and event.text.startswith("Recent private conversations: carol (")
    assert "bob (" in event.text and "#lobby" not in event.text
    assert "/msg" in event.text


def test_opening_a_private_conversation_asks_for_its_history_once():
    core = connected()
    core.handle_input("/msg bob")
    assert core.take_sends() == []  # handle_input hands them out itself
    assert core.handle_input("/msg carol").send == [b"CHATHISTORY LATEST carol * 50\r\n"]
    assert core.open_conversation("carol").send == []
    assert core.open_conversation("dave").send == [b"CHATHISTORY LATEST dave * 50\r\n"]
    assert core.current == "dave"


def test_a_first_line_to_someone_asks_for_the_history_first_and_waits_for_it():
    core = connected()
    out = core.handle_input("/msg bob hello bob")
    assert out.send == [b"CHATHISTORY LATEST bob * 50\r\n", b"PRIVMSG bob :hello bob\r\n"]
    assert out.events == []  # shown after the earlier messages
    events = history_batch(core, "p1", "bob", said(500, "p0", "bob", "me", "are you there?"),
                           said(400, "p1", "me", "bob", "yes"))
    assert kinds(events) == [("separator", H.EARLIER), ("message", "are you there?"), ("message", "yes"),
                             ("separator", H.NOW), ("message", "hello bob")]
    assert [e.target for e in events] == ["bob"] * 5
    assert [e.own for e in events[1:]] == [False, True, False, True]


def test_a_private_message_from_someone_new_brings_the_history_before_it():
    core = connected()
    assert feed(core, said(1, "n1", "zoe", "me", "hi, remember me?")) == []
    assert core.take_sends() == [b"CHATHISTORY LATEST zoe * 50\r\n"]
    events = history_batch(core, "p1", "zoe", said(86400 * 3, "z0", "zoe", "me", "long ago"),
                           said(1, "n1", "zoe", "me", "hi, remember me?"))
    assert kinds(events) == [("separator", H.EARLIER), ("message", "long ago"), ("separator", H.NOW),
                             ("message", "hi, remember me?")]
    assert events[-1].history == "" and events[-1].private


# --- shown once -------------------------------------------------------------------------------

def test_a_line_that_came_live_is_not_shown_again_from_history_and_the_reverse():
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby", said(100, "a", "bob", "#lobby", "in history"))
    assert feed(core, said(100, "a", "bob", "#lobby", "in history")) == []  # and then live
    [live] = feed(core, said(10, "b", "bob", "#lobby", "live"))
    assert live.msgid == "b" and live.ts == NOW - 10
    core.request_older()
    events = history_batch(core, "h2", "#lobby", said(200, "c", "bob", "#lobby", "older"),
                           said(10, "b", "bob", "#lobby", "live"))
    assert [e.text for e in events if e.kind == "message"] == ["older"]


def test_our_own_line_is_shown_once_whether_echoed_or_in_history():
    core = connected()
    joined(core, "#lobby", "bob")
    history_batch(core, "h1", "#lobby")
    [mine] = core.handle_input("hello").events
    assert mine.own
    assert feed(core, said(0, "e1", "me", "#lobby", "hello")) == []  # echo-message
    core.handle_input("again")
    feed(core, ":me!u@h PART #lobby")
    joined(core)
    events = history_batch(core, "h2", "#lobby", said(5, "e1", "me", "#lobby", "hello"),
                           said(3, "e2", "me", "#lobby", "again"), said(2, "e3", "bob", "#lobby", "bye"))
    assert [e.text for e in events if e.kind == "message"] == ["bye"]


def test_our_own_lines_of_an_earlier_session_are_history_like_any_other():
    core = connected()
    joined(core)
    core.handle_input("hello")  # said now; the history has the same words from yesterday
    events = history_batch(core, "h1", "#lobby", said(86400, "y1", "me", "#lobby", "hello"))
    assert [(e.kind, e.text, e.own) for e in events][1] == ("message", "hello", True)


def test_after_a_reconnect_the_history_shows_only_what_was_missed():
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby", said(100, "a", "bob", "#lobby", "before"))
    feed(core, said(50, "b", "bob", "#lobby", "while connected"))
    core.rejoin_lines()
    negotiate(core)
    _, sent = joined(core)
    assert sent == [b"CHATHISTORY LATEST #lobby * 50\r\n"]
    events = history_batch(core, "h2", "#lobby", said(100, "a", "bob", "#lobby", "before"),
                           said(50, "b", "bob", "#lobby", "while connected"),
                           said(20, "c", "bob", "#lobby", "while away"))
    assert [e.text for e in events] == [H.EARLIER, "while away", H.NOW]


def test_lines_of_other_batches_are_handled_as_they_come():
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby")
    feed(core, ":srv BATCH +L1 labeled-response")
    [event] = feed(core, "@batch=L1 :bob!u@h PRIVMSG #lobby :inside a labelled batch")
    assert event.text == "inside a labelled batch"
    assert feed(core, ":srv BATCH -L1") == []


# --- search -----------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,sent", [
    ("/search deploy", b"SEARCH text=deploy\r\n"),
    ("/search deploy  friday", b"SEARCH text=deploy\\sfriday\r\n"),
    ("/search #dev deploy", b"SEARCH text=deploy;in=#dev\r\n"),
    ("/search in:bob from:alice a;b", b"SEARCH text=a\\:b;in=bob;from=alice\r\n"),
])
def test_search_sends_soju_search_with_escaped_attributes(typed, sent):
    assert connected().handle_input(typed).send == [sent]


def test_search_results_are_a_block_with_times_and_where_they_were_said():
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby")
    core.handle_input("/search deploy")
    events = history_batch(core, "s1", "", said(86400 * 2, "x1", "alice", "#dev", "deploy on friday"),
                           said(60, "x2", "bob", "me", "did the deploy work?"), kind="soju.im/search")
    assert kinds(events) == [("separator", "\u2014 2 messages match \u201cdeploy\u201d \u2014"),
                             ("message", "deploy on friday"), ("message", "did the deploy work?"),
                             ("separator", H.END_SEARCH)]
    assert {e.history for e in events} == {"search"}
    assert [(e.target, e.ts) for e in events[1:3]] == [("#dev", NOW - 86400 * 2), ("bob", NOW - 60)]
    first = plain(events[1], "me")
    assert "#dev <alice> deploy on friday" in first
    assert time.strftime("%Y-%m-%d", time.localtime(NOW - 86400 * 2)) in first  # not today: the date too
    assert "[private] <bob> did the deploy work?" in plain(events[2], "me")
    assert not core.holding


def test_search_results_are_shown_even_when_seen_before():
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby", said(60, "x1", "bob", "#lobby", "deploy now"))
    core.handle_input("/search deploy")
    events = history_batch(core, "s1", "", said(60, "x1", "bob", "#lobby", "deploy now"), kind="soju.im/search")
    assert [e.text for e in events][1] == "deploy now"


def test_no_search_results_say_so():
    core = connected()
    core.handle_input("/search nothing like this")
    [event] = history_batch(core, "s1", "", kind="soju.im/search")
    assert event.text == "No messages match \u201cnothing like this\u201d."


# --- errors in words --------------------------------------------------------------------------

def test_fail_chathistory_is_a_sentence_and_lets_the_held_lines_out():
    core = connected()
    joined(core)
    feed(core, ":bob!u@h PRIVMSG #lobby :waiting")
    events = feed(core, ":srv FAIL CHATHISTORY MESSAGE_ERROR LATEST #lobby :Messages could not be retrieved")
    assert kinds(events) == [
        ("error", "Could not load earlier messages of #lobby: the server could not retrieve them "
                  "(\u201cMessages could not be retrieved\u201d)."),
        ("message", "waiting")]
    assert not core.holding and core.request_older().send  # it may be tried again


def test_fail_search_is_a_sentence():
    core = connected()
    core.handle_input("/search x")
    [event] = feed(core, ":srv FAIL SEARCH INVALID_PARAMS text :Invalid parameters")
    assert event.kind == "error"
    assert event.text.startswith("The search for \u201cx\u201d failed: the server did not accept those search words")


def test_unknown_chathistory_command_stops_asking():
    core = connected()
    joined(core)
    feed(core, ":bob!u@h PRIVMSG #lobby :held")
    events = feed(core, ":srv 421 me CHATHISTORY :Unknown command")
    assert kinds(events) == [("error", "This server does not support CHATHISTORY yet."), ("message", "held")]
    assert not core.history_enabled


# --- how it reads -----------------------------------------------------------------------------

def test_history_lines_show_their_own_time_with_the_date_when_not_today():
    core = connected()
    joined(core)
    events = history_batch(core, "h1", "#lobby", said(0, "t", "bob", "#lobby", "today"),
                           "@time=2020-02-03T04:05:06.000Z;msgid=o :bob!u@h PRIVMSG #lobby :long ago")
    today, old = events[1], events[2]
    assert segments(today, "me", now=NOW)[0] == ("time", time.strftime("%H:%M ", time.localtime(NOW)))
    assert segments(old, "me", now=NOW)[0] == ("time", time.strftime("%Y-%m-%d %H:%M ",
                                                                     time.localtime(1580702706)))
    assert segments(events[0], "me", show_target=False) == [("separator", H.EARLIER)]


def test_live_lines_carry_the_server_time():
    core = connected()
    [event] = feed(core, "@time=2026-11-30T10:00:00.500Z :srv NOTICE me :maintenance tonight")
    assert event.ts == 1796032800.5


def test_server_time_round_trip():
    assert H.parse_server_time("2026-12-01T09:00:00.123Z") == pytest.approx(1796115600.123)
    assert H.format_server_time(1796115600.123) == "2026-12-01T09:00:00.123Z"
    assert H.parse_server_time("timestamp=2026-12-01T09:00:00.123Z") == pytest.approx(1796115600.123)
    assert H.parse_server_time("yesterday") is None
    assert H.parse_server_time("2026-12-01T09:00:00") is None  # no zone: not a server time


def test_an_older_page_that_brings_nothing_before_the_oldest_line_ends_paging():
    """A server whose BEFORE includes the bound line gives it back alone: nothing earlier exists."""
    core = connected()
    joined(core)
    history_batch(core, "h1", "#lobby", said(100, "m5", "bob", "#lobby", "five"))
    core.request_older()
    events = history_batch(core, "h2", "#lobby", said(100, "m5", "bob", "#lobby", "five"))
    assert kinds(events) == [("separator", H.NO_EARLIER)]
    assert core.request_older().send == [] and core.take_sends() == []
