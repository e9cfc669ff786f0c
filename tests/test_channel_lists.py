"""Channel list modes (+b, +e, +I) on plain state: who they let in, and that every copy agrees."""
import pytest

from hub.refusals import join_refusal, speak_refusal
from chatstate.state import E_JOIN, E_MODE, E_USER, State, has_status
from ircproto.modes import FLAG_MODES
from ircproto import numerics as N
from ircproto.masks import matches_user, normalize_list_mask
from workers.handlers.messages import is_restricted_ctcp, split_status_prefix

OP, BOB, CAROL = 1 << 32 | 1, 2 << 32 | 1, 3 << 32 | 1


def channel_with(*changes, modes=()):
    """A state where OP founded #c and set these list changes (and flag modes)."""
    state = State()
    for cid, nick in ((OP, "op"), (BOB, "bob"), (CAROL, "carol")):
        state.apply((E_USER, cid, nick, "~" + nick, "example.net", nick.title(), 1.0))
    state.apply((E_JOIN, OP, "#c", 2.0))
    state.apply((E_MODE, OP, "#c", tuple(changes) + tuple(("+", m, "") for m in modes), 3.0))
    return state


def test_an_exception_lets_a_banned_user_in_and_only_that_user():
    state = channel_with(("+", "b", "*!*@example.net"), ("+", "e", "bob!*@*"))
    chan = state.channel("#c")
    assert not chan.is_banned(state.users[BOB])
    assert chan.is_banned(state.users[CAROL])
    assert join_refusal(chan, state.users[BOB], "") is None
    assert join_refusal(chan, state.users[CAROL], "") == N.ERR_BANNEDFROMCHAN


def test_an_exception_alone_changes_nothing():
    state = channel_with(("+", "e", "carol!*@*"))
    assert not state.channel("#c").is_banned(state.users[CAROL])


def test_an_invite_exception_lets_a_user_past_invite_only_but_not_past_a_ban():
    state = channel_with(("+", "I", "bob!*@*"), ("+", "I", "carol!*@*"), ("+", "b", "carol!*@*"), modes="i")
    chan = state.channel("#c")
    assert join_refusal(chan, state.users[BOB], "") is None
    assert join_refusal(chan, state.users[CAROL], "") == N.ERR_BANNEDFROMCHAN
    state.apply((E_MODE, OP, "#c", (("-", "I", "BOB!*@*"),), 4.0))  # removed without regard to case
    assert join_refusal(chan, state.users[BOB], "") == N.ERR_INVITEONLYCHAN


def test_each_list_keeps_its_own_entries_with_setter_and_time():
    chan = channel_with(("+", "b", "x!*@*"), ("+", "e", "y!*@*"), ("+", "I", "z!*@*")).channel("#c")
    setter = "op!~op@example.net"
    assert chan.mask_list("b") == [("x!*@*", setter, 3.0)]
    assert chan.mask_list("e") == [("y!*@*", setter, 3.0)]
    assert chan.mask_list("I") == [("z!*@*", setter, 3.0)]


def test_a_rebuilt_hub_and_a_replica_keep_the_exception_lists():
    state = channel_with(("+", "e", "y!*@*"), ("+", "I", "z!*@*"))
    rebuilt = State.from_snapshot(state.snapshot())
    chan, old = rebuilt.channel("#c"), state.channel("#c")
    assert (chan.excepts, chan.invexes) == (old.excepts, old.invexes)
    assert State.from_snapshot(channel_with().snapshot()).channel("#c").excepts == ()


@pytest.mark.parametrize("mask, acting, stored", [
    ("bob", True, "bob!*@*"),
    ("m:bob", True, "m:bob!*@*"),  # the mask inside an acting extban is completed like a ban
    ("m:*@spam.example", True, "m:*!*@spam.example"),
    ("m:a:acct*", True, "m:a:acct*"),  # a mute of an account
    ("a:acct", True, "a:acct"),
    ("a:acct", False, "a:acct"),
    ("m:bob", False, None),  # +I: letting a mute in means nothing
    ("m:m:bob", True, None),
    ("x:bob", True, None),  # unknown
    ("m:", True, None),
    ("a:", True, None),
    ("*!*@2001:db8::1", True, "*!*@2001:db8::1"),  # ':' in a host is not an extban
])
def test_list_masks_are_stored_in_one_form_or_refused(mask, acting, stored):
    assert normalize_list_mask(mask, acting) == stored


def test_account_masks_match_nobody_until_accounts_exist():
    assert not matches_user("a:*", "bob!~bob@example.net")
    assert matches_user("a:bo?", "x!y@z", account="bob")


def test_a_mute_lets_a_user_join_but_not_speak_unless_voiced_or_excepted():
    state = channel_with(("+", "b", "m:bob!*@*"))  # events carry masks as the hub stored them
    chan, bob = state.channel("#c"), state.users[BOB]
    assert join_refusal(chan, bob, "") is None and not chan.is_banned(bob)
    state.apply((E_JOIN, BOB, "#c", 4.0))
    assert speak_refusal(chan, "", bob) == "Cannot send to channel (you are muted)"
    assert speak_refusal(chan, "", state.users[CAROL]) is None
    assert speak_refusal(chan, "+", bob) is None
    state.apply((E_MODE, OP, "#c", (("+", "e", "bob!*@*"),), 5.0))  # a plain exception excepts plain bans only
    assert speak_refusal(chan, "", bob) is not None
    state.apply((E_MODE, OP, "#c", (("+", "e", "m:*!~bob@*"),), 6.0))
    assert speak_refusal(chan, "", bob) is None


def test_a_mute_is_listed_with_the_bans_and_a_ban_still_bans_a_muted_user():
    state = channel_with(("+", "b", "m:bob!*@*"), ("+", "b", "carol!*@*"), ("+", "b", "m:carol!*@*"))
    chan = state.channel("#c")
    assert [m for m, _, _ in chan.bans] == ["m:bob!*@*", "carol!*@*", "m:carol!*@*"]
    assert chan.is_banned(state.users[CAROL]) and chan.is_muted(state.users[CAROL])
    assert speak_refusal(chan, "", state.users[CAROL]) == "Cannot send to channel"


def test_no_ctcp_refuses_every_sender_but_only_ctcp_other_than_action():
    state = channel_with(modes="C")
    chan, op = state.channel("#c"), state.users[OP]
    assert speak_refusal(chan, "@", op, ctcp=True) == "Cannot send CTCP to channel (+C)"
    assert speak_refusal(chan, "@", op, ctcp=False) is None
    assert speak_refusal(channel_with().channel("#c"), "", op, ctcp=True) is None
    assert is_restricted_ctcp("\x01VERSION\x01") and is_restricted_ctcp("\x01PING 1")
    assert not is_restricted_ctcp("\x01ACTION waves\x01") and not is_restricted_ctcp("plain \x01")


def test_statusmsg_needs_voice_and_reaches_at_least_that_status():
    state = channel_with()
    chan, op = state.channel("#c"), state.users[OP]
    for status, allowed in (("@", True), ("@+", True), ("+", True), ("", False), (None, False)):
        assert (speak_refusal(chan, status, op, to_status="@") is None) is allowed
    assert "@#c" in speak_refusal(chan, "", op, to_status="@")
    assert has_status("@", "+") and has_status("@+", "@") and has_status("+", "+")
    assert not has_status("+", "@") and not has_status("", "+")
    assert split_status_prefix("@#c") == ("@", "#c") and split_status_prefix("@+#c") == ("+", "#c")
    assert split_status_prefix("#c") == ("", "#c") and split_status_prefix("+bob") == ("", "+bob")


@pytest.mark.parametrize("modes", ["".join(m for i, m in enumerate(FLAG_MODES) if n >> i & 1)
                                   for n in range(1 << len(FLAG_MODES))])
def test_a_member_is_refused_only_for_what_the_hubs_hot_path_checks(modes):
    """Policy.channel_message calls speak_refusal for a member only with +m, a ban list, a CTCP or a
    STATUSMSG: a rule that refuses a member for anything else must be added to that shortcut."""
    state = channel_with(modes=modes)
    chan, bob = state.channel("#c"), state.users[BOB]
    state.apply((E_JOIN, BOB, "#c", 4.0))
    assert (speak_refusal(chan, "", bob) is not None) == ("m" in modes)
