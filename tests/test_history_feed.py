"""History's side of the hub on plain data: what the feed files for each event (rendered from the
state before it), the records the store process makes of them, the feed's numbering and
re-sending, the policy's history rule (who may read what) and channels kept across a restart."""
from __future__ import annotations

from types import SimpleNamespace

from chatstate.state import (E_JOIN, E_KICK, E_MODE, E_NICK, E_PART, E_QUIT, E_RESTORE, E_TOPIC, E_USER, State,
                             identity)
from history.feed import CHANNEL_ENTRY, DROP_DELAY, EVENT_ENTRY, PRIVATE_ENTRY, S_QUERY, S_WRITE, HistoryFeed, unpack
from history.service import records_of
from history.store import Record
from hub.log import M_CHANMSG, M_REDACT, M_USERMSG, M_WALLOPS, Log
from hub.policy import Ask, Policy
from ipc import link
from ircproto import numerics as N
from tests.test_store_process import keys_of

A, B, C = (1 << 32 | 1), (1 << 32 | 2), (2 << 32 | 1)
LIMITS = SimpleNamespace(chanlimit=5, nicklen=30, max_clients=9, max_clients_per_ip=9, exempt_loopback=True)
USERS = [(E_USER, A, "alice", "~a", "h", "A", 10.0), (E_USER, B, "bob", "~b", "h", "B", 11.0),
         (E_USER, C, "carol", "~c", "h", "C", 12.0)]


class Link:
    """What the feed needs of a link: items in order."""
    closed = False

    def __init__(self) -> None:
        self.items: list[tuple] = []

    def send(self, item: tuple) -> None:
        self.items.append(item)


def fed(*events: tuple) -> tuple[HistoryFeed, Log]:
    """A feed that has read alice, bob and carol register, alice and bob join #room, then `events`."""
    feed = HistoryFeed()
    log = Log("t-", [feed])
    for event in (*USERS, (E_JOIN, A, "#Room", 1.0), (E_JOIN, B, "#room", 1.0), *events):
        log.publish(event, 100.0)
    return feed, log


def events_filed(feed: HistoryFeed) -> list[tuple]:
    return [(e[3], e[4], e[6]) for e in feed.entries if e[0] == EVENT_ENTRY]


def test_state_events_are_filed_as_the_lines_their_channels_saw():
    feed, log = fed((E_TOPIC, A, "#room", "hello", 2.0), (E_MODE, A, "#room", (("+", "o", "bob"), ("-", "t", "")), 2.0),
                    (E_NICK, B, "robert", 2.0), (E_KICK, A, "#room", B, "out"), (E_PART, A, "#room", ""),
                    (E_JOIN, C, "#other", 3.0), (E_QUIT, C, "Quit: bye", 3.0))
    assert events_filed(feed) == [
        ("JOIN", ("#room",), ":alice!~a@h JOIN #Room"),
        ("JOIN", ("#room",), ":bob!~b@h JOIN #room"),
        ("TOPIC", ("#room",), ":alice!~a@h TOPIC #Room hello"),
        ("MODE", ("#room",), ":alice!~a@h MODE #Room +o-t bob"),
        ("NICK", ("#room",), ":bob!~b@h NICK robert"),  # the old prefix, from the state before
        ("KICK", ("#room",), ":alice!~a@h KICK #Room robert out"),
        ("PART", ("#room",), ":alice!~a@h PART #Room"),  # the last member: the channel is gone after it
        ("JOIN", ("#other",), ":carol!~c@h JOIN #other"),
        ("QUIT", ("#other",), ":carol!~c@h QUIT :Quit: bye"),  # in every channel carol was in
    ]


def test_a_channel_message_is_one_entry_and_a_statusmsg_none():
    feed, log = fed()
    feed.entries.clear()
    log.publish((M_CHANMSG, "#room", A, b":alice!~a@h PRIVMSG #Room :hi\r\n", "o-1", 0, "+x=1"), 100.0)
    log.publish((M_CHANMSG, "@#room", A, b":alice!~a@h PRIVMSG @#Room :ops\r\n", "o-2", 0, ""), 100.0)
    log.publish((M_WALLOPS, b":alice!~a@h WALLOPS :w\r\n"), 100.0)
    alice = identity(feed.replica.users[A])
    [(kind, msgid, _, key, author, line, flags, tags)] = feed.entries
    assert (kind, msgid, key, author, line, tags) == (CHANNEL_ENTRY, "o-1", "#room", alice,
                                                      b":alice!~a@h PRIVMSG #Room :hi\r\n", "+x=1")


def test_a_private_message_is_filed_under_each_party_and_a_message_to_oneself_once():
    feed, log = fed()
    feed.entries.clear()
    log.publish((M_USERMSG, B, A, b":alice!~a@h PRIVMSG bob :psst\r\n", "o-3", 0, ""), 100.0)
    log.publish((M_USERMSG, A, A, b":alice!~a@h PRIVMSG alice :me\r\n", "o-4", 0, ""), 100.0)
    alice, bob = identity(feed.replica.users[A]), identity(feed.replica.users[B])
    records = records_of(feed.entries)
    assert [(r.msgid, r.owner, r.target, r.sender, r.author) for r in records] == [
        ("o-3", alice, "bob", "alice", alice), ("o-3", bob, "alice", "alice", alice),
        ("o-4", alice, "alice", "alice", alice)]
    assert records[0].line == ":alice!~a@h PRIVMSG bob :psst" and records[0].kind == "PRIVMSG"


def test_a_batch_names_every_conversation_its_entries_write_to_and_none_with_a_redaction():
    feed, log = fed()
    feed.link = Link()
    feed.flush(100.0)
    alice, bob = identity(feed.replica.users[A]), identity(feed.replica.users[B])
    log.publish((M_CHANMSG, "#room", A, b":alice!~a@h PRIVMSG #Room :hi\r\n", "o-1", 0, ""), 100.0)
    log.publish((M_CHANMSG, "@#room", A, b":alice!~a@h PRIVMSG @#Room :ops\r\n", "o-2", 0, ""), 100.0)
    log.publish((M_USERMSG, B, A, b":alice!~a@h PRIVMSG bob :psst\r\n", "o-3", 0, ""), 100.0)
    log.publish((E_JOIN, C, "#other", 3.0), 100.0)
    log.publish((E_QUIT, B, "bye", 3.0), 100.0)
    feed.flush(100.0)
    _, _, packed, count, keys, _, _ = feed.link.items[-1]
    entries = unpack(packed)
    assert count == len(entries) == 4 and keys == keys_of(entries)
    assert keys == {("", "#room"), ("", "#other"), (alice, "bob"), (bob, "alice")}
    log.publish((M_CHANMSG, "#room", A, b":alice!~a@h PRIVMSG #Room :again\r\n", "o-4", 0, ""), 100.0)
    log.publish((M_REDACT, "#room", A, b":alice!~a@h REDACT #Room o-1\r\n", "o-5", "o-1", ()), 100.0)
    feed.flush(100.0)
    _, _, packed, _, keys, _, _ = feed.link.items[-1]
    assert keys is None and keys_of(unpack(packed)) is None  # a redaction may be in any conversation
    log.publish((M_CHANMSG, "#room", A, b":alice!~a@h PRIVMSG #Room :later\r\n", "o-6", 0, ""), 100.0)
    feed.flush(100.0)
    assert feed.link.items[-1][4] == {("", "#room")}  # the next batch names its own again


def test_records_name_their_command_and_keep_only_persistent_tagmsgs():
    t = 100.000001
    records = records_of([
        (CHANNEL_ENTRY, "n", t, "#r", "~a", b":a!u@h NOTICE #r :n\r\n", link.MSG_QUIET, ""),
        (CHANNEL_ENTRY, "t1", t, "#r", "~a", b":a!u@h TAGMSG #r\r\n", link.MSG_TAGMSG, "+typing=active"),
        (CHANNEL_ENTRY, "t2", t, "#r", "~a", b":a!u@h TAGMSG #r\r\n", link.MSG_TAGMSG, "+draft/persist;+draft/react=x"),
        (PRIVATE_ENTRY, "p", t, (("~a", "b"),), "~a", b":A!u@h PRIVMSG b :x\r\n", link.MSG_ECHO, ""),
    ])
    assert [(r.msgid, r.kind, r.sender, r.time_us) for r in records] == [
        ("n", "NOTICE", "a", 100_000_001), ("t2", "TAGMSG", "a", 100_000_001), ("p", "PRIVMSG", "a", 100_000_001)]
    assert all(isinstance(r, Record) for r in records)


def test_channel_settings_are_saved_with_the_batch_and_dropped_when_the_channel_has_been_empty_a_while():
    feed, log = fed((E_TOPIC, A, "#room", "hello", 2.0))
    feed.attach(store := Link())
    feed.flush(100.0)
    [(op, fseq, _packed, _count, _keys, channels, _accounts)] = store.items
    assert (op, fseq) == (S_WRITE, 1) and channels["#room"]["topic"] == "hello"
    log.publish((E_PART, A, "#room", ""), 100.0)
    log.publish((E_PART, B, "#room", ""), 100.0)
    feed.flush(100.0)
    assert "#room" not in store.items[-1][5]  # kept a while: this may be a stopping server's last goodbyes
    feed.flush(100.0 + DROP_DELAY - 0.1)
    assert len(store.items) == 2  # nothing to send yet
    feed.flush(100.0 + DROP_DELAY)
    assert store.items[-1][5] == {"#room": None}


def test_a_channel_refilled_in_time_is_not_dropped():
    feed, log = fed()
    feed.attach(store := Link())
    log.publish((E_PART, A, "#room", ""), 100.0)
    log.publish((E_PART, B, "#room", ""), 100.0)
    feed.flush(100.0)
    log.publish((E_JOIN, C, "#room", 101.0), 101.0)
    feed.flush(101.0)
    feed.touched.add("#other")  # something to flush, much later
    feed.flush(100.0 + 2 * DROP_DELAY)
    assert all(items[5].get("#room", {}) is not None for items in store.items)


def test_a_stopping_server_keeps_its_channels():
    feed, log = fed((E_MODE, A, "#room", (("+", "k", "pw"),), 2.0))
    feed.attach(store := Link())
    feed.flush(100.0)
    log.publish((E_QUIT, A, link.SHUTDOWN_REASON, 3.0), 100.0)
    log.publish((E_QUIT, B, "Server process exited", 3.0), 100.0)  # a worker that went first
    feed.flush(100.1)
    assert store.items[0][5]["#room"]["key"] == "pw"
    assert all("#room" not in items[5] for items in store.items[1:])  # saved as it was, never dropped


def test_items_stay_until_the_store_is_done_and_a_new_store_gets_them_again():
    feed, log = fed()
    first = Link()
    feed.attach(first)
    feed.flush()  # 1
    feed.ask(S_QUERY, (A, "~a", ("", "#room"), ("#room",), ("LATEST", "#room", None, 10, False)))  # 2 (no entries since)
    log.publish((M_CHANMSG, "#room", A, b":alice!~a@h PRIVMSG #room :x\r\n", "o-9", 0, ""), 100.0)
    feed.ask(S_QUERY, (A, "~a", ("", "#room"), ("#room",), ("LATEST", "#room", None, 10, False)))  # 3 write, 4 query
    assert [(i[0], i[1]) for i in first.items] == [(S_WRITE, 1), (S_QUERY, 2), (S_WRITE, 3), (S_QUERY, 4)]
    feed.finished(2)
    feed.detach()
    feed.attach(second := Link())
    assert [(i[0], i[1]) for i in second.items] == [(S_WRITE, 3), (S_QUERY, 4)]
    assert feed.done == 2


def test_the_feed_stops_the_hub_reading_when_the_store_falls_too_far_behind(monkeypatch):
    import history.feed as feed_module
    monkeypatch.setattr(feed_module, "MAX_UNSENT", 4)
    calls = []
    feed = HistoryFeed(on_backlog=calls.append)
    for _ in range(4):
        feed.ask(S_QUERY, (A, "~a", None, (), ("TARGETS", ("timestamp", 1), ("timestamp", 2), 10, False)))
    assert calls == [True]
    feed.finished(3)
    assert calls == [True, False]


# --- the policy: who may read which history ------------------------------------------------------------
def world() -> Policy:
    policy = Policy(State(), LIMITS)
    for event in (*USERS, (E_JOIN, A, "#room", 1.0), (E_JOIN, B, "#room", 1.0)):
        policy.state.apply(event)
    return policy


def test_a_member_asks_about_a_channel_and_anyone_about_their_own_private_messages():
    policy = world()
    alice = identity(policy.state.users[A])
    query = ("LATEST", "#ROOM", None, 50, False)
    assert policy.decide((link.R_HISTORY, A, query), 5.0) == [Ask(A, (A, alice, ("", "#room"), ("#room",), query))]
    query = ("BEFORE", "Bob", ("timestamp", 5), 50, True)
    assert policy.decide((link.R_HISTORY, A, query), 5.0) == [Ask(A, (A, alice, (alice, "bob"), ("#room",), query))]
    query = ("TARGETS", ("timestamp", 1), ("timestamp", 9), 50, False)
    assert policy.decide((link.R_HISTORY, A, query), 5.0) == [Ask(A, (A, alice, None, ("#room",), query))]


def test_a_non_member_is_refused_a_channels_history():
    out = world().decide((link.R_HISTORY, C, ("LATEST", "#room", None, 50, False)), 5.0)
    assert [o.item for o in out] == [(link.D_FAIL, C, "CHATHISTORY", "INVALID_TARGET",
                                      ("LATEST", "#room", "Messages could not be retrieved"))]


def test_a_later_holder_of_a_nick_is_someone_else():
    policy = world()
    before = identity(policy.state.users[B])
    policy.decide((link.R_QUIT, B, "Quit"), 5.0)
    policy.state.apply((E_USER, B + 7, "bob", "~b", "h", "B", 20.0))
    assert identity(policy.state.users[B + 7]) != before


def test_a_kept_channel_comes_back_with_its_first_joiner_and_its_key_still_holds():
    policy = world()
    kept = State()
    kept.apply((E_USER, A, "alice", "~a", "h", "A", 1.0))
    kept.apply((E_JOIN, A, "#Kept", 1.0))
    kept.apply((E_MODE, A, "#kept", (("+", "k", "pw"), ("+", "s", "")), 1.0))
    kept.apply((E_TOPIC, A, "#kept", "old topic", 1.0))
    policy.dormant = {"#kept": kept.channels["#kept"].settings()}
    out = policy.decide((link.R_JOIN, C, "#KEPT", "wrong"), 5.0)
    assert out[0].item[2] == N.ERR_BADCHANNELKEY and "#kept" not in policy.state.channels
    out = policy.decide((link.R_JOIN, C, "#kept", "pw"), 5.0)
    assert [o[0] for o in out] == [E_RESTORE, E_JOIN] and out[1][2] == "#Kept"  # the name as it was
    chan = policy.state.channels["#kept"]
    assert (chan.topic, chan.key, chan.modes, chan.members) == ("old topic", "pw", "nst", {C: "@"})
    assert policy.dormant == {}


def test_accounts_are_filed_with_the_batch_and_a_login_changes_the_author():
    from chatstate.state import E_ACCOUNT, E_LOGIN
    from hub.log import M_USERMSG
    feed, log = fed((E_ACCOUNT, "bob", {"name": "Bob"}))
    feed.attach(store := Link())
    feed.flush(1.0)
    assert store.items[-1][6] == {"bob": {"name": "Bob"}}
    log.publish((M_USERMSG, A, A, b":x PRIVMSG x :hi\r\n", "o1", 0, ""), 2.0)
    log.publish((E_LOGIN, A, "Bob"), 2.0)
    log.publish((M_USERMSG, A, A, b":x PRIVMSG x :hi\r\n", "o2", 0, ""), 2.0)
    feed.flush(3.0)
    first, second = [e for e in unpack(store.items[-1][2]) if e[0] == PRIVATE_ENTRY]
    assert first[4] != "a:bob" and second[4] == "a:bob"


def test_targets_are_shown_as_the_channel_or_the_online_user_spells_itself():
    policy = world()
    policy.state.apply((E_JOIN, A, "#MixedCase", 1.0))
    assert policy.display_targets([("#mixedcase", 5), ("bob", 6), ("gone", 7), ("#gone", 8)]) == \
        [("#MixedCase", 5), ("bob", 6), ("gone", 7), ("#gone", 8)]
    policy.state.apply((E_NICK, B, "Robert", 2.0))
    assert policy.display_targets([("robert", 6)]) == [("Robert", 6)]
