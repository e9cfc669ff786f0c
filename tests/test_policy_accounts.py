"""The hub's account decisions on plain data: logins and their throttle (asked before any password
is hashed), REGISTER, nick ownership (strict: a registered nick is its account's only, NickServ's
nobody's), NickServ's GHOST and REGAIN, and changes to one's own account, in log order."""
from __future__ import annotations

from chatstate.state import E_ACCOUNT, E_LOGIN, E_NICK, E_QUIT, E_USER
from hub import policy as P
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
                   Reply(B, (link.D_ACCOUNT_REGISTER, B, "Bob", None, ""))]
    # replayed after a restart: answered as before, nothing made twice
    assert decide(policy, (link.R_ACCOUNT_REGISTER, B, "Bob", "", record), replayed=True) == [
        Reply(B, (link.D_ACCOUNT_REGISTER, B, "Bob", None, ""))]
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


# --- the throttle is asked before the hash ---------------------------------------------------------
def test_a_password_check_is_allowed_with_the_hubs_hash_and_a_throttled_one_is_not():
    policy = with_account(bob=BOB)
    assert decide(policy, (link.R_LOGIN_CHECK, C, "bob", "10.0.0.2")) == [
        Reply(C, (link.D_LOGIN_CHECK, C, "bob", BOB["password"]))]
    decide(policy, (link.R_LOGIN, C, "bob", False, "10.0.0.2"))
    # an unknown account: go ahead, against no hash (the worker checks a throwaway one)
    assert decide(policy, (link.R_LOGIN_CHECK, C, "zed", "10.0.0.2")) == [Reply(C, (link.D_LOGIN_CHECK, C, "zed", None))]
    decide(policy, (link.R_LOGIN, C, "zed", False, "10.0.0.2"))
    decide(policy, (link.R_LOGIN_CHECK, C, "bob", "10.0.0.2"))
    decide(policy, (link.R_LOGIN, C, "bob", False, "10.0.0.2"))
    [refused] = decide(policy, (link.R_LOGIN_CHECK, C, "bob", "10.0.0.2"))
    assert refused.item[:4] == (link.D_LOGIN, C, "", N.ERR_SASLFAIL) and "Too many failed logins" in refused.item[4]


def test_checks_in_flight_count_so_parallel_connections_get_at_most_the_limit_of_hashes():
    policy = with_account(bob=BOB)
    cids = [3 << 32 | n for n in range(6)]
    answers = [decide(policy, (link.R_LOGIN_CHECK, cid, "bob", f"10.0.{n}.7"))[0] for n, cid in enumerate(cids)]
    assert [a.item[0] for a in answers] == [link.D_LOGIN_CHECK] * 3 + [link.D_LOGIN] * 3
    assert "try again in 1 seconds" in answers[3].item[4]
    # one check ends well: the account's slot is free again (its failures are forgotten)
    assert decide(policy, (link.R_LOGIN, cids[0], "bob", True, "10.0.0.7"))[-1].item[2] == "Bob"
    assert decide(policy, (link.R_LOGIN_CHECK, cids[3], "bob", "10.0.3.7"))[0].item[0] == link.D_LOGIN_CHECK
    # a client that quits mid-check frees its slot too
    decide(policy, (link.R_QUIT, cids[1], "gone"))
    assert decide(policy, (link.R_LOGIN_CHECK, cids[4], "bob", "10.0.4.7"))[0].item[0] == link.D_LOGIN_CHECK


def test_a_logged_in_client_gets_907_before_any_check():
    policy = with_account(bob=BOB)
    decide(policy, (link.R_LOGIN, B, "bob", True, "10.0.0.1"))
    assert decide(policy, (link.R_LOGIN_CHECK, B, "bob", "10.0.0.1")) == [
        Reply(B, (link.D_LOGIN, B, "", N.ERR_SASLALREADY, N.TEXTS[N.ERR_SASLALREADY]))]


def test_nickserv_is_nobodys_nick():
    policy = with_account()
    assert decide(policy, (link.R_NICK, C, "nickSERV")) == [
        Reply(C, (link.D_NICK_REFUSED, C, "nickSERV", P.SERVICE_RESERVED))]
    assert decide(policy, (link.R_REGISTER, NEW, "NickServ", "~n", "h", "N")) == [
        Reply(NEW, (link.D_NICK_REFUSED, NEW, "NickServ", P.SERVICE_RESERVED))]


# --- GHOST and REGAIN ----------------------------------------------------------------------------------
def ghost_world():
    """bob's account; carol logged in to it; alice is a stranger; "bob" is held by bob (not logged in)."""
    policy = with_account(bob=BOB)
    decide(policy, (link.R_LOGIN, C, "bob", True, "10.0.0.2"))
    return policy


def service(cid, text, resume=True):
    return Reply(cid, (link.D_SERVICE, cid, text, resume))


def test_ghost_quits_the_holder_of_ones_accounts_nick_wherever_it_is():
    policy = ghost_world()
    out = decide(policy, (link.R_GHOST, C, "BOB", False))
    assert out == [(E_QUIT, B, P.GHOST_REASON.format("carol"), NOW), service(C, P.GHOSTED.format("bob"))]
    assert "bob" not in policy.state.nicks and B not in policy.connections


def test_regain_quits_the_holder_then_renames_the_asker_after_the_answer():
    policy = ghost_world()
    out = decide(policy, (link.R_GHOST, C, "bob", True))
    assert out == [(E_QUIT, B, P.GHOST_REASON.format("carol"), NOW),
                   service(C, P.REGAINED.format("bob"), resume=False), (E_NICK, C, "bob", NOW)]
    assert policy.state.user_by_nick("bob").cid == C


def test_ghost_refusals():
    policy = ghost_world()
    assert decide(policy, (link.R_GHOST, A, "bob", False)) == [service(A, P.NOT_LOGGED_IN)]
    assert decide(policy, (link.R_GHOST, C, "nobody", False)) == [service(C, P.NO_SUCH_NICK.format("nobody"))]
    assert decide(policy, (link.R_GHOST, C, "carol", False)) == [service(C, P.GHOST_SELF)]
    assert decide(policy, (link.R_GHOST, C, "carol", True)) == [service(C, P.REGAIN_SELF.format("carol"))]
    assert decide(policy, (link.R_GHOST, C, "alice", False)) == [service(C, P.NOT_OWNER.format("alice"))]
    assert set(policy.state.users) == {A, B, C}


def test_ghost_of_another_nick_logged_in_to_ones_account():
    policy = ghost_world()
    decide(policy, (link.R_LOGIN, A, "bob", True, "10.0.0.1"))  # alice's connection is bob's too
    out = decide(policy, (link.R_GHOST, C, "alice", True))
    assert out[0] == (E_QUIT, A, P.GHOST_REASON.format("carol"), NOW) and out[-1] == (E_NICK, C, "alice", NOW)


# --- changes to one's own account ----------------------------------------------------------------------
FP = "ab" * 32


def test_password_and_certificates_change_the_askers_own_account():
    policy = ghost_world()
    out = decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("password", "$argon2id$new", {"k": 1})))
    assert out == [(E_ACCOUNT, "bob", {**BOB, "password": "$argon2id$new", "scram": {"k": 1}}),
                   service(C, P.PASSWORD_CHANGED)]
    out = decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("cert add", FP)))
    assert out[0][2]["certfps"] == [FP] and out[1] == service(C, P.CERT_ADDED.format(FP))
    assert decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("cert add", FP))) == [
        service(C, P.CERT_ALREADY.format(FP))]
    assert policy.certificate_owner(FP) == "bob"
    out = decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("cert del", FP)))
    assert out[0][2]["certfps"] == [] and out[1] == service(C, P.CERT_REMOVED.format(FP))
    assert decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("cert del", FP))) == [
        service(C, P.CERT_UNKNOWN.format(FP))]
    # nobody changes an account they are not logged in to
    assert decide(policy, (link.R_ACCOUNT_CHANGE, A, "bob", ("cert add", FP))) == [service(A, P.NOT_LOGGED_IN)]


def test_a_certificate_is_on_one_account_only_and_an_account_holds_a_few():
    policy = with_account(bob=BOB, dave={**BOB, "name": "Dave", "certfps": [FP]})
    decide(policy, (link.R_LOGIN, C, "bob", True, "10.0.0.2"))
    assert decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("cert add", FP))) == [service(C, P.CERT_TAKEN.format(FP))]
    for n in range(P.MAX_CERTFPS):
        decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("cert add", f"{n:064x}")))
    assert decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("cert add", "f" * 64))) == [
        service(C, P.CERT_LIMIT.format(P.MAX_CERTFPS))]


def test_drop_logs_everyone_out_and_keeps_the_name_from_being_registered_again():
    policy = ghost_world()
    decide(policy, (link.R_LOGIN, A, "bob", True, "10.0.0.1"))
    out = decide(policy, (link.R_ACCOUNT_CHANGE, C, "bob", ("drop",)))
    assert sorted(o[1] for o in out if o[0] == E_LOGIN) == sorted([A, C]) and all(
        o[2] == "" for o in out if o[0] == E_LOGIN)
    [dropped] = [o for o in out if o[0] == E_ACCOUNT]
    assert dropped[2]["dropped"] == NOW and dropped[2]["password"] is None
    assert out[-1] == service(C, P.DROPPED.format("Bob"))
    # nobody logs in to it, its nick is free to use, and its name is not registered again
    assert decide(policy, (link.R_LOGIN, C, "bob", True, "10.0.0.2"))[0].item[3] == N.ERR_SASLFAIL
    assert decide(policy, (link.R_LOGIN_CHECK, C, "bob", "10.0.0.2"))[0].item[3] is None
    decide(policy, (link.R_QUIT, B, "bye"))
    assert decide(policy, (link.R_NICK, A, "Bob")) == [(E_NICK, A, "Bob", NOW)]
    assert decide(policy, (link.R_ACCOUNT_REGISTER, A, "bob", "", dict(BOB)))[-1].item[3] == "ACCOUNT_EXISTS"
