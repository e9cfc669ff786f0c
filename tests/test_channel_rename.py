"""Renaming a channel (E_RENAME) on plain state: one step, everything kept, every copy alike."""
from hub.refusals import rename_refusal
from chatstate.state import E_INVITE, E_JOIN, E_MODE, E_RENAME, E_TOPIC, E_USER, State

A, B, C = 1 << 32 | 1, 2 << 32 | 1, 2 << 32 | 2
EVENTS = [
    (E_USER, A, "alice", "~a", "h", "Alice", 1.0),
    (E_USER, B, "bob", "~b", "h", "Bob", 2.0),
    (E_USER, C, "carol", "~c", "h", "Carol", 3.0),
    (E_JOIN, A, "#Old", 10.0),
    (E_JOIN, B, "#old", 11.0),
    (E_JOIN, A, "#other", 12.0),
    (E_TOPIC, A, "#old", "the topic", 13.0),
    (E_MODE, A, "#old", (("+", "v", "bob"), ("+", "k", "key"), ("+", "b", "x!*@*"), ("+", "e", "y!*@*"),
                         ("+", "i", "")), 14.0),
    (E_INVITE, A, "#old", C),
    (E_RENAME, A, "#old", "#New", "tidier"),
]


def applied(state, events=EVENTS):
    for event in events:
        state.apply(event)
    return state


def test_a_rename_keeps_members_modes_lists_topic_and_invitations():
    state = applied(State())
    assert state.channel("#old") is None
    chan = state.channel("#new")
    assert (chan.name, chan.folded, chan.created) == ("#New", "#new", 10.0)
    assert chan.members == {A: "@", B: "+"} and (chan.key, chan.modes) == ("key", "int")
    assert [m for m, _, _ in chan.bans] == ["x!*@*"] and [m for m, _, _ in chan.excepts] == ["y!*@*"]
    assert chan.topic == "the topic" and chan.invited == {C}
    assert state.users[A].channels == ("#new", "#other") and state.users[B].channels == ("#new",)
    assert state.users[C].invited_to == ["#new"]
    state.apply((E_JOIN, C, "#NEW", 20.0))  # the invitation still lets carol past +i, under the new name
    assert C in chan.members and chan.invited == set()


def test_a_replica_and_a_rebuilt_hub_agree_after_a_rename():
    hub, replica = applied(State()), applied(State(wid=2))
    assert replica.channel("#new").by_wid == {2: {B}} and hub.channel("#new").by_wid == {1: {A}, 2: {B}}
    assert replica.snapshot() == hub.snapshot()
    assert State.from_snapshot(hub.snapshot()).snapshot() == hub.snapshot()


def test_a_change_of_case_only_and_the_old_name_free_again():
    state = applied(State(), EVENTS + [(E_RENAME, A, "#new", "#NEW", ""), (E_JOIN, C, "#old", 30.0)])
    assert state.channel("#new").name == "#NEW"
    assert state.channel("#old").members == {C: "@"}  # a fresh channel, with its own founder


def test_a_name_held_by_another_channel_is_refused_but_a_change_of_case_is_not():
    state = applied(State())
    chan = state.channel("#new")
    assert rename_refusal(state.channels, chan, "#OTHER") == ("CHANNEL_NAME_IN_USE", "The channel name is already taken")
    assert rename_refusal(state.channels, chan, "#nEw") is None
    assert rename_refusal(state.channels, chan, "#free") is None
