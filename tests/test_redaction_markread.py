"""draft/message-redaction (REDACT) and draft/read-marker (MARKREAD) on plain data: parsing and the
lines rendered, as bytes; both steps of the hub's REDACT decision for every permission case;
MARKREAD's questions for the store; what the feed files, where the log's REDACT is routed, and
what the store process answers (an in-memory store)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from chatstate.state import E_CONNECTIONS, E_JOIN, E_MODE, E_USER, State, identity
from history import service
from history.feed import REDACT_ENTRY, S_FOUND, S_LOOKUP, S_MARKERS, S_MARKREAD, S_QUERY, S_WRITE, HistoryFeed, unpack
from history.store import Record, SQLiteStore
from hub.log import M_CHANMSG, M_REDACT, Log
from hub.policy import REDACT_FOUND, Ask, Policy, Reply
from hub.routing import LinkRouter
from ipc import link
from ircproto import numerics as N
from ircproto.chathistory import Fail, parse_timestamp
from ircproto.message import MAX_LINE, parse
from ircproto.readmarker import clamp, marker_param, parse_markread
from ircproto.redaction import parse_redact, redact_line

NOW = 1_700_000_000.25
A, B, C = (1 << 32 | 1), (1 << 32 | 2), (2 << 32 | 1)  # alice (operator of #room) and bob on worker 1, carol on 2
LIMITS = SimpleNamespace(chanlimit=5, nicklen=30, max_clients=9, max_clients_per_ip=9, exempt_loopback=True)
LINE = b":bob!~b@h REDACT #room m-1 :oops\r\n"


# --- parsing and rendering ---------------------------------------------------------------------------
def test_redact_parses_to_target_msgid_and_reason():
    assert parse_redact(["#room", "m-1", "a reason"]) == ("#room", "m-1", "a reason")
    assert parse_redact(["bob", "m-1"]) == ("bob", "m-1", "")


@pytest.mark.parametrize("params, fail", [
    (["#no,pe", "m-1"], Fail("REDACT", "INVALID_TARGET", ("#no,pe", "You cannot delete messages from #no,pe"))),
    (["9bob", "m-1"], Fail("REDACT", "INVALID_TARGET", ("9bob", "You cannot delete messages from 9bob"))),
    (["#room", ""], Fail("REDACT", "UNKNOWN_MSGID", ("#room", "*", "This message does not exist or is too old"))),
    (["#room", ":x"], Fail("REDACT", "UNKNOWN_MSGID", ("#room", "*", "This message does not exist or is too old"))),
    (["#room", "x" * 101], Fail("REDACT", "UNKNOWN_MSGID", ("#room", "*", "This message does not exist or is too old"))),
])
def test_redact_refusals_name_what_the_spec_names(params, fail):
    assert parse_redact(params) == fail


def test_the_redact_line_members_see():
    assert redact_line("bob!~b@h", "#Room", "m-1", "oops, wrong window") == \
        b":bob!~b@h REDACT #Room m-1 :oops, wrong window\r\n"
    assert redact_line("bob!~b@h", "alice", "m-1") == b":bob!~b@h REDACT alice m-1\r\n"
    long = redact_line("bob!~b@" + "h" * 60, "#" + "r" * 60, "m" * 100, "\u00e9" * 400)
    assert len(long) <= MAX_LINE and long.endswith(b"\r\n")
    long.decode("utf-8")  # cut on a character boundary
    reason = parse(long[:-2]).params[-1]
    assert 100 < len(reason) < 400 and set(reason) == {"\u00e9"}


def test_markread_parses_a_get_and_a_set():
    assert parse_markread(["#room"]) == ("#room", None)
    assert parse_markread(["Bob", "timestamp=2019-01-04T14:33:26.123Z"]) == \
        ("Bob", parse_timestamp("2019-01-04T14:33:26.123Z"))


@pytest.mark.parametrize("params, fail", [
    ([], Fail("MARKREAD", "NEED_MORE_PARAMS", ("Missing parameters",))),
    (["#a,b"], Fail("MARKREAD", "INVALID_PARAMS", ("#a,b", "Invalid target"))),
    (["#room", "*"], Fail("MARKREAD", "INVALID_PARAMS", ("*", "Invalid timestamp"))),
    (["#room", "2019-01-04T14:33:26.123Z"], Fail("MARKREAD", "INVALID_PARAMS", ("2019-01-04T14:33:26.123Z", "Invalid timestamp"))),
    (["#room", "timestamp=yesterday"], Fail("MARKREAD", "INVALID_PARAMS", ("timestamp=yesterday", "Invalid timestamp"))),
    (["#room", "timestamp=2019-01-04T14:33:26.123Z", "x"], Fail("MARKREAD", "INVALID_PARAMS", ("x", "Too many parameters"))),
])
def test_markread_refusals(params, fail):
    assert parse_markread(params) == fail


def test_a_marker_is_shown_to_the_millisecond_or_as_a_star():
    assert marker_param(None) == "*"
    assert marker_param(parse_timestamp("2019-01-04T14:33:26.123Z")) == "timestamp=2019-01-04T14:33:26.123Z"


def test_a_marker_cannot_be_set_in_the_future():
    now = parse_timestamp("2019-01-04T14:33:26.123Z") / 1e6 + 0.0004  # 123.4 ms past the second
    assert clamp(parse_timestamp("2030-01-01T00:00:00Z"), now) == parse_timestamp("2019-01-04T14:33:26.124Z")
    assert clamp(parse_timestamp("2019-01-04T14:33:26.124Z"), now) == parse_timestamp("2019-01-04T14:33:26.124Z")
    assert clamp(parse_timestamp("2019-01-04T14:33:26.000Z"), now) == parse_timestamp("2019-01-04T14:33:26.000Z")


# --- the hub's policy: REDACT, first step ---------------------------------------------------------------
def world(*events: tuple, history: bool = True) -> Policy:
    policy = Policy(State(), LIMITS, history=history)
    for cid, nick in ((A, "alice"), (B, "bob"), (C, "carol")):
        policy.connections.admit(cid, "10.0.0.1")
        policy.state.apply((E_USER, cid, nick, "~" + nick[0], "h", nick.title(), 1.0))
    policy.state.apply((E_CONNECTIONS, 3))
    for event in ((E_JOIN, A, "#Room", 1.0), (E_JOIN, B, "#room", 1.0), *events):
        policy.state.apply(event)
    return policy


def who(policy: Policy, cid: int) -> str:
    return identity(policy.state.users[cid])


def answered(cid: int) -> Reply:
    return Reply(cid, (link.D_ANSWERED, cid, "REDACT"))


def fail(cid: int, code: str, *params: str) -> Reply:
    return Reply(cid, (link.D_FAIL, cid, "REDACT", code, params))


def test_a_member_asks_the_store_about_a_channels_message():
    policy = world()
    out = policy.decide((link.R_REDACT, B, "#ROOM", "m-1", LINE, "o-1"), NOW)
    assert out == [Ask(B, ("m-1", ("", "#room"), "", (B, "#ROOM", "m-1", LINE, "o-1", "", False)), S_LOOKUP)]


def test_a_private_message_is_looked_up_in_the_askers_own_history_with_the_other_party():
    policy = world()
    out = policy.decide((link.R_REDACT, A, "Carol", "m-2", LINE, "o-2"), NOW)
    place, peer = (who(policy, A), "carol"), who(policy, C)
    assert out == [Ask(A, ("m-2", place, peer, (A, "Carol", "m-2", LINE, "o-2", peer, False)), S_LOOKUP)]
    out = policy.decide((link.R_REDACT, A, "nobody", "m-2", LINE, "o-2"), NOW)  # gone: still the asker's history
    assert out[0].item[1:3] == ((who(policy, A), "nobody"), "")


@pytest.mark.parametrize("target, refusal", [
    ("#room", (N.ERR_NOTONCHANNEL, ("#room", "You're not on that channel"))),
    ("#none", (N.ERR_NOSUCHCHANNEL, ("#none", "No such channel"))),
])
def test_who_may_not_name_a_channel_is_refused_and_answered(target, refusal):
    out = world().decide((link.R_REDACT, C, target, "m-1", LINE, "o-1"), NOW)
    assert out == [Reply(C, (link.D_NUMERIC, C, *refusal)), answered(C)]


def test_a_replayed_refusal_is_silent_but_still_answered():
    out = world().decide((link.R_REDACT, C, "#room", "m-1", LINE, "o-1"), NOW, replayed=True)
    assert out == [answered(C)]


def test_without_history_no_message_can_be_found():
    out = world(history=False).decide((link.R_REDACT, B, "#room", "m-1", LINE, "o-1"), NOW)
    assert out == [fail(B, "UNKNOWN_MSGID", "#room", "m-1", "This message does not exist or is too old"), answered(B)]


def test_a_client_the_hub_does_not_know_is_answered():
    assert world().decide((link.R_REDACT, C + 5, "#room", "m-1", LINE, "o-1"), NOW) == [answered(C + 5)]


# --- REDACT, second step: what the store found ----------------------------------------------------------------
def row(author: str, kind: str = "PRIVMSG", owner: str = "", target: str = "#room", sender: str = "bob") -> tuple:
    return tuple(Record("m-1", 5, target, owner, kind, sender, author, f":{sender}!~b@h {kind} {target} :x", ""))


def second(policy: Policy, asker: int, target: str, found, peer: str = "", replayed: bool = False) -> list:
    context = (asker, target, "m-1", LINE, "o-1", peer, replayed)
    return policy.decide((REDACT_FOUND, context, found), NOW)


def test_an_author_redacts_their_own_message():
    policy = world()
    out = second(policy, B, "#Room", (row(who(policy, B)), None))
    assert out == [(M_REDACT, "#room", B, LINE, "o-1", "m-1", ()), answered(B)]


def test_a_plain_member_may_not_redact_someone_elses():
    policy = world()
    out = second(policy, B, "#room", (row(who(policy, A)), None))
    assert out == [fail(B, "REDACT_FORBIDDEN", "#room", "m-1", "You are not authorised to delete this message"),
                   answered(B)]


def test_a_channel_operator_may_redact_anyones():
    policy = world()
    out = second(policy, A, "#room", (row(who(policy, B)), None))
    assert out == [(M_REDACT, "#room", A, LINE, "o-1", "m-1", ()), answered(A)]


def test_an_operator_no_longer_may_once_deopped_in_between():
    policy = world((E_MODE, A, "#room", (("-", "o", "alice"),), 1.0))
    assert second(policy, A, "#room", (row(who(policy, B)), None))[0] == \
        fail(A, "REDACT_FORBIDDEN", "#room", "m-1", "You are not authorised to delete this message")


def test_an_unknown_msgid():
    out = second(world(), B, "#room", (None, None))
    assert out == [fail(B, "UNKNOWN_MSGID", "#room", "m-1", "This message does not exist or is too old"), answered(B)]


def test_only_a_message_can_be_redacted_not_an_event():
    policy = world()
    out = second(policy, B, "#room", (row(who(policy, B), kind="JOIN"), None))
    assert out[0] == fail(B, "REDACT_FORBIDDEN", "#room", "m-1", "Only a PRIVMSG, NOTICE or TAGMSG can be deleted")


def test_a_store_that_failed_is_a_refusal_not_a_hang():
    out = second(world(), B, "#room", None)
    assert out == [fail(B, "REDACT_FORBIDDEN", "#room", "m-1", "The message could not be deleted"), answered(B)]


def test_membership_is_checked_again_in_the_second_step():
    policy = world()
    policy.decide((link.R_PART, B, "#room", ""), NOW)
    out = second(policy, B, "#room", (row(who(policy, B)), None))
    assert out == [Reply(B, (link.D_NUMERIC, B, N.ERR_NOTONCHANNEL, ("#room", "You're not on that channel"))),
                   answered(B)]


def test_a_replayed_second_step_refuses_silently_and_redacts_as_before():
    policy = world()
    assert second(policy, B, "#room", (None, None), replayed=True) == [answered(B)]
    out = second(policy, B, "#room", (row(who(policy, B)), None), replayed=True)
    assert out[0][0] == M_REDACT  # the same origin id: workers drop a second delivery by it


def test_a_private_redact_reaches_the_other_party_when_it_is_the_same_person():
    policy = world()
    alice, carol = who(policy, A), who(policy, C)
    mine = row(alice, owner=alice, target="carol", sender="alice")
    theirs = row(alice, owner=carol, target="alice", sender="alice")
    out = second(policy, A, "carol", (mine, theirs), peer=carol)
    assert out == [(M_REDACT, "", A, LINE, "o-1", "m-1", (C,)), answered(A)]
    # The nick now held by someone else: the message is redacted, the newcomer is told nothing.
    policy.decide((link.R_QUIT, C, "bye"), NOW)
    policy.state.apply((E_USER, C + 1, "carol", "~c", "h", "Carol", 50.0))
    out = second(policy, A, "carol", (mine, theirs), peer=carol)
    assert out == [(M_REDACT, "", A, LINE, "o-1", "m-1", ()), answered(A)]
    out = second(policy, A, "carol", (mine, None), peer=who(policy, C + 1))  # the newcomer holds no copy
    assert out[0] == (M_REDACT, "", A, LINE, "o-1", "m-1", ())


def test_only_the_sender_redacts_a_private_message():
    policy = world()
    alice, carol = who(policy, A), who(policy, C)
    theirs = row(carol, owner=alice, target="carol", sender="carol")  # carol wrote it to alice
    out = second(policy, A, "carol", (theirs, None), peer=carol)
    assert out[0] == fail(A, "REDACT_FORBIDDEN", "carol", "m-1", "You are not authorised to delete this message")


# --- MARKREAD ----------------------------------------------------------------------------------------------
def test_markread_asks_for_the_askers_own_marker():
    policy = world()
    out = policy.decide((link.R_MARKREAD, B, ("#ROOM",), None, None), NOW)
    assert out == [Ask(B, (B, who(policy, B), ("#room",), ("#ROOM",), None, None), S_MARKREAD)]


def test_a_set_is_clamped_to_now():
    out = world().decide((link.R_MARKREAD, B, ("alice",), 2_000_000_000_000_000, None), NOW)
    assert out[0].item[4] == (int(NOW * 1000) + 1) * 1000


def test_a_joins_markers_carry_the_joins():
    policy = world()
    joins = (("#a", ""), ("#B", "key"))
    out = policy.decide((link.R_MARKREAD, C, ("#a", "#B"), None, joins), NOW)
    assert out == [Ask(C, (C, who(policy, C), ("#a", "#b"), ("#a", "#B"), None, joins), S_MARKREAD)]


def test_without_history_there_is_no_marker_and_none_can_be_set():
    policy = world(history=False)
    assert policy.decide((link.R_MARKREAD, B, ("#a", "#b"), None, (("#a", ""), ("#b", ""))), NOW) == \
        [Reply(B, (link.D_MARKREAD, B, ("#a", "#b"), (None, None), (("#a", ""), ("#b", ""))))]
    assert policy.decide((link.R_MARKREAD, B, ("#a",), 5_000, None), NOW) == \
        [Reply(B, (link.D_MARKREAD, B, ("#a",), None, None))]


# --- the log's REDACT: filed, routed ---------------------------------------------------------------------------
class Link:
    closed = False

    def __init__(self) -> None:
        self.items: list[tuple] = []

    def send(self, item: tuple) -> None:
        self.items.append(item)


def test_the_feed_files_the_redaction_in_the_next_batch_after_the_message():
    feed = HistoryFeed()
    log = Log("t-", [feed])
    for event in ((E_USER, A, "alice", "~a", "h", "A", 1.0), (E_JOIN, A, "#room", 1.0)):
        log.publish(event, NOW)
    feed.attach(store := Link())
    log.publish((M_CHANMSG, "#room", A, b":alice!~a@h PRIVMSG #room :x\r\n", "m-1", 0, ""), NOW)
    assert feed.ask(S_LOOKUP, ("m-1", ("", "#room"), "", ())) == 2  # the message's batch is 1: flushed first
    log.publish((M_REDACT, "#room", A, LINE, "o-1", "m-1", ()), NOW)
    feed.flush()
    assert [(i[0], i[1]) for i in store.items] == [(S_WRITE, 1), (S_LOOKUP, 2), (S_WRITE, 3)]
    written = unpack(store.items[2][2])
    assert written == [(REDACT_ENTRY, "m-1")] and store.items[2][4] is None  # a redaction may touch any conversation
    assert service.deletions_of(written) == ["m-1"] and service.records_of(written) == []
    feed.ask(S_QUERY, (A, "~", None, (), ("TARGETS",)))  # a history query: numbered in the same sequence
    assert store.items[-1][:2] == (S_QUERY, 4)


def test_a_redact_is_routed_where_its_message_went():
    state = State()
    for cid, nick in ((A, "alice"), (B, "bob"), (C, "carol")):
        state.apply((E_USER, cid, nick, "~", "h", nick, 1.0))
    state.apply((E_JOIN, A, "#room", 1.0))
    state.apply((E_JOIN, C, "#room", 1.0))
    links = {1: Link(), 2: Link(), 3: Link()}
    log = Log("h-", [LinkRouter(state, links)])
    log.publish((M_REDACT, "#room", A, LINE, "o-1", "m-1", ()), NOW)
    log.publish((M_REDACT, "", A, LINE, "o-2", "m-2", (B,)), NOW)  # alice and bob: both on worker 1
    log.publish((M_REDACT, "", B, LINE, "o-3", "m-3", (C,)), NOW)
    got = {wid: [(i[0], i[4]) for i in l.items] for wid, l in links.items()}
    assert got == {1: [(link.D_REDACT, "o-1"), (link.D_REDACT, "o-2"), (link.D_REDACT, "o-3")],
                   2: [(link.D_REDACT, "o-1"), (link.D_REDACT, "o-3")], 3: []}
    assert links[1].items[1] == (link.D_REDACT, "", A, LINE, "o-2", links[1].items[1][5], (B,))


# --- the store process's answers --------------------------------------------------------------------------------
@pytest.fixture
def store():
    db = SQLiteStore(":memory:")
    yield db
    db.close()


def test_lookup_finds_the_row_and_the_peers_copy(store):
    rows = [Record("m-1", 5, "carol", "~alice", "PRIVMSG", "alice", "~alice", ":alice!a@h PRIVMSG carol :x", ""),
            Record("m-1", 5, "alice", "~carol", "PRIVMSG", "alice", "~alice", ":alice!a@h PRIVMSG carol :x", ""),
            Record("m-2", 6, "#room", "", "PRIVMSG", "bob", "~bob", ":bob!b@h PRIVMSG #room :y", "")]
    service.write(store, rows, {})
    context = ("anything",)
    assert service.lookup(store, 7, "m-1", ("~alice", "carol"), "~carol", context) == \
        (S_FOUND, 7, context, (tuple(rows[0]), tuple(rows[1])))
    assert service.lookup(store, 7, "m-1", ("~alice", "carol"), "~dave", context)[3] == (tuple(rows[0]), None)
    assert service.lookup(store, 7, "m-2", ("", "#other"), "", context)[3] == (None, None)  # another channel's
    service.write(store, [], {}, ["m-1"])
    assert service.lookup(store, 8, "m-1", ("~alice", "carol"), "~carol", context)[3] == (None, None)
    assert service.lookup(store, 8, "m-2", ("", "#room"), "", context)[3] == (tuple(rows[2]), None)


def test_a_redaction_wins_over_its_message_in_one_commit(store):
    message = Record("m-1", 5, "#room", "", "PRIVMSG", "bob", "~bob", ":bob!b@h PRIVMSG #room :spam", "")
    service.write(store, [message], {}, ["m-1"])  # a replayed message, and its redaction, in one commit
    assert store.latest("", "#room", 10) == [] and store.search("", ["#room"], text="spam", limit=10) == []


def test_markers_set_forward_only_and_read(store):
    assert service.markers(store, A, "~a", ("#room",), ("#Room",), None, None) == \
        (S_MARKERS, A, ("#Room",), [None], None)
    assert service.markers(store, A, "~a", ("#room",), ("#Room",), 9_000, None)[3] == [9_000]
    assert service.markers(store, A, "~a", ("#room",), ("#Room",), 4_000, None)[3] == [9_000]  # never back
    assert service.markers(store, A, "~b", ("#room",), ("#room",), None, None)[3] == [None]  # another's
    joins = (("#Room", ""), ("#x", ""))
    assert service.markers(store, A, "~a", ("#room", "#x"), ("#Room", "#x"), None, joins) == \
        (S_MARKERS, A, ("#Room", "#x"), [9_000, None], joins)


def test_a_failing_store_answers_markers_without_raising(store):
    store.close()
    assert service.markers(store, A, "~a", ("#room",), ("#room",), 9_000, None)[3] is None
    assert service.markers(store, A, "~a", ("#room",), ("#room",), None, (("#room", ""),))[3] == [None]
    assert service.lookup(store, 1, "m-1", ("", "#room"), "", ())[3] is None
    store._db = SQLiteStore(":memory:")._db  # for the fixture's close
