"""hub.state: the same events give the same state, wherever they are applied."""
from hub.state import E_JOIN, E_NICK, E_PART, E_QUIT, E_TOPIC, E_USER, State, wid_of

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
    assert state.users[A].channels == set()


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
