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
