"""The terminal client's numbered windows (client/tui.py `Windows`): activity, mentions, /win."""
from client.core import Event
from client.tui import Windows, formatted, window_command

NAMES = ["#lobby", "#side", "bob"]


def said(target, text, nick="bob", history="", own=False):
    return Event("message", text, target, nick=nick, history=history, own=own)


def test_lines_elsewhere_count_and_a_mention_is_counted_and_rung():
    w = Windows()
    assert not w.note(said("#side", "hello"), "#lobby", "me")
    assert w.note(said("#side", "hi ME, look"), "#lobby", "me")
    assert w.unread == {"#side": 2} and w.mentioned == {"#side": 1}
    assert [text for _, text in w.indicator(NAMES)] == ["2:#side(@1) "]


def test_the_current_window_history_and_our_own_lines_do_not_count():
    w = Windows()
    w.note(said("#lobby", "me: hi"), "#LOBBY", "me")
    w.note(said("#side", "old", history="latest"), "#lobby", "me")
    w.note(said("#side", "mine", nick="me", own=True), "#lobby", "me")
    w.note(Event("info", "someone joined", "#side"), "#lobby", "me")
    assert w.unread == {} and w.indicator(NAMES) == []


def test_a_mention_in_the_window_looked_at_still_rings():
    assert Windows().note(said("#lobby", "me?"), "#lobby", "me")


def test_seen_clears_a_window_and_pick_numbers_from_one():
    w = Windows()
    w.note(said("bob", "psst me"), "#lobby", "me")
    assert w.pick(NAMES, 3) == "bob" and w.pick(NAMES, 0) is None and w.pick(NAMES, 4) is None
    w.seen("BOB")
    assert w.unread == {} and w.mentioned == {}


def test_the_listing_marks_the_current_window_and_the_counts():
    w = Windows()
    w.note(said("#side", "x"), "#lobby", "me")
    assert w.listing(NAMES, "#lobby") == "-- Windows (Alt-N or /win N): *1: #lobby,  2: #side (1 new),  3: bob"
    assert w.listing([], None) == "-- No conversations yet."


def test_window_commands():
    assert window_command("/windows") == ("list", None)
    assert window_command("/win 2") == ("win", 2)
    assert window_command("/WIN x") == ("win", None)
    assert window_command("/winner") is None and window_command("hello") is None and window_command("") is None


def test_our_nick_is_highlighted_in_a_line_said_to_us():
    parts = formatted(said("#lobby", "hey Me and meow"), "me", False)
    assert ("class:mention", "Me") in parts and ("class:text", " and meow") in parts


def test_irc_formatting_becomes_prompt_toolkit_styles_and_history_stays_grey():
    parts = formatted(said("#lobby", "\x02loud\x02 \x0304,01red\x0f \x1dme\x1d"), "me", False)
    assert ("class:text bold", "loud") in parts
    assert ("class:text fg:#ff0000 bg:#000000", "red") in parts
    assert ("class:mention italic", "me") in parts
    old = formatted(said("#lobby", "\x02\x0304old\x0f words", history="latest"), "me", False)
    assert ("class:history bold", "old") in old and ("class:history", " words") in old
    assert not any("\x02" in text or "\x03" in text for _, text in parts + old)


def test_switching_to_a_window_gives_its_unread_lines_for_the_recap_once():
    w = Windows()
    w.note(said("#side", "first", history=""), "#lobby", "me")
    w.note(said("#side", "second"), "#lobby", "me")
    newest, recap = w.seen("#SIDE")
    assert [e.text for e in recap] == ["first", "second"] and newest == recap[-1].ts
    assert w.seen("#side")[1] == [] and w.unread == {}
