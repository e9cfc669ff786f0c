"""accounts: password hashes and SCRAM keys (round trips, 300-character and non-ASCII passwords,
malformed hashes and records, a SCRAM login against stored keys), names, passwords, emails, the
capability's value, and the login throttle with explicit times. Argon2 runs with cheap
parameters (`FAST`) except where the production parameters themselves are the point."""
from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from scramp import ScramClient

from accounts import names
from accounts.credentials import (
    ARGON2, Argon2Params, hash_password, needs_rehash, scram_credentials, scram_keys, verify_password,
)
from accounts.throttle import LoginThrottle, address_key
from ircproto.sasl import SCRAM_ITERATIONS, SCRAM_SALT_BYTES, Authentication, Challenge, Failure, ScramKeys, Success

FAST = Argon2Params(time_cost=1, memory_cost=8, parallelism=1)
LONG_ASCII = "correct horse battery staple " * 10 + "0123456789"  # 300 characters
LONG_UNICODE = "пароль-🔑-密码-" * 25  # 300 characters, 800 bytes


# Password hashes ---------------------------------------------------------------------------


@pytest.mark.parametrize("password", ["sesame", "", LONG_ASCII, LONG_UNICODE, "é" * 1000, "pass word  "])
def test_hash_round_trip(password):
    hashed = hash_password(password, FAST)
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, password)
    assert not verify_password(hashed, password + "x")


def test_300_character_passwords_differ_in_their_last_character():
    assert len(LONG_ASCII) == len(LONG_UNICODE) == 300
    hashed = hash_password(LONG_ASCII, FAST)
    assert not verify_password(hashed, LONG_ASCII[:-1] + "1")
    assert not verify_password(hashed, LONG_ASCII[:-1])
    hashed = hash_password(LONG_UNICODE, FAST)
    assert not verify_password(hashed, LONG_UNICODE[:-1] + "+")


@pytest.mark.parametrize("other", ["Sesame", "sesame ", " sesame", "sesam", "sésame"])
def test_near_misses_are_wrong(other):
    assert not verify_password(hash_password("sesame", FAST), other)


def test_the_same_password_hashes_differently_each_time():
    assert hash_password("sesame", FAST) != hash_password("sesame", FAST)


def test_production_parameters_are_in_the_hash():
    hashed = hash_password("sesame")
    assert hashed.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(hashed, "sesame")
    assert ARGON2 == Argon2Params(time_cost=2, memory_cost=19456, parallelism=1)


def test_an_unknown_account_is_false_after_the_same_work():
    assert verify_password(None, "sesame") is False
    assert verify_password(None, "") is False


def _tampered(hashed: str) -> str:
    head, digest = hashed.rsplit("$", 1)
    return head + "$" + ("A" if digest[0] != "A" else "B") + digest[1:]


@pytest.mark.parametrize("make_bad", [
    lambda good: "",
    lambda good: "garbage",
    lambda good: "$argon2id$",
    lambda good: good[:-10],
    lambda good: good + "AAAA",
    _tampered,
    lambda good: good.replace("argon2id", "argon2i"),
    lambda good: good.replace("m=8,", "m=bad,"),
    lambda good: "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",  # bcrypt
    lambda good: "scrypt$16384$8$1$c2FsdA==$ZGlnZXN0",
    lambda good: 12345,
    lambda good: b"$argon2id$",
])
def test_malformed_hashes_are_false_never_an_exception(make_bad):
    good = hash_password("sesame", FAST)
    assert verify_password(make_bad(good), "sesame") is False


@pytest.mark.parametrize("password", ["\udcff", None, 42])
def test_unencodable_passwords_are_false(password):
    assert verify_password(hash_password("sesame", FAST), password) is False


def test_needs_rehash():
    assert needs_rehash(hash_password("x", FAST))  # weaker than production
    assert not needs_rehash(hash_password("x", FAST), FAST)
    assert needs_rehash("garbage") and needs_rehash("") and needs_rehash(None)
    assert needs_rehash(hash_password("x", FAST).replace("argon2id", "argon2i"), FAST)


# SCRAM keys --------------------------------------------------------------------------------


def scram_login(keys: ScramKeys | None, user: str, password: str):
    auth = Authentication()
    client = ScramClient(["SCRAM-SHA-256"], user, password)
    auth.receive("SCRAM-SHA-256")
    (line,) = Challenge(client.get_client_first().encode()).lines()
    step = auth.credentials(auth.receive(line), keys)
    client.set_server_first(step.data.decode())
    (line,) = Challenge(client.get_client_final().encode()).lines()
    step = auth.receive(line)
    return auth.receive("+") if isinstance(step, Challenge) else step


def test_scram_credentials_are_json_and_log_in():
    record = json.loads(json.dumps(scram_credentials("sesame")))
    assert sorted(record) == ["iterations", "mechanism", "salt", "server_key", "stored_key"]
    assert record["mechanism"] == "SCRAM-SHA-256" and record["iterations"] == SCRAM_ITERATIONS
    keys = scram_keys(record)
    assert len(keys.salt) == SCRAM_SALT_BYTES
    assert scram_login(keys, "alice", "sesame") == Success("alice")
    assert isinstance(scram_login(keys, "alice", "Sesame"), Failure)


@pytest.mark.parametrize("password", [LONG_ASCII, LONG_UNICODE.replace("🔑", "k")])
def test_scram_with_300_character_passwords(password):
    keys = scram_keys(scram_credentials(password))
    assert scram_login(keys, "alice", password) == Success("alice")
    assert isinstance(scram_login(keys, "alice", password[:-1]), Failure)


def test_scram_credentials_use_a_new_salt_each_time_and_the_given_count():
    one, two = scram_credentials("sesame"), scram_credentials("sesame")
    assert one["salt"] != two["salt"] and one["stored_key"] != two["stored_key"]
    assert scram_credentials("sesame", iterations=5000)["iterations"] == 5000
    assert scram_credentials("sesame", iterations=100) is None  # below RFC 7677's minimum


@pytest.mark.parametrize("password", ["bell\x07", "key 🔑", "\u0627a"])  # control, unassigned in 3.2, bidi
def test_passwords_saslprep_refuses_get_no_scram_keys(password):
    assert scram_credentials(password) is None
    assert verify_password(hash_password(password, FAST), password)  # PLAIN still works


def test_saslprep_maps_the_password_as_a_client_does():
    keys = scram_keys(scram_credentials("I\u00adX"))  # a soft hyphen maps to nothing
    assert scram_login(keys, "alice", "IX") == Success("alice")


@pytest.mark.parametrize("change", [
    lambda r: None,
    lambda r: "a string",
    lambda r: {},
    lambda r: {**r, "mechanism": "SCRAM-SHA-1"},
    lambda r: {k: v for k, v in r.items() if k != "salt"},
    lambda r: {**r, "salt": "not base64!"},
    lambda r: {**r, "salt": "c2FsdA=="},  # 4 bytes: shorter than scramp accepts
    lambda r: {**r, "stored_key": r["stored_key"][:-4]},
    lambda r: {**r, "server_key": 17},
    lambda r: {**r, "iterations": "4096"},
    lambda r: {**r, "iterations": True},
    lambda r: {**r, "iterations": 100},
    lambda r: {**r, "iterations": 10**9},
])
def test_malformed_scram_records_are_none(change):
    assert scram_keys(change(scram_credentials("sesame"))) is None


def test_timings(capsys):
    """Not asserted: what hashing costs on this machine (run with -rA to see it)."""
    def best(fn, runs=5):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times) * 1000, sorted(times)[runs // 2] * 1000

    hashed = hash_password(LONG_ASCII)
    rows = {
        "hash_password (ARGON2)": best(lambda: hash_password(LONG_ASCII)),
        "verify_password (ARGON2)": best(lambda: verify_password(hashed, LONG_ASCII)),
        "verify_password (unknown account)": best(lambda: verify_password(None, LONG_ASCII)),
        "hash_password (FAST, tests only)": best(lambda: hash_password(LONG_ASCII, FAST)),
        "scram_credentials (4096 rounds)": best(lambda: scram_credentials(LONG_ASCII)),
        "SCRAM login, server and client": best(lambda: scram_login(scram_keys(scram_credentials("x")), "a", "x")),
    }
    with capsys.disabled():
        print()
        for name, (low, median) in rows.items():
            print(f"  {name}: best {low:.2f} ms, median {median:.2f} ms")
    assert all(low > 0 for low, _ in rows.values())


# Names, passwords, emails ------------------------------------------------------------------


def test_the_fail_codes_are_the_specs():
    assert set(names.FAIL_CODES) == {
        "ACCOUNT_EXISTS", "BAD_ACCOUNT_NAME", "ACCOUNT_NAME_MUST_BE_NICK", "NEED_NICK", "ALREADY_AUTHENTICATED",
        "WEAK_PASSWORD", "UNACCEPTABLE_PASSWORD", "INVALID_EMAIL", "UNACCEPTABLE_EMAIL",
        "COMPLETE_CONNECTION_REQUIRED", "INVALID_CODE", "TEMPORARILY_UNAVAILABLE",
    }
    assert all(getattr(names, code) == code for code in names.FAIL_CODES)
    assert set(names.MESSAGES) == {*names.FAIL_CODES, names.SUCCESS, names.VERIFICATION_REQUIRED}
    assert names.CAPABILITY == "draft/account-registration"


def test_account_names_are_casefolded_nicks():
    assert names.account_key("Alice[]") == names.account_key("ALICE[]") == "alice[]"
    assert names.is_valid_account_name("alice", 30)
    assert names.is_valid_account_name("a" * 30, 30) and not names.is_valid_account_name("a" * 31, 30)
    for bad in ["", "*", "1alice", "al ice", "al,ice", "#alice", "álice", None]:
        assert not names.is_valid_account_name(bad, 30), bad


@pytest.mark.parametrize("param, nick, custom, code", [
    ("*", "alice", False, None),
    ("alice", "alice", False, None),
    ("ALICE", "alice", False, None),  # the same name casefolded
    ("bob", "alice", False, names.ACCOUNT_NAME_MUST_BE_NICK),
    ("bob", "alice", True, None),
    ("*", None, False, names.NEED_NICK),
    ("alice", None, True, names.NEED_NICK),
    ("1bob", "alice", True, names.BAD_ACCOUNT_NAME),
    ("b" * 31, "alice", True, names.BAD_ACCOUNT_NAME),
    ("*", "*", False, names.BAD_ACCOUNT_NAME),  # an unregistered client's placeholder nick
])
def test_check_account_name(param, nick, custom, code):
    assert names.check_account_name(param, nick, nicklen=30, custom_account_name=custom) == code


def test_requested_account_name():
    assert names.requested_account_name("*", "alice") == "alice"
    assert names.requested_account_name("bob", "alice") == "bob"
    assert names.requested_account_name("*", None) is None


@pytest.mark.parametrize("password, code", [
    ("", names.WEAK_PASSWORD),
    ("1234567", names.WEAK_PASSWORD),
    ("🔑" * 7, names.WEAK_PASSWORD),  # 28 bytes, but 7 characters
    ("12345678", None),
    ("пароль12", None),
    (LONG_UNICODE, None),
    ("pass\x00word", names.UNACCEPTABLE_PASSWORD),
    ("pass\nword", names.UNACCEPTABLE_PASSWORD),
    ("pass\x7fword", names.UNACCEPTABLE_PASSWORD),
    ("\udcff" * 8, names.UNACCEPTABLE_PASSWORD),
    ("short\x01", names.UNACCEPTABLE_PASSWORD),
    (None, names.UNACCEPTABLE_PASSWORD),
])
def test_check_password_strength(password, code):
    assert names.check_password_strength(password) == code


@pytest.mark.parametrize("email", [
    "alice@example.com", "a@b.co", "first.last+tag@sub.example.org", "x_y-z@xn--bcher-kva.example",
    "o'brien@example.ie", "a@" + "d" * 63 + ".com", "l" * 64 + "@example.com",
])
def test_check_email_accepts_ordinary_addresses(email):
    assert names.check_email(email)


@pytest.mark.parametrize("email", [
    "", "alice", "alice@", "@example.com", "alice@example", "alice@@example.com", "a@b@example.com",
    "al ice@example.com", "alice@exa mple.com", ".alice@example.com", "alice.@example.com", "al..ice@example.com",
    "alice@-example.com", "alice@example-.com", "alice@example..com", "alice@example.com.", "alice@1.2.3.4",
    "alice@" + "d" * 64 + ".com", "l" * 65 + "@example.com", "a@" + "b." * 130 + "com", "alice,bob@example.com",
    "alice@exam_ple.com", "alice\n@example.com", "ålice@example.com", "alice@bücher.example", None,
])
def test_check_email_refuses_junk(email):
    assert not names.check_email(email)


@pytest.mark.parametrize("flags, value", [
    ({}, ""),
    ({"before_connect": True}, "before-connect"),
    ({"email_required": True}, "email-required"),
    ({"custom_account_name": True}, "custom-account-name"),
    ({"before_connect": True, "email_required": True, "custom_account_name": True},
     "before-connect,email-required,custom-account-name"),
    ({"custom_account_name": True, "before_connect": True}, "before-connect,custom-account-name"),
])
def test_capability_value(flags, value):
    assert names.capability_value(**flags) == value


# The login throttle ------------------------------------------------------------------------


def test_three_failures_a_minute_per_account():
    t = LoginThrottle()
    for now in (0.0, 10.0, 20.0):
        assert t.allowed("alice", "192.0.2.1", now) == 0.0
        t.failed("alice", "192.0.2.1", now)
    assert t.allowed("alice", "198.51.100.7", 30.0) == 30.0  # another address: the account is throttled
    assert t.allowed("bob", "198.51.100.7", 30.0) == 0.0
    assert t.allowed("alice", "198.51.100.7", 60.0) == 0.0  # the first failure has left the window
    t.failed("alice", "198.51.100.7", 60.0)
    assert t.allowed("alice", None, 60.0) == 10.0  # now 10, 20, 60: wait for 10 to leave


def test_three_failures_a_minute_per_address():
    t = LoginThrottle()
    for now, account in ((0.0, "a"), (1.0, "b"), (2.0, "c")):
        t.failed(account, "192.0.2.1", now)
    assert t.allowed("d", "192.0.2.1", 2.0) == 58.0
    assert t.allowed(None, "192.0.2.1", 59.0) == 1.0
    assert t.allowed("d", "192.0.2.2", 2.0) == 0.0
    assert t.allowed("a", "192.0.2.2", 2.0) == 0.0  # one failure for a: not throttled


@pytest.mark.parametrize("events, account, address, now, wait", [
    # (account, address, time) failures, then the question
    ([], "alice", "192.0.2.1", 0.0, 0.0),
    ([("alice", "192.0.2.1", 0.0)] * 2, "alice", "192.0.2.1", 0.0, 0.0),
    ([("alice", "192.0.2.1", 0.0)] * 3, "alice", "192.0.2.1", 0.0, 60.0),
    ([("alice", "192.0.2.1", 0.0)] * 3, "ALICE", "203.0.113.5", 59.5, 0.5),  # casefolded
    ([("alice", "192.0.2.1", 0.0)] * 3, "alice", "203.0.113.5", 60.0, 0.0),
    ([("alice", "192.0.2.1", t) for t in (0.0, 30.0, 50.0, 55.0)], "alice", None, 56.0, 34.0),
    ([(None, "192.0.2.1", t) for t in (0.0, 1.0, 2.0)], None, "192.0.2.1", 3.0, 57.0),
    ([(None, "192.0.2.1", t) for t in (0.0, 1.0, 2.0)], "alice", "192.0.2.2", 3.0, 0.0),
    # IPv6: the /64 counts as one address; IPv4-mapped is the IPv4 address
    ([(None, "2001:db8::1", 0.0), (None, "2001:db8::2", 0.0), (None, "2001:db8:0:0:ffff::3", 0.0)],
     None, "2001:db8::99", 1.0, 59.0),
    ([(None, "2001:db8::1", 0.0)] * 3, None, "2001:db8:0:1::1", 1.0, 0.0),
    ([(None, "::ffff:192.0.2.1", 0.0)] * 3, None, "192.0.2.1", 1.0, 59.0),
    # loopback is not exempt unless told
    ([(None, "127.0.0.1", 0.0)] * 3, None, "127.0.0.1", 1.0, 59.0),
    ([(None, "::1", 0.0)] * 3, None, "::1", 1.0, 59.0),
    # what does not parse is a key as it is
    ([(None, "", 0.0)] * 3, None, "", 1.0, 59.0),
    # a clock that stepped back: the failures count, and the wait is at most the window
    ([("alice", None, 100.0)] * 3, "alice", None, 10.0, 60.0),
])
def test_throttle_table(events, account, address, now, wait):
    t = LoginThrottle()
    for event in events:
        t.failed(*event)
    assert t.allowed(account, address, now) == pytest.approx(wait)


def test_exempt_networks():
    t = LoginThrottle(exempt=["127.0.0.0/8", "::1/128"])
    for now in (0.0, 1.0, 2.0):
        t.failed("a" + str(now), "127.0.0.1", now)
        t.failed(None, "::1", now)
        t.failed(None, "::ffff:127.0.0.2", now)
    assert t.allowed(None, "127.0.0.1", 3.0) == 0.0
    assert t.allowed(None, "::1", 3.0) == 0.0
    assert len(t.addresses.entries) == 0
    for now in (0.0, 1.0, 2.0):
        t.failed("alice", "127.0.0.1", now)
    assert t.allowed("alice", "127.0.0.1", 3.0) == 57.0  # the account is still counted
    t.failed(None, "192.0.2.1", 0.0)
    assert len(t.addresses.entries) == 1


def test_success_forgets_the_account_not_the_address():
    t = LoginThrottle()
    for now in (0.0, 1.0):
        t.failed("alice", "192.0.2.1", now)
    t.failed("mallory", "192.0.2.1", 2.0)
    assert t.allowed("alice", None, 3.0) == 0.0 and t.allowed(None, "192.0.2.1", 3.0) == 57.0
    t.succeeded("alice", "192.0.2.1", 3.0)
    t.failed("alice", "198.51.100.1", 4.0)
    t.failed("alice", "198.51.100.1", 5.0)
    assert t.allowed("alice", None, 6.0) == 0.0  # two failures since the success
    assert t.allowed(None, "192.0.2.1", 3.0) == 57.0


def test_old_entries_expire():
    t = LoginThrottle()
    for i in range(100):
        t.failed(f"user{i}", f"192.0.2.{i}", i * 0.5)
    assert len(t) == 200  # all within the window yet
    t.failed("late", "198.51.100.1", 1000.0)  # everything before 940 has left the window
    assert len(t) == 2


def test_the_cap_bounds_each_table():
    t = LoginThrottle(max_entries=10)
    for i in range(25):
        t.failed(f"user{i}", f"192.0.2.{i}", 0.0 + i * 0.01)
    assert len(t.accounts.entries) == len(t.addresses.entries) == 10
    assert t.allowed("user24", None, 1.0) == 0.0
    assert "user24" in t.accounts.entries and "user0" not in t.accounts.entries  # oldest out first
    for _ in range(3):
        t.failed("user24", None, 1.0)
    assert t.allowed("user24", None, 1.0) > 0  # what is kept still counts


def test_a_key_keeps_at_most_limit_times():
    t = LoginThrottle()
    for i in range(50):
        t.failed("alice", None, float(i))
    assert len(t.accounts.entries["alice"]) == 3


def test_address_keys():
    assert address_key("192.0.2.1") == "192.0.2.1"
    assert address_key("2001:db8::1") == address_key("2001:DB8:0:0:1234::1") == "2001:db8::/64"
    assert address_key("[2001:db8::1]") == "2001:db8::/64"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("/run/hubchat.sock") == "/run/hubchat.sock"


def test_memory_per_entry(capsys):
    """Not asserted beyond a loose bound: what one throttled account and address cost (-rA)."""
    n = 2000
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        t = LoginThrottle()
        for i in range(n):
            for _ in range(3):
                t.failed(f"account{i:05d}-" + "x" * 16, f"2001:db8:{i:x}::1", 1000.0 + i * 0.001)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_pair = used / n
    with capsys.disabled():
        print(f"\n  throttle: {per_pair:.0f} bytes per account and address with 3 failures each; "
              f"{per_pair * 50_000 / 2 / 1e6:.1f} MB per full table of 50,000")
    assert len(t) == 2 * n and per_pair < 2000
