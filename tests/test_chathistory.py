"""CHATHISTORY and SEARCH on their own: parameters in, a query or a FAIL out (ircproto/chathistory.py);
rows in, the batch's bytes out; and through a `Session` with a fake hub (tests/test_session.py):
the query asked of the hub, the client's later lines held until its answer, the answer written
once. No process, no socket."""
from __future__ import annotations

import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipc import link
from ircproto import chathistory as ch
from ircproto.chathistory import (Caps, Fail, Record, format_timestamp, parse_chathistory, parse_search,
                                  parse_timestamp, refusal, render)
from ircproto.message import MAX_LINE, MAX_TAGGED_LINE, MAX_TAG_DATA, format_line, parse
from tests.test_session import CID, new_session, output, register
from workers.delivery import _iso
from workers.session import AWAITING_HUB, READY

T0 = "2019-01-04T14:33:26.123Z"
US0 = 1546612406123000  # T0 in microseconds
T1 = "2019-01-04T14:34:17.500Z"
US1 = 1546612457500000


def fail(code: str, *params: str, command: str = "CHATHISTORY") -> Fail:
    return Fail(command, code, params)


# --- timestamps --------------------------------------------------------------------------------
@pytest.mark.parametrize("text,us", [
    (T0, US0),
    ("2019-01-04T14:33:26Z", 1546612406000000),  # no fraction
    ("2019-01-04T14:33:26.1Z", 1546612406100000),
    ("2019-01-04T14:33:26.123456Z", 1546612406123456),
    ("2019-01-04T14:33:26.123456789Z", 1546612406123456),  # past the microsecond: dropped
    ("1970-01-01T00:00:00.000Z", 0),
    ("2020-02-29T23:59:59.999Z", 1583020799999000),  # a leap day
])
def test_timestamps_parse_to_microseconds(text, us):
    assert parse_timestamp(text) == us


@pytest.mark.parametrize("text", [
    "", "2019-01-04", "2019-01-04T14:33:26.123", "2019-01-04 14:33:26.123Z", "2019-01-04T14:33:26.Z",
    "2019-13-04T14:33:26Z", "2019-02-29T00:00:00Z", "2019-01-04T24:00:00Z", "2019-01-04T14:60:00Z",
    "2019-01-04T14:33:60Z", "0000-01-01T00:00:00Z", "2019-01-04T14:33:26.1234567890Z",
    "2019-01-04T14:33:26+00:00", "٢٠١٩-01-04T14:33:26Z", "2019-01-04T14:33:26.123Zx", "x2019-01-04T14:33:26Z",
])
def test_bad_timestamps_are_none(text):
    assert parse_timestamp(text) is None


@pytest.mark.parametrize("us,text", [
    (US0, T0), (US0 + 499, T0), (US0 + 501, "2019-01-04T14:33:26.124Z"),  # the nearest ms
    (1546612406999600, "2019-01-04T14:33:27.000Z"), (0, "1970-01-01T00:00:00.000Z"),
])
def test_timestamps_format_to_the_nearest_millisecond(us, text):
    assert format_timestamp(us) == text


@given(st.integers(min_value=0, max_value=4102444800000000))  # to 2100
def test_history_shows_the_time_live_delivery_showed(us):
    """The hub stamps integer microseconds and sends `us / 1e6` seconds; live delivery shows them
    as delivery._iso does, even at exactly half a millisecond."""
    assert format_timestamp(us) == _iso(us / 1_000_000)
    assert format_timestamp(us // 1000 * 1000 + 500) == _iso((us // 1000 * 1000 + 500) / 1_000_000)


@given(st.integers(min_value=0, max_value=253402300799999000))
def test_a_formatted_time_parses_back_to_its_millisecond(us):
    assert abs(parse_timestamp(format_timestamp(us)) - us) <= 500


# --- CHATHISTORY: queries -------------------------------------------------------------------------
QUERIES = [
    ("LATEST #lobby * 50", ("LATEST", "#lobby", None, 50, False)),
    ("LATEST #lobby msgid=abc 50", ("LATEST", "#lobby", ("msgid", "abc"), 50, False)),
    (f"LATEST bob timestamp={T0} 1", ("LATEST", "bob", ("timestamp", US0), 1, False)),
    ("latest #lobby * 5", ("LATEST", "#lobby", None, 5, False)),  # subcommands in any case
    (f"BEFORE #lobby timestamp={T0} 10", ("BEFORE", "#lobby", ("timestamp", US0), 10, False)),
    ("AFTER #Lobby msgid=x-1 10", ("AFTER", "#Lobby", ("msgid", "x-1"), 10, False)),  # the name as given
    ("AROUND #lobby msgid=m 7", ("AROUND", "#lobby", ("msgid", "m"), 7, False)),
    ("AROUND #lobby MSGID=m 7", ("AROUND", "#lobby", ("msgid", "m"), 7, False)),  # the type in any case
    (f"BETWEEN #lobby msgid=a timestamp={T1} 20", ("BETWEEN", "#lobby", ("msgid", "a"), ("timestamp", US1), 20, False)),
    (f"BETWEEN #lobby timestamp={T1} timestamp={T0} 20",  # backwards in time: kept in the order given
     ("BETWEEN", "#lobby", ("timestamp", US1), ("timestamp", US0), 20, False)),
    (f"TARGETS timestamp={T0} timestamp={T1} 30", ("TARGETS", ("timestamp", US0), ("timestamp", US1), 30, False)),
    ("LATEST #lobby * 100", ("LATEST", "#lobby", None, 100, False)),
    ("LATEST #lobby * 101", ("LATEST", "#lobby", None, 100, False)),  # over the maximum: clamped
    ("LATEST #lobby * 99999999999999999999999", ("LATEST", "#lobby", None, 100, False)),
    ("LATEST #lobby * 007", ("LATEST", "#lobby", None, 7, False)),
    ("LATEST [bot]|x * 1", ("LATEST", "[bot]|x", None, 1, False)),  # a nick with specials
]


@pytest.mark.parametrize("line,query", QUERIES)
def test_chathistory_queries(line, query):
    assert parse_chathistory(line.split(), playback=False) == query


def test_the_playback_flag_is_the_last_element_of_every_query():
    for line, query in QUERIES:
        assert parse_chathistory(line.split(), playback=True) == (*query[:-1], True)


def test_the_maximum_is_a_parameter():
    assert parse_chathistory("LATEST #a * 50".split(), False, max_limit=20) == ("LATEST", "#a", None, 20, False)


# --- CHATHISTORY: every refusal, with the spec's code and parameters -------------------------------
FAILS = [
    ([], fail("INVALID_PARAMS", "*", "Insufficient parameters")),
    (["FOO"], fail("INVALID_PARAMS", "FOO", "Unknown subcommand")),
    (["foo", "#a", "*", "5"], fail("INVALID_PARAMS", "foo", "Unknown subcommand")),  # as given
    (["LATEST"], fail("INVALID_PARAMS", "LATEST", "Insufficient parameters")),
    (["LATEST", "#a", "*"], fail("INVALID_PARAMS", "LATEST", "Insufficient parameters")),
    (["BETWEEN", "#a", "msgid=a", "5"], fail("INVALID_PARAMS", "BETWEEN", "Insufficient parameters")),
    (["TARGETS", f"timestamp={T0}", "5"], fail("INVALID_PARAMS", "TARGETS", "Insufficient parameters")),
    (["LATEST", "#a", "*", "5", "6"], fail("INVALID_PARAMS", "LATEST", "Too many parameters")),
    (["before", "#a", "msgid=a", "msgid=b", "5"], fail("INVALID_PARAMS", "BEFORE", "Too many parameters")),
    # the limit
    (["LATEST", "#a", "*", "0"], fail("INVALID_PARAMS", "LATEST", "0", "Invalid limit")),
    (["LATEST", "#a", "*", "-5"], fail("INVALID_PARAMS", "LATEST", "-5", "Invalid limit")),
    (["LATEST", "#a", "*", "+5"], fail("INVALID_PARAMS", "LATEST", "+5", "Invalid limit")),
    (["LATEST", "#a", "*", "five"], fail("INVALID_PARAMS", "LATEST", "five", "Invalid limit")),
    (["LATEST", "#a", "*", "5.0"], fail("INVALID_PARAMS", "LATEST", "5.0", "Invalid limit")),
    (["LATEST", "#a", "*", "٥"], fail("INVALID_PARAMS", "LATEST", "٥", "Invalid limit")),  # not an ASCII digit
    (["LATEST", "#a", "*", ""], fail("INVALID_PARAMS", "LATEST", "*", "Invalid limit")),  # echoed as '*'
    (["LATEST", "#a", "*", "1 0"], fail("INVALID_PARAMS", "LATEST", "*", "Invalid limit")),
    # references
    (["BEFORE", "#a", "*", "5"], fail("INVALID_PARAMS", "BEFORE", "*", "Invalid message reference")),
    (["BETWEEN", "#a", "*", "msgid=b", "5"], fail("INVALID_PARAMS", "BETWEEN", "*", "Invalid message reference")),
    (["AFTER", "#a", "abc", "5"], fail("INVALID_PARAMS", "AFTER", "abc", "Invalid message reference")),
    (["AFTER", "#a", "=abc", "5"], fail("INVALID_PARAMS", "AFTER", "=abc", "Invalid message reference")),
    (["AFTER", "#a", "msgid=", "5"], fail("INVALID_PARAMS", "AFTER", "msgid=", "Invalid message reference")),
    (["AFTER", "#a", "timestamp=yesterday", "5"],
     fail("INVALID_PARAMS", "AFTER", "timestamp=yesterday", "Invalid timestamp")),
    (["BETWEEN", "#a", "msgid=a", "timestamp=2019-02-30T00:00:00Z", "5"],
     fail("INVALID_PARAMS", "BETWEEN", "timestamp=2019-02-30T00:00:00Z", "Invalid timestamp")),
    (["AROUND", "#a", "id=5", "5"], fail("INVALID_MSGREFTYPE", "AROUND", "#a", "id=5", "Unknown message reference type")),
    (["TARGETS", "msgid=a", f"timestamp={T0}", "5"],
     fail("INVALID_MSGREFTYPE", "TARGETS", "*", "msgid=a", "Only timestamp references are allowed here")),
    (["TARGETS", f"timestamp={T0}", "*", "5"], fail("INVALID_PARAMS", "TARGETS", "*", "Invalid message reference")),
    # the target (syntax only: the hub says whether it exists and who may read it)
    (["LATEST", "1abc", "*", "5"], fail("INVALID_TARGET", "LATEST", "1abc", "Messages could not be retrieved")),
    (["LATEST", "#", "*", "5"], fail("INVALID_TARGET", "LATEST", "#", "Messages could not be retrieved")),
    (["LATEST", "*", "*", "5"], fail("INVALID_TARGET", "LATEST", "*", "Messages could not be retrieved")),
    (["LATEST", "a,b", "*", "5"], fail("INVALID_TARGET", "LATEST", "a,b", "Messages could not be retrieved")),
    (["LATEST", "#a\x07", "*", "5"], fail("INVALID_TARGET", "LATEST", "#a\x07", "Messages could not be retrieved")),
    (["LATEST", "#" + "x" * 200, "*", "5"], fail("INVALID_TARGET", "LATEST", "*", "Messages could not be retrieved")),
]


@pytest.mark.parametrize("params,expected", FAILS)
def test_chathistory_refusals(params, expected):
    assert parse_chathistory(params, playback=False) == expected


def test_the_target_is_checked_before_the_references_and_the_references_before_the_limit():
    assert parse_chathistory(["AFTER", "1x", "abc", "0"], False).code == "INVALID_TARGET"
    assert parse_chathistory(["AFTER", "#a", "abc", "0"], False).params[1:] == ("abc", "Invalid message reference")


# --- SEARCH ----------------------------------------------------------------------------------
SEARCHES = [
    ("in=#chan;from=jackie", ("SEARCH", "#chan", "jackie", None, None, None, 100, False)),
    ("text=fast;in=#chan;limit=2", ("SEARCH", "#chan", None, None, None, "fast", 2, False)),
    ("before=2010-01-01T00:00:00.000Z;in=#chan", ("SEARCH", "#chan", None, None, 1262304000000000, None, 100, False)),
    (f"after={T0};before={T1}", ("SEARCH", None, None, US0, US1, None, 100, False)),
    ("text=hello\\sworld\\:", ("SEARCH", None, None, None, None, "hello world;", 100, False)),  # tag escapes
    ("text=two words", ("SEARCH", None, None, None, None, "two words", 100, False)),  # raw spaces (trailing)
    ("text=", ("SEARCH", None, None, None, None, None, 100, False)),  # no text: no text filter
    ("in=bob;limit=1000", ("SEARCH", "bob", None, None, None, None, 100, False)),  # clamped
    ("in=#a;in=#b", ("SEARCH", "#b", None, None, None, None, 100, False)),  # as tags: the last one counts
    ("colour=red;in=#a", ("SEARCH", "#a", None, None, None, None, 100, False)),  # unknown: ignored, as soju
    ("", ("SEARCH", None, None, None, None, None, 100, False)),
    (";;in=#a;", ("SEARCH", "#a", None, None, None, None, 100, False)),
]


@pytest.mark.parametrize("attrs,query", SEARCHES)
def test_search_queries(attrs, query):
    assert parse_search([attrs]) == query


@pytest.mark.parametrize("params,expected", [
    ([], fail("INVALID_PARAMS", "Insufficient parameters", command="SEARCH")),
    (["in=#a", "more"], fail("INVALID_PARAMS", "Too many parameters", command="SEARCH")),
    (["in=#"], fail("INVALID_PARAMS", "in", "Invalid target", command="SEARCH")),
    (["in="], fail("INVALID_PARAMS", "in", "Invalid target", command="SEARCH")),
    (["from=9lives"], fail("INVALID_PARAMS", "from", "Invalid nick", command="SEARCH")),
    (["from="], fail("INVALID_PARAMS", "from", "Invalid nick", command="SEARCH")),
    (["after=today"], fail("INVALID_PARAMS", "after", "Invalid timestamp", command="SEARCH")),
    (["before=2019-01-04"], fail("INVALID_PARAMS", "before", "Invalid timestamp", command="SEARCH")),
    (["limit=0"], fail("INVALID_PARAMS", "limit", "Invalid limit", command="SEARCH")),
    (["limit=x;in=#a"], fail("INVALID_PARAMS", "limit", "Invalid limit", command="SEARCH")),
    (["limit="], fail("INVALID_PARAMS", "limit", "Invalid limit", command="SEARCH")),
])
def test_search_refusals(params, expected):
    assert parse_search(params) == expected


# --- what the hub needs ---------------------------------------------------------------------------
def test_accessors_and_refusals_for_the_hub():
    latest = ("LATEST", "#a", None, 5, True)
    targets = ("TARGETS", ("timestamp", 0), ("timestamp", 1), 9, False)
    search = ("SEARCH", None, "bob", None, None, "x", 3, False)
    assert [ch.query_target(q) for q in (latest, targets, search)] == ["#a", None, None]
    assert [ch.query_limit(q) for q in (latest, targets, search)] == [5, 9, 3]
    assert [ch.query_playback(q) for q in (latest, targets, search)] == [True, False, False]
    assert refusal(latest) == ("CHATHISTORY", "INVALID_TARGET", ("LATEST", "#a", "Messages could not be retrieved"))
    assert refusal(latest, ch.MESSAGE_ERROR) == ("CHATHISTORY", "MESSAGE_ERROR",
                                                 ("LATEST", "#a", "Messages could not be retrieved"))
    assert refusal(targets) == ("CHATHISTORY", "MESSAGE_ERROR", ("TARGETS", "*", "Messages could not be retrieved"))
    assert refusal(search) == ("SEARCH", "INVALID_PARAMS", ("in", "Invalid target"))
    assert refusal(search, ch.INTERNAL_ERROR) == ("SEARCH", "INTERNAL_ERROR", ("The search could not be run",))


def test_queries_are_plain_hashable_picklable_tuples():
    for line, query in QUERIES:
        assert pickle.loads(pickle.dumps(query)) == query and hash(query) is not None
        assert all(type(x) in (str, int, bool, tuple, type(None)) for x in query)


# --- rendering ------------------------------------------------------------------------------------
def rec(msgid: str, us: int, kind: str, line: str, tags: str = "", target: str = "#lobby") -> tuple:
    return tuple(Record(msgid, us, target, "", kind, "alice", "alice", line, tags))


ROWS = [
    rec("m1", US0, "PRIVMSG", ":alice!a@h PRIVMSG #lobby :hi", "+draft/reply=m0"),
    rec("m2", US0 + 11_000, "JOIN", ":bob!b@h JOIN #lobby * :Bob B"),
    rec("m3", US0 + 12_000, "NOTICE", ":bob!b@h NOTICE #lobby :a notice"),
    rec("m4", US0 + 13_000, "TAGMSG", ":bob!b@h TAGMSG #lobby", "+typing=active"),
    rec("m5", US0 + 14_000, "PART", ":bob!b@h PART #lobby :bye"),
]
FULL = Caps(batch=True, server_time=True, message_tags=True, extended_join=True)
LATEST = ("LATEST", "#lobby", None, 50, False)
PLAYBACK = ("LATEST", "#lobby", None, 50, True)


def lines_of(query, rows=ROWS, caps=FULL, name=None) -> list[str]:
    return [line.decode() for line in render(query, rows, "irc.test", "r1", caps, name)]


def test_a_batch_with_every_tag():
    assert lines_of(LATEST) == [
        ":irc.test BATCH +r1 chathistory #lobby\r\n",
        f"@batch=r1;time={T0};msgid=m1;+draft/reply=m0 :alice!a@h PRIVMSG #lobby :hi\r\n",
        "@batch=r1;time=2019-01-04T14:33:26.135Z;msgid=m3 :bob!b@h NOTICE #lobby :a notice\r\n",
        ":irc.test BATCH -r1\r\n",
    ]


def test_event_playback_adds_the_events():
    assert [line.split(" ", 2)[-1] for line in lines_of(PLAYBACK)[1:-1]] == [
        "PRIVMSG #lobby :hi\r\n", "JOIN #lobby * :Bob B\r\n", "NOTICE #lobby :a notice\r\n",
        "TAGMSG #lobby\r\n", "PART #lobby :bye\r\n"]
    assert "+typing=active" in lines_of(PLAYBACK)[4]


def test_without_extended_join_a_join_is_plain():
    lines = lines_of(PLAYBACK, caps=FULL._replace(extended_join=False))
    assert lines[2] == "@batch=r1;time=2019-01-04T14:33:26.134Z;msgid=m2 :bob!b@h JOIN #lobby\r\n"


def test_without_message_tags_no_msgid_no_client_tags_and_no_tagmsg():
    lines = lines_of(PLAYBACK, caps=Caps(batch=True, server_time=True))
    assert lines[1] == f"@batch=r1;time={T0} :alice!a@h PRIVMSG #lobby :hi\r\n"
    assert not any("TAGMSG" in line or "msgid" in line for line in lines)


def test_without_server_time_no_time():
    assert lines_of(LATEST, caps=Caps(batch=True, message_tags=True))[1] == \
        "@batch=r1;msgid=m1;+draft/reply=m0 :alice!a@h PRIVMSG #lobby :hi\r\n"


def test_without_batch_the_bare_lines_and_without_anything_the_lines_as_stored():
    assert lines_of(LATEST, caps=Caps(server_time=True)) == [
        f"@time={T0} :alice!a@h PRIVMSG #lobby :hi\r\n",
        "@time=2019-01-04T14:33:26.135Z :bob!b@h NOTICE #lobby :a notice\r\n"]
    assert lines_of(LATEST, caps=Caps()) == [":alice!a@h PRIVMSG #lobby :hi\r\n", ":bob!b@h NOTICE #lobby :a notice\r\n"]


def test_an_empty_answer_is_an_empty_batch_or_nothing():
    assert lines_of(LATEST, rows=[]) == [":irc.test BATCH +r1 chathistory #lobby\r\n", ":irc.test BATCH -r1\r\n"]
    assert lines_of(LATEST, rows=[], caps=Caps(server_time=True, message_tags=True)) == []


def test_the_batch_shows_the_name_it_is_given():
    assert lines_of(("LATEST", "#LOBBY", None, 5, False), rows=[])[0] == ":irc.test BATCH +r1 chathistory #LOBBY\r\n"
    assert lines_of(("LATEST", "#LOBBY", None, 5, False), rows=[], name="#Lobby")[0] == \
        ":irc.test BATCH +r1 chathistory #Lobby\r\n"


def test_search_is_its_own_batch_and_never_shows_events():
    search = ("SEARCH", "#lobby", None, None, None, None, 10, True)  # even if a flag said so
    lines = lines_of(search)
    assert lines[0] == ":irc.test BATCH +r1 soju.im/search\r\n" and len(lines) == 4


def test_targets():
    rows = [("#lobby", US0), ("bob", US1), ("not a name", US1)]
    query = ("TARGETS", ("timestamp", 0), ("timestamp", US1), 10, False)
    assert lines_of(query, rows=rows) == [
        ":irc.test BATCH +r1 draft/chathistory-targets\r\n",
        f"@batch=r1 :irc.test CHATHISTORY TARGETS #lobby {T0}\r\n",
        f"@batch=r1 :irc.test CHATHISTORY TARGETS bob {T1}\r\n",
        ":irc.test BATCH -r1\r\n"]
    assert lines_of(query, rows=rows, caps=Caps(server_time=True)) == [
        f":irc.test CHATHISTORY TARGETS #lobby {T0}\r\n", f":irc.test CHATHISTORY TARGETS bob {T1}\r\n"]


def test_stored_lines_may_be_bytes_with_their_crlf_and_rows_that_could_break_framing_are_dropped():
    rows = [rec("a", US0, "PRIVMSG", ":x!u@h PRIVMSG #lobby :one"),
            tuple(Record("b", US0, "#lobby", "", "PRIVMSG", "x", "x", b":x!u@h PRIVMSG #lobby :two\r\n", "")),
            rec("c", US0, "PRIVMSG", ":x!u@h PRIVMSG #lobby :three\r\nQUIT"),
            rec("d", US0, "PRIVMSG", ":x!u@h PRIVMSG #lobby :nul\x00"),
            rec("e", US0, "PRIVMSG", ""),
            rec("f", US0, "PRIVMSG", ":x!u@h PRIVMSG #lobby :tags", "+a=b c"),  # a space: the tags are left off
            rec("g", US0, "KILL", ":x!u@h KILL y :no"),  # not a kind history shows
            rec("h", US0, "JOIN", ":x!u@h JOIN")]  # a JOIN without its channel
    lines = lines_of(("LATEST", "#lobby", None, 50, True), rows=rows, caps=Caps(message_tags=True))
    assert lines == ["@msgid=a :x!u@h PRIVMSG #lobby :one\r\n", "@msgid=b :x!u@h PRIVMSG #lobby :two\r\n",
                     "@msgid=f :x!u@h PRIVMSG #lobby :tags\r\n"]


def test_a_msgid_is_escaped_as_a_tag_value():
    rows = [rec("a;b c", US0, "PRIVMSG", ":x!u@h PRIVMSG #lobby :hi")]
    assert lines_of(LATEST, rows=rows, caps=Caps(message_tags=True)) == ["@msgid=a\\:b\\sc :x!u@h PRIVMSG #lobby :hi\r\n"]


def test_hundreds_of_rows_render_as_one_blob_of_valid_lines():
    rows = [rec(f"m{i}", US0 + i * 1000, "PRIVMSG", f":u{i}!u@h PRIVMSG #lobby :message {i}", "+k=v") for i in range(500)]
    lines = render(LATEST, rows, "irc.test", "r9", FULL)
    assert len(lines) == 502
    parsed = [parse(line[:-2], MAX_TAG_DATA) for line in lines]
    assert [m.tags.get("msgid") for m in parsed[1:-1]] == [f"m{i}" for i in range(500)]
    assert {m.tags["batch"] for m in parsed[1:-1]} == {"r9"}


# --- properties -------------------------------------------------------------------------------------
token = st.one_of(
    st.sampled_from(["LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN", "TARGETS", "latest", "*", "#a", "bob",
                     "msgid=x", "timestamp=" + T0, "timestamp=", "msgid=", "10", "0", "-1", "101", ""]),
    st.text(max_size=30),
    st.text(alphabet="#*=:;,0123456789TZmsgidtaep.- \r\n\x00\x07", max_size=40),
)


@settings(max_examples=500)
@given(st.lists(token, max_size=7), st.booleans(), st.integers(min_value=1, max_value=1000))
def test_parse_chathistory_never_raises_and_answers_a_query_or_a_fail_that_can_be_sent(params, playback, max_limit):
    result = parse_chathistory(params, playback, max_limit)
    if type(result) is Fail:
        assert result.command == "CHATHISTORY" and result.code in (
            "INVALID_PARAMS", "INVALID_TARGET", "INVALID_MSGREFTYPE")
        line = format_line("irc.test", "FAIL", result.command, result.code, *result.params)
        assert len(line) <= MAX_LINE and parse(line[:-2]).params == ["CHATHISTORY", *result[1:2], *result.params]
    else:
        assert type(result) is tuple and result[0] in ch._ARITY and result[-1] is playback
        assert 1 <= result[-2] <= max_limit
        pickle.dumps(result)
        hash(result)


@settings(max_examples=300)
@given(st.lists(st.text(max_size=60), max_size=3), st.integers(min_value=1, max_value=1000))
def test_parse_search_never_raises(params, max_limit):
    result = parse_search(params, max_limit)
    if type(result) is Fail:
        assert result.command == "SEARCH" and result.code == "INVALID_PARAMS"
        assert len(format_line("irc.test", "FAIL", result.command, result.code, *result.params)) <= MAX_LINE
    else:
        assert result[0] == "SEARCH" and 1 <= result[-2] <= max_limit and result[-1] is False
        hash(result)


kinds = st.sampled_from(sorted(ch.EVENT_KINDS | {"KILL", "WALLOPS"}))
stored_line = st.one_of(
    st.builds(lambda n, t: f":{n}!u@h PRIVMSG #lobby :{t}", st.text("abcxyz", min_size=1, max_size=9),
              st.text(max_size=400)),
    st.builds(lambda n, r: f":{n}!u@h JOIN #lobby * :{r}", st.text("abc", min_size=1, max_size=9), st.text(max_size=300)),
    st.text(max_size=500))
client_tags = st.one_of(st.just(""), st.builds(lambda v: "+draft/reply=" + v, st.text("abc019-", max_size=4000)),
                        st.text(max_size=50))
rows = st.lists(st.builds(lambda i, us, k, line, tags: tuple(Record(i, us, "#lobby", "", k, "n", "n", line, tags)),
                          st.text("abcdef0123456789-", min_size=1, max_size=40),
                          st.integers(min_value=0, max_value=253402300799999000), kinds, stored_line, client_tags),
                max_size=20)
caps = st.builds(Caps, st.booleans(), st.booleans(), st.booleans(), st.booleans())


@settings(max_examples=300)
@given(rows, caps, st.booleans(), st.sampled_from(["LATEST", "SEARCH"]))
def test_rendered_lines_are_valid_irc_within_the_line_limits(rows, caps, playback, sub):
    query = ("LATEST", "#lobby", None, 50, playback) if sub == "LATEST" else \
        ("SEARCH", None, None, None, None, None, 50, False)
    lines = render(query, rows, "irc.test", "7f", caps)
    for line in lines:
        assert line.endswith(b"\r\n") and line.count(b"\n") == 1 and b"\r" not in line[:-2] and b"\x00" not in line
        assert len(line) <= MAX_TAGGED_LINE + MAX_LINE
        msg = parse(line[:-2], MAX_TAG_DATA)
        assert msg.command in ch.EVENT_KINDS | {"BATCH"}
        if caps.batch and msg.command != "BATCH":
            assert msg.tags["batch"] == "7f"
        if msg.command == "BATCH":
            continue
        assert ("time" in msg.tags) == caps.server_time and ("msgid" in msg.tags) == caps.message_tags
        if not (playback and sub == "LATEST"):
            assert msg.command in ("PRIVMSG", "NOTICE")
        if not caps.message_tags:
            assert msg.command != "TAGMSG" and not any(k.startswith("+") for k in msg.tags)
        if msg.command == "JOIN" and not caps.extended_join:
            assert len(msg.params) == 1
    if caps.batch:
        assert lines[0].split(b" ")[1:3] == [b"BATCH", b"+7f"] and lines[-1] == b":irc.test BATCH -7f\r\n"


# --- through a session, with a fake hub --------------------------------------------------------------
def ready(caps: str = "") -> tuple:
    s, server, hub = new_session()
    if caps:
        s.receive(f"CAP REQ :{caps}\r\nCAP END\r\n".encode(), 100.0)
    register(s, hub)
    hub.drain()
    return s, server, hub


def test_a_query_goes_to_the_hub_and_holds_the_clients_later_lines_until_the_answer():
    s, server, hub = ready("batch server-time message-tags")
    s.receive(b"CHATHISTORY LATEST #lobby * 10\r\nPING :after\r\n", 100.0)
    assert hub.drain() == [(link.R_HISTORY, CID, ("LATEST", "#lobby", None, 10, False))]
    assert s.holding == AWAITING_HUB and list(s.backlog) == [b"PING :after"] and output(s) == []
    writes_before = len(s.outbuf)
    hub.feed((link.D_HISTORY, CID, ("LATEST", "#lobby", None, 10, False), ROWS))
    assert len(s.outbuf) == writes_before + 1  # the whole batch in one write
    lines = output(s)
    assert [m.command for m in lines] == ["BATCH", "PRIVMSG", "NOTICE", "BATCH"]
    assert lines[0].params[1:] == ["chathistory", "#lobby"] and lines[1].tags["msgid"] == "m1"
    assert s.holding == READY
    hub.run()  # the PING waits behind a barrier: the query was a request
    assert [m.command for m in output(s)] == ["PONG"]


def test_event_playback_is_asked_for_in_the_query():
    s, server, hub = ready("draft/event-playback")
    s.receive(b"CHATHISTORY AROUND bob msgid=x 3\r\n", 100.0)
    assert hub.drain() == [(link.R_HISTORY, CID, ("AROUND", "bob", ("msgid", "x"), 3, True))]


def test_search_goes_to_the_hub_too():
    s, server, hub = ready()
    s.receive(b"SEARCH :in=#lobby;text=hello there;limit=5\r\n", 100.0)
    assert hub.drain() == [(link.R_HISTORY, CID, ("SEARCH", "#lobby", None, None, None, "hello there", 5, False))]


def test_bad_syntax_is_answered_by_the_worker_and_asks_nothing():
    s, server, hub = ready()
    s.receive(b"CHATHISTORY BEFORE #lobby * 10\r\nSEARCH limit=0\r\nCHATHISTORY\r\nPING :x\r\n", 100.0)
    assert hub.drain() == [] and s.holding == READY
    assert [m.params for m in output(s)] == [
        ["CHATHISTORY", "INVALID_PARAMS", "BEFORE", "*", "Invalid message reference"],
        ["SEARCH", "INVALID_PARAMS", "limit", "Invalid limit"],
        ["CHATHISTORY", "INVALID_PARAMS", "*", "Insufficient parameters"],
        ["irc.test", "x"]]


def test_only_registered_clients():
    s, server, hub = new_session()
    s.receive(b"CHATHISTORY LATEST #lobby * 10\r\n", 100.0)
    assert hub.drain() == [] and [m.command for m in output(s)] == ["451"]


def test_a_fail_from_the_hub_ends_the_wait():
    s, server, hub = ready()
    s.receive(b"CHATHISTORY LATEST #secret * 10\r\nPING :after\r\n", 100.0)
    hub.drain()
    hub.feed((link.D_FAIL, CID, *refusal(("LATEST", "#secret", None, 10, False))))
    assert s.holding == READY
    hub.run()
    assert [m.params for m in output(s)] == [
        ["CHATHISTORY", "INVALID_TARGET", "LATEST", "#secret", "Messages could not be retrieved"], ["irc.test", "after"]]


def test_a_fail_for_another_command_does_not_end_the_wait():
    s, server, hub = ready()
    s.receive(b"CHATHISTORY LATEST #lobby * 10\r\n", 100.0)
    hub.drain()
    hub.feed((link.D_FAIL, CID, "RENAME", "CANNOT_RENAME", ("#a", "#b", "No")))
    assert s.holding == AWAITING_HUB


def test_an_answer_replayed_after_a_hub_restart_is_written_once():
    s, server, hub = ready("batch")
    s.receive(b"CHATHISTORY LATEST #lobby * 10\r\n", 100.0)
    hub.drain()
    answer = (link.D_HISTORY, CID, ("LATEST", "#lobby", None, 10, False), ROWS)
    hub.feed(answer)
    hub.feed(answer)  # the new hub answers the replayed request again
    hub.feed((link.D_FAIL, CID, *refusal(("LATEST", "#lobby", None, 10, False))))
    assert [m.command for m in output(s)] == ["BATCH", "PRIVMSG", "NOTICE", "BATCH"] and s.holding == READY


def test_the_batch_shows_the_canonical_name():
    s, server, hub = ready("batch")
    s.receive(b"JOIN #Lobby\r\n", 100.0)
    hub.run()
    output(s)
    s.receive(b"CHATHISTORY LATEST #LOBBY * 10\r\n", 100.0)
    [request] = hub.drain()
    hub.feed((link.D_HISTORY, CID, request[2], []))
    opening, closing = output(s)
    assert opening.params[1:] == ["chathistory", "#Lobby"] and closing.params == ["-" + opening.params[0][1:]]


def test_a_labelled_query_puts_its_label_on_the_batch():
    s, server, hub = ready("batch labeled-response message-tags")
    s.receive(b"@label=h1 CHATHISTORY LATEST #lobby * 10\r\n", 100.0)
    [request] = hub.drain()
    hub.feed((link.D_HISTORY, CID, request[2], ROWS))
    hub.run()  # the label waits until the request is answered in full (a barrier)
    lines = output(s)
    assert [m.command for m in lines] == ["BATCH", "PRIVMSG", "NOTICE", "BATCH"]
    assert lines[0].tags == {"label": "h1"} and lines[0].params[1] == "chathistory"
    assert all("label" not in m.tags for m in lines[1:])


def test_a_labelled_empty_answer_without_batch_is_an_ack_and_a_labelled_fail_is_labelled():
    s, server, hub = ready("labeled-response")
    s.receive(b"@label=e1 CHATHISTORY LATEST #lobby * 10\r\n", 100.0)
    [request] = hub.drain()
    hub.feed((link.D_HISTORY, CID, request[2], []))
    hub.run()
    [ack] = output(s)
    assert ack.command == "ACK" and ack.tags == {"label": "e1"}
    s.receive(b"@label=e2 CHATHISTORY LATEST #secret * 10\r\n", 100.0)
    [request] = hub.drain()
    hub.feed((link.D_FAIL, CID, *refusal(request[2])))
    hub.run()
    [failed] = output(s)
    assert failed.command == "FAIL" and failed.tags == {"label": "e2"}


def test_a_render_that_fails_costs_the_answer_not_the_wait():
    s, server, hub = ready()
    s.receive(b"CHATHISTORY LATEST #lobby * 10\r\n", 100.0)
    [request] = hub.drain()
    hub.feed((link.D_HISTORY, CID, request[2], [("not", "a", "record")]))
    assert s.holding == READY
    assert [m.params[:2] for m in output(s)] == [["CHATHISTORY", "MESSAGE_ERROR"]]
