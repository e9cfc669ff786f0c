"""The pure pieces both front ends place lines with (client/render.py): day separators, the "new
since you last looked" marker and the unread and mention counts (`Activity`)."""
import os
import time

import pytest

from client.core import Event
from client.render import Activity, day_breaks, day_label, first_new


@pytest.fixture(autouse=True)
def berlin_time(monkeypatch):
    """Dates are local: the tests fix the zone, one that is not UTC, so a day's edge is not UTC's."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def local(y, mo, d, h=12, mi=0):
    return time.mktime((y, mo, d, h, mi, 0, 0, 0, -1))


def said(ts, text="hi", target="#lobby", nick="bob", own=False, history=""):
    return Event("message", text, target, nick, own=own, ts=ts, history=history)


def test_day_label_names_the_local_date():
    assert day_label(local(2026, 12, 1, 0, 30)) == "\u2500\u2500 Tuesday 1 December 2026 \u2500\u2500"
    assert os.environ["TZ"] == "Europe/Berlin"  # 2026-11-30 23:30 UTC: already the 1st here


def test_a_separator_goes_where_the_date_changes_across_midnight():
    stamps = [local(2026, 11, 30, 23, 58), local(2026, 11, 30, 23, 59), local(2026, 12, 1, 0, 1),
              local(2026, 12, 1, 9), local(2026, 12, 3, 9)]
    assert day_breaks(stamps) == [(2, day_label(stamps[2])), (4, day_label(stamps[4]))]


def test_the_same_day_has_no_separator_and_the_first_line_needs_none():
    stamps = [local(2026, 12, 1, h) for h in (0, 8, 23)]
    assert day_breaks(stamps) == []
    assert day_breaks(stamps, before=local(2026, 12, 1, 0, 0)) == []


def test_lines_without_a_day_are_skipped_and_a_line_above_counts():
    stamps = [None, local(2026, 12, 1), None, local(2026, 12, 2)]  # separators have no day
    assert day_breaks(stamps) == [(3, day_label(stamps[3]))]
    assert day_breaks(stamps, before=local(2026, 11, 29)) == [(1, day_label(stamps[1])), (3, day_label(stamps[3]))]


def test_history_put_in_above_gets_its_separators_and_one_before_the_old_first_line():
    shown = [local(2026, 12, 2, 9), local(2026, 12, 2, 10)]
    older = [local(2026, 11, 28, 9), local(2026, 11, 30, 9), local(2026, 11, 30, 10)]
    breaks = day_breaks(older + shown)
    assert [i for i, _ in breaks] == [1, 3]  # within the page, and between it and what was shown
    assert breaks[1][1] == day_label(shown[0])


def test_the_marker_goes_before_the_first_line_someone_else_said_after_the_time():
    lines = [said(10), said(20, own=True, nick="me"), Event("join", "x joined", "#lobby", "x", ts=21),
             Event("separator", "-", "#lobby", ts=25), said(30), said(40)]
    assert first_new(lines, 15) == 4
    assert first_new(lines, 5) == 0 and first_new(lines, 40) is None and first_new(lines, None) is None


def test_lines_elsewhere_are_counted_and_a_mention_too():
    a = Activity()
    assert not a.note("#side", said(1, "hello", "#side"), "me", looking=False)
    assert a.note("#side", said(2, "hi ME", "#side"), "me", looking=False)
    assert a.counts("#side") == (2, 1) and a.totals() == (2, 1)
    assert a.note("#lobby", said(3, "me?"), "me", looking=True)  # named where we look: still True
    assert a.counts("#lobby") == (0, 0)


def test_our_own_lines_history_and_other_events_never_count():
    a = Activity()
    a.note("#side", said(1, "mine", "#side", nick="me", own=True), "me", looking=False)
    a.note("#side", said(2, "old me", "#side", history="latest"), "me", looking=False)
    a.note("#side", Event("join", "me joined", "#side", "x", ts=3), "me", looking=False)
    a.note("(server)", Event("notice", "me", None, "srv", ts=4), "me", looking=False)
    assert a.totals() == (0, 0)


def test_the_marker_moves_to_the_first_unread_line_each_time_you_come_back():
    a = Activity()
    a.note("#lobby", said(1), "me", looking=True)
    a.note("#lobby", said(2), "me", looking=False)  # left it: unread
    a.note("#lobby", said(3), "me", looking=False)
    assert a.look("#lobby") == 3 and a.marker["#lobby"] == 1
    lines = [said(1), said(2), said(3)]
    assert first_new(lines, a.marker["#lobby"]) == 1
    a.note("#lobby", said(4), "me", looking=True)  # watched arriving: the marker stays put
    assert a.marker["#lobby"] == 1
    assert a.look("#lobby") == 4 and a.marker["#lobby"] == 1  # back with nothing new: nor does it move
    a.note("#lobby", said(5), "me", looking=False)
    a.look("#lobby")
    assert a.marker["#lobby"] == 4 and a.counts("#lobby") == (0, 0)


def test_a_conversation_never_looked_at_is_marked_from_its_first_unread_line():
    a = Activity()
    a.note("bob", said(7, target="bob"), "me", looking=False)
    a.note("bob", said(7, "same millisecond", target="bob"), "me", looking=False)
    a.look("bob")
    assert first_new([said(7, target="bob"), said(7, target="bob")], a.marker["bob"]) == 0


def test_the_servers_read_marker_places_the_marker_in_history_and_the_line_is_placed_once():
    a = Activity()
    a.server_read("#lobby", 20)
    a.look("#lobby")  # the join shows the room before its history arrives
    history = [said(10, history="latest"), said(30, history="latest"), said(40, history="latest")]
    placed = []
    for line in history + [said(50)]:
        a.note("#lobby", line, "me", looking=True)
        placed.append(a.place("#lobby", line))
    assert placed == [False, True, False, False]
    assert a.read["#lobby"] == 50  # what MARKREAD says next


def test_a_server_marker_with_nothing_after_it_marks_no_line_you_watch_arrive():
    a = Activity()
    a.server_read("#lobby", 20)
    a.note("#lobby", said(10, history="latest"), "me", looking=True)
    a.note("#lobby", said(30), "me", looking=True)
    assert not a.place("#lobby", said(30)) and "#lobby" not in a.marker
