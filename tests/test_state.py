"""chatstate.state: the same events give the same state, wherever they are applied."""
from chatstate.state import (E_AWAY, E_CHGHOST, E_INVITE, E_JOIN, E_KICK, E_MODE, E_NICK, E_PART, E_QUIT, E_SETNAME,
                       E_TOPIC, E_UMODE, E_USER, State, wid_of)

A, B, C = 1 << 32 | 1, 2 << 32 | 1, 2 << 32 | 2
EVENTS = [
    (E_USER, A, "alice", "~a", "h", "Alice", 1.0),
    (E_USER, B, "bob", "~b", "h", "Bob", 2.0),
    (E_USER, C, "carol", "~c", "h", "Carol", 3.0),
    (E_JOIN, A, "#Room", 10.0),
    (E_JOIN, B, "#room", 11.0),
    (E_JOIN, C, "#other", 12.0),
    (E_TOPIC, A, "#room", "hello", 13.0),
    (E_NICK, B, "Bobby"),
]


def build(events=EVENTS):
    state = State()
    for event in events:
        state.apply(event)
    return state


def test_founder_is_operator_and_name_keeps_its_first_spelling():
    chan = build().channel("#ROOM")
    assert chan.name == "#Room"
    assert chan.members == {A: "@", B: ""}
    assert chan.by_wid == {1: {A}, 2: {B}}


def test_a_workers_replica_tracks_only_its_own_members_by_worker():
    replica = State(wid=2)
    for event in EVENTS + [(E_PART, B, "#room", "bye"), (E_JOIN, B, "#room", 14.0), (E_QUIT, A, "gone")]:
        replica.apply(event)
    hub = build(EVENTS + [(E_PART, B, "#room", "bye"), (E_JOIN, B, "#room", 14.0), (E_QUIT, A, "gone")])
    chan = replica.channel("#room")
    assert chan.by_wid == {2: {B}} == hub.channel("#room").by_wid
    assert chan.members == hub.channel("#room").members  # everything else is the same
    replica.apply((E_QUIT, B, "gone"))
    assert replica.channel("#room") is None
    again = State(wid=1)
    for event in EVENTS:
        again.apply(event)
    assert again.channel("#room").by_wid == {1: {A}} and again.channel("#other").by_wid == {}
    assert again.snapshot() == build().snapshot()


def test_nick_change_moves_the_nick():
    state = build()
    assert state.user_by_nick("BOBBY").cid == B
    assert state.user_by_nick("bob") is None


def test_topic_records_setter_and_time():
    chan = build().channel("#room")
    assert (chan.topic, chan.topic_setter, chan.topic_time) == ("hello", "alice!~a@h", 13.0)


def test_part_and_quit_clean_up_everything():
    state = build(EVENTS + [(E_PART, A, "#room", "bye"), (E_QUIT, B, "gone")])
    assert "#room" not in state.channels  # last member left
    assert B not in state.users and state.user_by_nick("bobby") is None
    assert state.users[A].channels == ()


def test_neighbours_are_everyone_sharing_a_channel():
    state = build()
    assert state.neighbours(A) == {A, B}
    assert state.neighbours(C) == {C}


def test_snapshot_round_trip_and_per_worker_merge():
    state = build()
    assert State.from_snapshot(state.snapshot()).snapshot() == state.snapshot()
    # A new hub rebuilt from each worker's own clients ends where the old one was.
    rebuilt = State()
    for wid in (2, 1):
        assert rebuilt.merge(state.snapshot(only_wid=wid)) == []
    assert {k: c.members for k, c in rebuilt.channels.items()} == {k: c.members for k, c in state.channels.items()}
    assert rebuilt.channel("#room").topic == "hello"
    assert wid_of(C) == 2


def test_merge_refuses_a_nick_clash():
    state = build()
    clash = {"users": [(3 << 32 | 1, "ALICE", "~x", "h", "X", 5.0)], "channels": []}
    assert state.merge(clash) == [3 << 32 | 1]


MODES = EVENTS + [
    (E_MODE, A, "#room", (("+", "o", "Bobby"), ("+", "v", "Bobby"), ("+", "k", "key"), ("+", "l", "5"),
                          ("+", "b", "evil!*@*"), ("+", "m", ""), ("-", "t", "")), 20.0),
    (E_UMODE, A, "+iw"),
    (E_AWAY, B, "lunch"),
    (E_INVITE, A, "#room", C),
]


def test_modes_change_status_settings_and_bans():
    chan = build(MODES).channel("#room")
    assert chan.members[B] == "@+"  # prefixes kept in rank order
    assert (chan.key, chan.limit, chan.modes) == ("key", 5, "mn")
    assert chan.bans == [("evil!*@*", "alice!~a@h", 20.0)]
    assert chan.mode_string() == ("+klmn", "key", "5") and chan.mode_string(with_key=False)[1] == "*"
    state = build(MODES + [(E_MODE, A, "#room", (("-", "o", "bobby"), ("-", "b", "EVIL!*@*"), ("-", "k", "*"),
                                                  ("-", "l", "")), 21.0)])
    chan = state.channel("#room")
    assert chan.members[B] == "+" and chan.bans == [] and (chan.key, chan.limit) == ("", 0)


def test_bans_match_the_full_mask_without_case():
    state = build(MODES)
    chan = state.channel("#room")
    assert not chan.is_banned(state.users[A])
    state.apply((E_NICK, A, "EvilAlice", 22.0))
    assert not chan.is_banned(state.users[A])  # "evil!*@*" is the whole nick, not a prefix
    state.apply((E_NICK, A, "Evil", 23.0))
    assert chan.is_banned(state.users[A])


def test_user_modes_away_invites_and_kicks():
    state = build(MODES)
    assert state.users[A].modes == "iw" and state.users[B].away == "lunch"
    assert state.channel("#room").invited == {C}
    state.apply((E_JOIN, C, "#room", 30.0))
    assert state.channel("#room").invited == set()  # an invitation is used up by joining
    state.apply((E_KICK, A, "#room", C, "bye"))
    assert C not in state.channel("#room").members and "#room" not in state.users[C].channels
    state.apply((E_UMODE, A, "-w+o"))
    assert state.users[A].modes == "io"


def test_setname_and_chghost_change_what_others_see():
    state = build(EVENTS + [(E_SETNAME, A, "Alice L."), (E_CHGHOST, A, "al", "cloak")])
    assert state.users[A].realname == "Alice L." and state.users[A].prefix == "alice!al@cloak"


def test_whowas_remembers_old_nicks_newest_first_and_is_bounded():
    state = build(EVENTS + [(E_QUIT, B, "bye", 40.0)])
    assert [e[0] for e in state.was("BOB")] == ["bob"]
    assert state.was("bobby")[0] == ("Bobby", "~b", "h", "Bob", 40.0)
    for i in range(state.whowas.maxlen + 5):
        state.apply((E_NICK, A, f"a{i}", float(i)))
    assert len(state.whowas) == state.whowas.maxlen and state.was("bobby") == []


def test_snapshot_carries_modes_bans_and_away():
    state = build(MODES)
    rebuilt = State()
    for wid in (1, 2):
        rebuilt.merge(state.snapshot(only_wid=wid))
    chan, old = rebuilt.channel("#room"), state.channel("#room")
    assert (chan.modes, chan.key, chan.limit, chan.bans, chan.members) == \
        (old.modes, old.key, old.limit, old.bans, old.members)
    assert rebuilt.users[B].away == "lunch" and rebuilt.users[A].modes == "iw"


def test_accounts_and_logins_survive_a_snapshot_and_name_the_identity():
    from chatstate.state import E_ACCOUNT, E_LOGIN, identity
    state = build()
    before = identity(state.users[A])
    state.apply((E_ACCOUNT, "alice", {"name": "Alice", "password": "x"}))
    state.apply((E_LOGIN, A, "Alice"))
    assert identity(state.users[A]) == "a:alice" != before
    rebuilt = State.from_snapshot(state.snapshot())
    assert rebuilt.accounts == {"alice": {"name": "Alice", "password": "x"}}
    assert rebuilt.users[A].account == "Alice" and rebuilt.users[B].account == ""
    assert rebuilt.account_of_nick("ALICE") is not None
    # A worker's hello (its own clients only) keeps its clients' logins
    mine = State.from_snapshot(state.snapshot(only_wid=1))
    assert mine.users[A].account == "Alice"
    state.apply((E_LOGIN, A, ""))
    assert identity(state.users[A]) == before
    state.apply((E_ACCOUNT, "alice", None))
    assert state.accounts == {}
