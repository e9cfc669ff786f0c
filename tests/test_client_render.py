"""The pure pieces of how lines and people look: mentions, links, formatting, the people list."""
import string

import pytest

from hypothesis import given
from hypothesis import strategies as st

from client.core import ChatCore, Event, apply_status_modes, parse_prefix
from client.render import (NICK_CHARS, PLAIN, Style, link_spans, member_rank, member_rows, mention_spans,
                           mentions, parse_formatting, plain, split_text, strip_formatting, styled_runs)
from ircproto.message import parse

NICKS = st.from_regex(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]{0,8}", fullmatch=True)
SEPARATORS = st.text(alphabet=" ,.:;!?@<>()\"'", min_size=1, max_size=3)


def feed(core, *lines):
    for line in lines:
        core.handle_message(parse(line.encode()))


def test_mentions_are_whole_words_in_any_case():
    assert mention_spans("hey Bob, look", "bob") == [(4, 7)]
    assert mention_spans("BOB: and @bob and bob.", "Bob") == [(0, 3), (10, 13), (18, 21)]
    for text in ("bobby", "bob_", "[bob]x", "xbob", "bob-2", "alice"):
        assert mention_spans(text, "bob") == [], text
    assert mention_spans("[bob] is here", "[bob]") == [(0, 5)]  # nick specials match literally
    assert mention_spans("anything", "") == []


@given(NICKS, SEPARATORS, SEPARATORS, st.booleans())
def test_a_nick_between_separators_is_always_found_whatever_its_case(nick, before, after, upper):
    said = nick.upper() if upper else nick.lower()
    text = f"x{before}{said}{after}y"
    assert (len(f"x{before}"), len(f"x{before}") + len(nick)) in mention_spans(text, nick)


@given(NICKS, st.sampled_from(sorted(NICK_CHARS)))
def test_a_nick_glued_to_a_nick_character_is_not_a_mention(nick, glue):
    assert (0, len(nick)) not in mention_spans(nick + glue, nick)
    assert mention_spans(glue + nick, nick) == [] or mention_spans(glue + nick, nick)[0][0] != 1


@given(st.text(), NICKS)
def test_spans_always_point_at_the_nick(text, nick):
    for a, b in mention_spans(text, nick):
        assert text[a:b].lower() == nick.lower()


def test_mentions_count_only_other_peoples_live_lines():
    said = Event("message", "hi me!", "#lobby", "bob")
    assert mentions(said, "me")
    assert not mentions(Event("message", "hi me!", "#lobby", "me", own=True), "me")
    assert not mentions(Event("message", "hi me!", "#lobby", "bob", history="latest"), "me")
    assert not mentions(Event("join", "me joined", "#lobby", "me"), "me")
    assert not mentions(Event("message", "hi meg", "#lobby", "bob"), "me")


def test_formatting_is_stripped_cleanly():
    assert strip_formatting("\x02bold\x02 \x1ditalic\x1d \x0304,01red\x03 \x0312blue\x0f end") == \
        "bold italic red blue end"
    assert strip_formatting("\x04ff0000hex\x04 \x1funder\x1f") == "hex under"
    assert plain(Event("message", "\x02loud\x02", "#lobby", "bob"), "me").endswith("<bob> loud")


@given(st.text(alphabet=string.printable + "\x02\x03\x0f\x1d\x1f"))
def test_stripping_leaves_no_control_code(text):
    assert not set(strip_formatting(text)) & set("\x02\x0f\x1d\x1f")


B, I, U = Style(bold=True), Style(italic=True), Style(underline=True)
RED, BLUE, BLACK = "#ff0000", "#0000fc", "#000000"
FORMATTED = [
    ("plain", [("plain", PLAIN)]),
    ("\x02b\x02 \x1di\x1d \x1fu", [("b", B), (" ", PLAIN), ("i", I), (" ", PLAIN), ("u", U)]),
    ("\x1es\x0f \x11m\x16r", [("s", Style(strike=True)), (" ", PLAIN), ("m", Style(mono=True)),
                                ("r", Style(mono=True, reverse=True))]),
    ("\x02\x1dboth\x0fnone", [("both", Style(bold=True, italic=True)), ("none", PLAIN)]),
    ("\x0304red \x0312,01blue on black\x03 none", [("red ", Style(fg=RED)), ("blue on black", Style(fg=BLUE, bg=BLACK)),
                                                   (" none", PLAIN)]),
    ("\x034,1x\x0312y", [("x", Style(fg=RED, bg=BLACK)), ("y", Style(fg=BLUE, bg=BLACK))]),  # fg alone keeps bg
    ("\x0304,hello", [(",hello", Style(fg=RED))]),  # a comma with no digit after it is text
    ("\x03,04x", [(",04x", PLAIN)]),  # no foreground: a reset, then text
    ("\x03123", [("3", Style(fg=BLUE))]),  # two digits at most
    ("\x0352x\x0398y\x0399z", [("x", Style(fg="#ff0000")), ("y", Style(fg="#ffffff")), ("z", PLAIN)]),
    ("\x04FF8800,000000hex\x04 off", [("hex", Style(fg="#ff8800", bg=BLACK)), (" off", PLAIN)]),
    ("\x04ff88x", [("ff88x", PLAIN)]),  # not six hex digits: text
    ("\x02\x02", []),
    ("tab\there\x01\x07\x7f", [("tab here", PLAIN)]),  # no stray boxes, no terminal bell
]


@pytest.mark.parametrize("text,runs", FORMATTED)
def test_formatting_is_parsed_into_styled_runs(text, runs):
    assert parse_formatting(text) == runs


@given(st.text())
def test_parsing_any_text_never_raises_and_leaves_no_control_character(text):
    runs = parse_formatting(text)
    assert "".join(piece for piece, _ in runs) == strip_formatting(text)
    assert all(piece and not any(c < " " or c == "\x7f" for c in piece) for piece, _ in runs)
    assert all(a[1] != b[1] for a, b in zip(runs, runs[1:]))  # neighbours always differ


CODES = st.sampled_from(["\x02", "\x1d", "\x1f", "\x1e", "\x11", "\x16", "\x0f", "\x03", "\x034", "\x0304,12",
                         "\x03,", "\x04", "\x04aabbcc", "\x04aabbcc,", "\x0399"])


@given(st.lists(st.one_of(CODES, st.text(alphabet="ab ,0123456789", min_size=1)), max_size=12))
def test_codes_among_digits_and_commas_keep_every_character_that_is_not_a_code(parts):
    text = "".join(parts)
    shown = strip_formatting(text)
    assert len(shown) <= len(text) and set(shown) <= set("ab ,0123456789")


def test_styled_runs_keep_mentions_and_links_across_formatting():
    text = "\x02me\x02: https://x.\x0304org/a ok"
    assert styled_runs(text, "me") == [("mention", "me", B), ("text", ": ", PLAIN), ("link", "https://x.", PLAIN),
                                       ("link", "org/a", Style(fg=RED)), ("text", " ok", Style(fg=RED))]


@given(st.text(), NICKS)
def test_styled_runs_show_the_same_text_as_split_text(text, nick):
    shown = strip_formatting(text)
    assert "".join(piece for _, piece, _ in styled_runs(text, nick)) == shown
    joined = [(role, piece) for role, piece, _ in styled_runs(text, nick)]
    merged = []
    for role, piece in joined:
        if merged and merged[-1][0] == role:
            merged[-1] = (role, merged[-1][1] + piece)
        else:
            merged.append((role, piece))
    assert merged == [(role, piece) for role, piece in split_text(shown, nick) if piece]


def test_links_leave_sentence_punctuation_out():
    text = "see https://example.org/a?b=1. or (www.example.com/x), not example.org"
    assert [text[a:b] for a, b in link_spans(text)] == ["https://example.org/a?b=1", "www.example.com/x"]


def test_split_text_marks_mentions_and_links():
    assert split_text("me: https://x.org/me ok", "me") == [
        ("mention", "me"), ("text", ": "), ("link", "https://x.org/me"), ("text", " ok")]
    assert "".join(t for _, t in split_text("a me b http://q c", "me")) == "a me b http://q c"


def test_member_rows_sort_operators_voiced_then_the_rest():
    statuses = {"zed": "", "Amy": "+", "bob": "@+", "Carl": "@", "[x]": "", "al": ""}
    rows = member_rows(statuses, away={"amy", "zed"})
    assert [label for label, _, _ in rows] == ["@bob", "@Carl", "+Amy", "[x]", "al", "zed"]
    assert [nick for _, nick, away in rows if away] == ["Amy", "zed"]
    assert member_rank("+") == 1 and member_rank("") == 2 and member_rank("~", "~@+") == 0


def test_prefix_and_mode_tracking():
    assert parse_prefix("(qaohv)~&@%+") == ("qaohv", "~&@%+") and parse_prefix("junk") == ("ov", "@+")
    status = {}
    apply_status_modes(status, "+ov", ["Bob", "carl"])
    assert status == {"bob": "@", "carl": "+"}
    apply_status_modes(status, "+v-o+k", ["bob", "bob", "key"], chanmodes="beI,k,l,imnst")
    assert status == {"bob": "+", "carl": "+"}
    apply_status_modes(status, "+lv", ["10", "Dan"], chanmodes="beI,k,l,imnst")  # the limit takes "10"
    apply_status_modes(status, "-v", ["carl"])
    assert status == {"bob": "+", "dan": "+"}


def test_core_tracks_statuses_and_away():
    core = ChatCore("me")
    feed(core, ":srv 001 me :hi", ":srv 005 me PREFIX=(ov)@+ CHANMODES=beI,k,l,imnst :are supported",
         ":me!u@h JOIN #lobby", ":srv 353 me = #lobby :@me +bob @+carl dan", ":srv 366 me #lobby :end")
    assert core.statuses("#lobby") == {"me": "@", "bob": "+", "carl": "@+", "dan": ""}
    feed(core, ":me!u@h MODE #lobby +o dan", ":me!u@h MODE #lobby -v bob", ":dan!u@h NICK Daniel",
         ":carl!u@h PART #lobby", ":bob!u@h AWAY :lunch")
    assert core.statuses("#lobby") == {"me": "@", "bob": "", "Daniel": "@"}
    assert core.is_away("BOB") and not core.is_away("daniel")
    feed(core, ":bob!u@h AWAY", ":srv 352 me #lobby u h srv Daniel G :0 real")
    assert not core.is_away("bob") and core.is_away("daniel")
    feed(core, ":srv 353 me = #lobby :me!u@h bob!u@h", ":srv 366 me #lobby :end")  # userhost-in-names
    assert core.statuses("#lobby") == {"me": "", "bob": ""}


def test_presence_caps_are_asked_for_when_offered():
    core = ChatCore("me")
    core.start_lines()
    feed(core, ":srv CAP * LS :multi-prefix away-notify")
    assert core.take_sends() == [b"CAP REQ :multi-prefix away-notify\r\n"]
