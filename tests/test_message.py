"""The IRC codec: bytes in, messages out, and back; no sockets."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ircproto import numerics as N
from ircproto.message import (MAX_TAG_DATA, EmptyMessage, InputTooLong, Message, ProtocolError, escape_tag_value,
                              format_line, parse, serialize, truncate_utf8, unescape_tag_value)

PARSE_TABLE = [
    (b"PING", Message("PING", [])),
    (b"ping token", Message("PING", ["token"])),
    (b"PRIVMSG #chan :hello world", Message("PRIVMSG", ["#chan", "hello world"])),
    (b"PRIVMSG #chan ::-) smile", Message("PRIVMSG", ["#chan", ":-) smile"])),
    (b"PRIVMSG #chan :", Message("PRIVMSG", ["#chan", ""])),
    (b"NICK :alice", Message("NICK", ["alice"])),
    (b"USER u 0 * :Real Name", Message("USER", ["u", "0", "*", "Real Name"])),
    (b"  JOIN   #a,#b   key ", Message("JOIN", ["#a,#b", "key"])),
    (b":nick!u@h PRIVMSG bob :hi", Message("PRIVMSG", ["bob", "hi"], source="nick!u@h")),
    (b":irc.example 001 alice :Welcome", Message("001", ["alice", "Welcome"], source="irc.example")),
    (b"@id=123;flag :n!u@h PRIVMSG #c :x", Message("PRIVMSG", ["#c", "x"], "n!u@h", {"id": "123", "flag": ""})),
    (b"@a=b\\sc\\:d\\\\e\\r\\n TAGMSG #c", Message("TAGMSG", ["#c"], None, {"a": "b c;d\\e\r\n"})),
    (b"@a=x\\ TAGMSG #c", Message("TAGMSG", ["#c"], None, {"a": "x"})),  # lone trailing backslash dropped
    (b"@a=\\q TAGMSG #c", Message("TAGMSG", ["#c"], None, {"a": "q"})),  # unknown escape: the character
    (b"PRIVMSG #c :caf\xc3\xa9", Message("PRIVMSG", ["#c", "café"])),
]


@pytest.mark.parametrize("line,expected", PARSE_TABLE)
def test_parse_table(line, expected):
    assert parse(line) == expected


@pytest.mark.parametrize("line", [b"", b"   ", b":source-only", b"@tags=only", b"@a=b :src"])
def test_lines_without_a_command_are_empty(line):
    with pytest.raises(EmptyMessage):
        parse(line)


def test_nul_is_refused():
    with pytest.raises(ProtocolError) as exc:
        parse(b"PRIVMSG #c :a\x00b")
    assert exc.value.numeric == N.ERR_UNKNOWNERROR


def test_line_of_exactly_512_bytes_with_crlf_is_accepted_and_513_is_not():
    head = b"PRIVMSG #c :"
    ok = head + b"x" * (510 - len(head))
    assert parse(ok).params[1] == "x" * (510 - len(head))
    with pytest.raises(InputTooLong) as exc:
        parse(ok + b"x")
    assert exc.value.numeric == N.ERR_INPUTTOOLONG


def test_tags_have_their_own_budget():
    tags = b"@" + b"k=" + b"v" * 4000
    assert parse(tags + b" " + b"PRIVMSG #c :" + b"x" * 490).command == "PRIVMSG"
    with pytest.raises(InputTooLong):
        parse(b"@" + b"k=" + b"v" * 4100 + b" PING x")


def test_client_tag_data_of_exactly_4094_bytes_is_accepted_and_4095_is_not():
    data = b"+k=" + b"v" * (4094 - 3)  # IRCv3 message-tags: 4094 bytes, 4096 with '@' and the space
    assert parse(b"@" + data + b" TAGMSG #c").tags["+k"] == "v" * 4091
    with pytest.raises(InputTooLong) as exc:
        parse(b"@" + data + b"v TAGMSG #c")
    assert exc.value.numeric == N.ERR_INPUTTOOLONG


def test_a_server_line_may_carry_server_tags_on_top_of_the_client_budget():
    relayed = b"@time=2024-01-01T00:00:00.000Z;msgid=x1;+k=" + b"v" * 4091 + b" :n!u@h TAGMSG #c"
    with pytest.raises(InputTooLong):
        parse(relayed)
    assert parse(relayed, MAX_TAG_DATA).tags["+k"] == "v" * 4091
    with pytest.raises(InputTooLong):
        parse(b"@+k=" + b"v" * MAX_TAG_DATA + b" TAGMSG #c", MAX_TAG_DATA)


def test_invalid_utf8_survives_a_round_trip_unchanged():
    raw = b":n!u@h PRIVMSG #c :\xff\xfe bytes \xc3"
    assert serialize(parse(raw)) == raw + b"\r\n"


def test_format_line_puts_a_colon_only_where_needed():
    assert format_line("srv", "001", "nick", "Welcome home") == b":srv 001 nick :Welcome home\r\n"
    assert format_line(None, "PING", "token") == b"PING token\r\n"
    assert format_line(None, "PRIVMSG", "#c", "") == b"PRIVMSG #c :\r\n"
    assert format_line(None, "PRIVMSG", "#c", ":)") == b"PRIVMSG #c ::)\r\n"


@pytest.mark.parametrize("bad", ["a\rb", "a\nb", "a\x00b"])
def test_format_line_refuses_line_injection(bad):
    with pytest.raises(ValueError):
        format_line("n!u@h", "PRIVMSG", "#c", bad)


def test_format_line_refuses_a_middle_param_that_would_change_meaning():
    with pytest.raises(ValueError):
        format_line(None, "KICK", "#c", "two words", "reason")


def test_truncate_utf8_never_splits_a_code_point():
    assert truncate_utf8("aé", 2) == "a"
    assert truncate_utf8("aé", 3) == "aé"
    assert truncate_utf8("€€", 4) == "€"
    assert truncate_utf8("abc", 10) == "abc"


# --- properties ------------------------------------------------------------------------------
middle = st.text(st.characters(blacklist_characters=" \r\n\x00:", blacklist_categories=("Cs",)), min_size=1,
                 max_size=20)
trailing = st.text(st.characters(blacklist_characters="\r\n\x00", blacklist_categories=("Cs",)), max_size=60)
command = st.one_of(st.from_regex(r"[A-Z]{1,10}", fullmatch=True), st.from_regex(r"[0-9]{3}", fullmatch=True))
tag_key = st.from_regex(r"\+?[a-z][a-z0-9-]{0,10}", fullmatch=True)
tag_value = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20)


@st.composite
def messages(draw):
    params = draw(st.lists(middle, max_size=5))
    if draw(st.booleans()):
        params.append(draw(trailing))
    source = draw(st.one_of(st.none(), middle))
    tags = draw(st.dictionaries(tag_key, tag_value, max_size=3))
    return Message(draw(command), params, source, tags)


@settings(max_examples=300, deadline=None)
@given(messages())
def test_serialize_then_parse_is_identity(msg):
    line = serialize(msg)
    assert line.endswith(b"\r\n") and b"\r" not in line[:-2] and b"\n" not in line[:-2]
    again = parse(line[:-2])
    # An empty tag value and a missing one mean the same thing.
    assert again == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_parse_never_fails_except_with_a_protocol_error(data):
    line = data.replace(b"\r", b"").replace(b"\n", b"")
    try:
        msg = parse(line)
    except ProtocolError:
        return
    assert msg.command == msg.command.upper()
    for param in msg.params:
        assert "\r" not in param and "\n" not in param and "\x00" not in param


@given(tag_value)
def test_tag_escaping_round_trips(value):
    assert unescape_tag_value(escape_tag_value(value)) == value
