"""The hub's account decisions on plain data: logins and their throttle, REGISTER, and nick
ownership (strict: a registered nick is its account's only), in log order."""
from __future__ import annotations

from chatstate.state import E_ACCOUNT, E_LOGIN, E_NICK, E_USER
from hub.policy import LOGIN_FAILED, NICK_RESERVED, Reply
from ipc import link
from ircproto import numerics as N
from tests.test_policy import NOW, A, B, C, world

NEW = 1 << 32 | 9  # a connection still registering
BOB = {"name": "Bob", "email": "", "password": "$argon2id$x", "scram": None, "certfps": [], "created": 1.0}


def decide(policy, request, now=NOW, replayed=False):
    return policy.decide(request, now, replayed)


def with_account(**records):
    policy = world()
    for key, record in records.items():
        policy.state.apply((E_ACCOUNT, key, record))
    policy.connections.admit(NEW, "10.0.0.9")
    return policy


def test_a_verified_login_of_a_registered_client_is_an_event_then_900():
    policy = with_account(bob=BOB)
    assert decide(policy, (link.R_LOGIN, B, "bob", True, "10.0.0.1")) == [
        (E_LOGIN, B, "Bob"), Reply(B, (link.D_LOGIN, B, "Bob", N.RPL_LOGGEDIN, ""))]
    assert policy.state.users[B].account == "Bob"
    # 907 once logged in
    assert decide(policy, (link.R_LOGIN, B, "bob", True, "10.0.0.1")) == [
        Reply(B, (link.D_LOGIN, B, "", N.ERR_SASLALREADY, N.TEXTS[N.ERR_SASLALREADY]))]


def test_a_login_before_registration_is_carried_by_the_registration():
    policy = with_account(bob=BOB)
    assert decide(policy, (link.R_LOGIN, NEW, "bob", True, "10.0.0.9")) == [
        Reply(NEW, (link.D_LOGIN, NEW, "Bob", N.RPL_LOGGEDIN, ""))]
    out = decide(policy, (link.R_REGISTER, NEW, "Bobby", "~b", "h", "B", "bob"))
    assert [o[0] for o in out] == [E_USER, E_LOGIN] and out[1] == (E_LOGIN, NEW, "Bob")


def test_wrong_credentials_and_unknown_accounts_fail_and_the_fourth_is_throttled():
    policy = with_account(bob=BOB)
    fail = [Reply(C, (link.D_LOGIN, C, "", N.ERR_SASLFAIL, LOGIN_FAILED))]
    for _ in range(3):
        assert decide(policy, (link.R_LOGIN, C, "bob", False, "10.0.0.2")) == fail
    [refused] = decide(policy, (link.R_LOGIN, C, "bob", True, "10.0.0.2"))  # even the right password
    assert refused.item[3] == N.ERR_SASLFAIL and "Too many failed logins" in refused.item[4]
    # the account is throttled from any address, and the address for any account
    assert "Too many" in decide(policy, (link.R_LOGIN, A, "bob", True, "10.0.0.1"))[0].item[4]
    assert "Too many" in decide(policy, (link.R_LOGIN, C, "zed", True, "10.0.0.2"))[0].item[4]
    # a minute later it may try again
    assert decide(policy, (link.R_LOGIN, C, "bob", True, "10.0.0.2"), now=NOW + 61)[0] == (E_LOGIN, C, "Bob")
    assert decide(policy, (link.R_LOGIN, A, "nobody", True, "10.0.0.1")) == [
        Reply(A, (link.D_LOGIN, A, "", N.ERR_SASLFAIL, LOGIN_FAILED))]


def test_loopback_is_throttled_too():
    policy = with_account(bob=BOB)
    for _ in range(3):
        decide(policy, (link.R_LOGIN, C, "x" + str(_), False, "127.0.0.1"))
    assert "Too many" in decide(policy, (link.R_LOGIN, C, "bob", True, "127.0.0.1"))[0].item[4]


def test_register_makes_the_account_and_logs_in_unless_it_exists_or_the_nick_is_held():
    policy = with_account()
    record = dict(BOB)
    out = decide(policy, (link.R_ACCOUNT_REGISTER, B, "Bob", "", record))
    assert out == [(E_ACCOUNT, "bob", record), (E_LOGIN, B, "Bob"),
                   Reply(B, (link.D_ACCOUNT_REGISTER, B, "Bob", None))]
    # replayed after a restart: answered as before, nothing made twice
    assert decide(policy, (link.R_ACCOUNT_REGISTER, B, "Bob", "", record), replayed=True) == [
        Reply(B, (link.D_ACCOUNT_REGISTER, B, "Bob", None))]
    other = dict(BOB, password="$argon2id$y")
    assert decide(policy, (link.R_ACCOUNT_REGISTER, C, "BOB", "", other))[-1].item[3] == "ACCOUNT_EXISTS"
    # alice is online: nobody else may register her nick
    assert decide(policy, (link.R_ACCOUNT_REGISTER, NEW, "alice", "", dict(BOB, name="alice")))[-1].item[3] == \
        "ACCOUNT_EXISTS"
    assert decide(policy, (link.R_ACCOUNT_REGISTER, B, "bob2", "", dict(BOB, name="bob2")))[-1].item[3] == \
        "ALREADY_AUTHENTICATED"


def test_a_registered_nick_is_its_accounts_only():
    policy = with_account(dave={**BOB, "name": "Dave"})
    refused = [Reply(C, (link.D_NICK_REFUSED, C, "DAVE", NICK_RESERVED))]
    assert decide(policy, (link.R_NICK, C, "DAVE")) == refused
    assert decide(policy, (link.R_REGISTER, NEW, "dave", "~d", "h", "D")) == [
        Reply(NEW, (link.D_NICK_REFUSED, NEW, "dave", NICK_RESERVED))]
    decide(policy, (link.R_LOGIN, C, "dave", True, "10.0.0.2"))
    assert decide(policy, (link.R_NICK, C, "DAVE")) == [(E_NICK, C, "DAVE", NOW)]


def test_a_race_for_a_nick_is_decided_in_log_order():
    """The owner (logging in before registering) and a stranger ask for the nick at once: whoever
    the hub handles first holds it; the stranger is refused either way, the owner only when the
    nick is in use."""
    for owner_first in (True, False):
        policy = with_account(dave={**BOB, "name": "Dave"})
        owner, stranger = NEW, 2 << 32 | 7
        policy.connections.admit(stranger, "10.0.0.8")
        decide(policy, (link.R_LOGIN, owner, "dave", True, "10.0.0.9"))
        requests = [(link.R_REGISTER, owner, "dave", "~d", "h", "D", "dave"),
                    (link.R_REGISTER, stranger, "dave", "~s", "h", "S", "")]
        outcomes = [decide(policy, r) for r in (requests if owner_first else requests[::-1])]
        assert policy.state.user_by_nick("dave").cid == owner
        assert any(o and type(o[0]) is Reply and o[0].item[1] == stranger for o in outcomes)
