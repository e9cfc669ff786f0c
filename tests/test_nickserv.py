"""NickServ's command parsing, pure: the table, aliases, argument counts, fingerprints, and which
messages wait for a barrier (a PRIVMSG to NickServ reads the replica; others do not)."""
from __future__ import annotations

import pytest

from ircproto.message import parse
from workers import commands
from workers.handlers import nickserv
from workers.handlers.nickserv import SUBCOMMANDS, SYNTAX, UNKNOWN, fingerprint, route


@pytest.mark.parametrize("text, expected", [
    ("identify hunter2hunter2", ("IDENTIFY", ["hunter2hunter2"], None)),
    ("IDENTIFY  alice   pw-1234567", ("IDENTIFY", ["alice", "pw-1234567"], None)),
    ("register pw-1234567 me@example.org", ("REGISTER", ["pw-1234567", "me@example.org"], None)),
    ("set password newpass123", ("PASSWORD", ["newpass123"], None)),
    ("passwd newpass123", ("PASSWORD", ["newpass123"], None)),
    ("ghost", ("GHOST", [], SYNTAX.format("GHOST <nick>"))),
    ("ghost a b", ("GHOST", ["a", "b"], SYNTAX.format("GHOST <nick>"))),
    ("regain", ("REGAIN", [], None)),
    ("drop now", ("DROP", ["now"], SYNTAX.format("DROP"))),
    ("register", ("REGISTER", [], SYNTAX.format("REGISTER <password> [email]"))),
    ("cert list", ("CERT", ["list"], None)),
    ("frobnicate", ("FROBNICATE", [], UNKNOWN.format("FROBNICATE"))),
    ("   ", ("", [], UNKNOWN.format("(none)"))),
    ("\x01VERSION\x01", ("\x01VERSION\x01", [], UNKNOWN.format("\x01VERSION\x01"))),
])
def test_route(text, expected):
    assert route(text) == expected


def test_every_command_has_its_syntax_and_help_and_help_lists_them_all():
    for name, found in SUBCOMMANDS.items():
        assert found.syntax.split()[0] == name and found.help and found.short
        assert found.max_args is None or found.max_args >= found.min_args
    assert {"REGISTER", "IDENTIFY", "GHOST", "REGAIN", "DROP", "PASSWORD", "INFO", "CERT", "HELP"} <= set(SUBCOMMANDS)


@pytest.mark.parametrize("text, expected", [
    ("AB" * 32, "ab" * 32),
    (":".join(["Ab"] * 32), "ab" * 32),
    ("ab" * 31, None),
    ("zz" * 32, None),
    ("ab" * 33, None),
])
def test_fingerprint(text, expected):
    assert fingerprint(text) == expected


@pytest.mark.parametrize("line, waits", [
    (b"PRIVMSG NickServ :IDENTIFY pw", True),
    (b"PRIVMSG nickserv :INFO", True),
    (b"PRIVMSG nick :hi", False),
    (b"PRIVMSG #chan :hi", False),
    (b"PRIVMSG", False),
    (b"NS INFO", True),
    (b"NICKSERV INFO", True),
    (b"NOTICE NickServ :x", False),
    (b"WHOIS x", True),
    (b"PING x", False),
])
def test_which_messages_wait_for_a_barrier(line, waits):
    assert commands.reads_state(parse(line)) is waits


def test_only_nickserv_is_addressed():
    assert nickserv.addressed(parse(b"PRIVMSG NICKSERV :x"))
    assert not nickserv.addressed(parse(b"PRIVMSG Nick :x"))


# --- passwords cross only TLS or loopback, unless accounts.allow_plaintext -------------------------------
def session(host: str, tls: bool = False, allow_plaintext: bool = False):
    from types import SimpleNamespace
    from chatstate.state import State
    config = SimpleNamespace(accounts=SimpleNamespace(allow_plaintext=allow_plaintext, registration_requires_email=False),
                             limits=SimpleNamespace(nicklen=30))
    return SimpleNamespace(host=host, tls=tls, account="", nick="newbie",
                           server=SimpleNamespace(config=config, state=State()))


@pytest.mark.parametrize("host, tls, allow, refused", [
    ("203.0.113.9", False, False, True),
    ("2001:db8::9", False, False, True),
    ("203.0.113.9", True, False, False),
    ("203.0.113.9", False, True, False),
    ("127.0.0.1", False, False, False),
    ("0::1", False, False, False),
    ("::ffff:127.0.0.1", False, False, False),
])
def test_register_follows_the_plaintext_rule_of_sasl_plain(host, tls, allow, refused):
    from workers.handlers import accounts
    s = session(host, tls, allow)
    assert accounts.plaintext_allowed(s) is not refused
    expected = accounts.PASSWORD_PLAINTEXT_REFUSED if refused else None
    assert accounts.registration_refusal(s, "*", "*", "a-good-password") == expected
    # the name and password rules still come first: a weak password is told so, not the transport
    assert accounts.registration_refusal(s, "*", "*", "short") == "WEAK_PASSWORD"
    assert accounts.registration_refusal(s, "NickServ", "*", "a-good-password") == "BAD_ACCOUNT_NAME"
