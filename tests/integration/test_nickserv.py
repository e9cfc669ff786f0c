"""NickServ against the real server: REGISTER, IDENTIFY, INFO, GHOST and REGAIN, PASSWORD, DROP,
CERT and SASL EXTERNAL over TLS, every error a user can provoke, NickServ's reserved nick and its
WHOIS, and the throttle asked before any password is hashed. Clients that must meet sit on
different worker processes (proved with psutil)."""
from __future__ import annotations

import hashlib
import itertools
import os
import socket
import ssl

import pytest

from ircproto.sasl import encode_challenge
from tests.integration.harness import TIMEOUT, Client, Server, clients_on_distinct_workers, \
    connections_on_distinct_workers
from tests.integration.test_tls import make_certificate

_serial = itertools.count()
PASSWORDS: list[str] = []
NICKSERV = "NickServ!NickServ@services."


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("nickserv-tls")
    cert, key = make_certificate(directory, "server")
    srv = Server(3, "--tls-port", "0", "--tls-cert", str(cert), "--tls-key", str(key),
                 env={"HUBCHAT_ACCOUNTS_LOGIN_ATTEMPTS": "1000"})
    srv.cert = cert
    srv.client_certs = directory
    yield srv
    srv.stop()
    assert "Traceback" not in srv.stderr, srv.stderr[-3000:]
    for password in PASSWORDS:
        assert password not in srv.stderr


def fresh(base: str) -> str:
    return f"{base}{next(_serial)}"


def password(tag: str = "") -> str:
    value = f"pw-{tag}-{os.urandom(6).hex()}"
    PASSWORDS.append(value)
    return value


def said(client: Client, *texts: str) -> str:
    """The next NOTICE from NickServ, which must contain every one of texts."""
    notice = client.expect("NOTICE", client.nick, where=lambda m: m.source == NICKSERV)
    for text in texts:
        assert text in notice.params[1], notice.params
    return notice.params[1]


def ns(client: Client, text: str) -> None:
    client.send(f"PRIVMSG NickServ :{text}")


def registered_account(server: Server, client: Client | None = None) -> tuple[Client, str, str]:
    client = client or server.connect()
    name, secret = fresh("acct"), password("reg")
    client.register(name)
    ns(client, f"REGISTER {secret}")
    said(client, f"Account {name} registered")
    assert client.expect("900").params[2] == name
    return client, name, secret


class TLSClient(Client):
    """The harness's client over TLS, with a client certificate or none."""

    def __init__(self, server: Server, cert=None) -> None:
        context = ssl.create_default_context(cafile=str(server.cert))
        if cert is not None:
            context.load_cert_chain(*map(str, cert))
        raw = socket.create_connection(("127.0.0.1", server.tls_port), timeout=TIMEOUT)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.auto_pong, self.buffer, self.received, self.cursor, self.closed, self.nick = True, b"", [], 0, False, None


def fingerprint(cert) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(cert[0].read_text())).hexdigest()


# --- registering and logging in ------------------------------------------------------------------------
def test_register_then_identify_and_info_from_other_workers(server):
    first, second, third = clients_on_distinct_workers(server, 3)
    first, name, secret = registered_account(server, first)
    first.sync(f"WHOIS {name}")
    assert [m.params[2] for m in first.since("330")] == [name]
    second.register(fresh("other"))
    second.send(f"NS IDENTIFY {name} {secret}")  # the NS command, as well as /msg NickServ
    assert second.expect("900").params[2] == name
    said(second, f"You are now logged in as {name}")
    third.register(fresh("third"))
    ns(third, f"INFO {name}")
    said(third, f"Account: {name}")
    said(third, "Registered: ")
    online = said(third, "Online as: ")
    assert first.nick in online and second.nick in online
    ns(second, "INFO")  # one's own: the email and certificates too
    said(second, f"Account: {name}")


def test_identify_with_the_nick_alone_and_the_errors_a_user_can_make(server):
    owner, name, secret = registered_account(server)
    owner.close()
    client = server.connect()
    client.register(fresh("tmp"))
    ns(client, f"IDENTIFY {name} wrong-password")
    said(client, "SASL authentication failed")
    ns(client, "IDENTIFY")
    said(client, "Syntax: IDENTIFY [account] <password>")
    ns(client, "GHOST somebody")
    said(client, "You are not logged in")
    ns(client, "FROB")
    said(client, "Unknown command FROB")
    ns(client, "REGISTER short")
    said(client, "at least 8 characters")
    ns(client, f"REGISTER {password('x')} not-an-email")
    said(client, "not a valid email")
    ns(client, "CERT LIST")
    said(client, "You are not logged in")
    ns(client, "INFO nosuchaccount")
    said(client, "Account nosuchaccount is not registered")
    client.send(f"NICK {name}")
    assert "reserved" in client.expect("433").params[-1]
    late = server.connect()
    late.nick = fresh("p")
    late.send(f"PASS {name}:{secret}\r\nNICK {late.nick}\r\nUSER u 0 * :u")
    late.expect("001")
    ns(late, f"IDENTIFY {name} {secret}")
    said(late, "You are already logged in")
    ns(late, f"REGISTER {password('again')}")
    said(late, "You are already logged in")
    ns(late, "HELP")
    said(late, "NickServ lets you")
    for command in ("REGISTER", "IDENTIFY", "GHOST", "REGAIN", "DROP", "PASSWORD", "INFO", "CERT", "HELP"):
        said(late, f"{command}: ")
    ns(late, "HELP ghost")
    said(late, "Syntax: GHOST <nick>")
    said(late, "GHOST disconnects")
    late.send("NOTICE NickServ :IDENTIFY x y")  # never answered
    late.ping()
    assert not [m for m in late.received[late.cursor:] if m.command == "NOTICE"]


def test_nickserv_is_reserved_and_answers_whois(server):
    client = server.connect()
    client.send("NICK NickServ\r\nUSER u 0 * :u")
    assert client.expect("433").params[1:] == ["NickServ", "Nickname is reserved for a network service"]
    client.register(fresh("w"))
    client.send("NICK nickserv")
    assert client.expect("433").params[-1] == "Nickname is reserved for a network service"
    client.send("WHOIS NickServ")
    assert client.expect("311").params[1:4] == ["NickServ", "NickServ", "services."]
    client.expect("318")
    client.send(f"REGISTER * * :{password('ns')}")  # and no account may be named so
    client.send("NICK NickServ")
    client.expect("433")


def test_register_over_nickserv_is_refused_before_connection_registration(server):
    client = server.connect()
    client.send("PRIVMSG NickServ :REGISTER whatever123")
    client.expect("451")


# --- GHOST and REGAIN ---------------------------------------------------------------------------------------
def test_ghost_disconnects_an_old_connection_on_another_worker(server):
    old, new, watcher = clients_on_distinct_workers(server, 3)
    old, name, secret = registered_account(server, old)
    channel = "#" + fresh("ghost")
    old.send(f"JOIN {channel}")
    old.expect("366")
    watcher.register(fresh("watch"))
    watcher.send(f"JOIN {channel}")
    watcher.expect("366")
    new.register(fresh("new"))
    ns(new, f"GHOST {name}")
    said(new, "You are not logged in")
    ns(new, f"IDENTIFY {name} {secret}")
    said(new, "You are now logged in")
    ns(new, f"GHOST {name}")
    said(new, f"{name} has been ghosted")
    reason = f"GHOST command used by {new.nick}"
    assert watcher.expect("QUIT").params == [reason]
    assert reason in old.expect("ERROR").params[0]
    old.expect_closed()
    ns(new, f"GHOST {new.nick}")
    said(new, "You can't GHOST yourself")
    ns(new, f"GHOST {name}")
    said(new, f"No such nick: {name}")
    ns(new, f"GHOST {watcher.nick}")
    said(new, f"{watcher.nick} is not yours")
    watcher.ping()
    assert not watcher.closed
    new.send(f"NICK {name}")  # the nick is free again, and its account's
    new.expect("NICK", name)


def test_regain_takes_the_nick_back_across_workers(server):
    old, new = clients_on_distinct_workers(server, 2)
    old, name, secret = registered_account(server, old)
    caps = "account-notify"
    new.send(f"CAP REQ :{caps}")
    new.expect("CAP")
    new.send("CAP END")
    new.register(fresh("back"))
    ns(new, f"IDENTIFY {name} {secret}")
    said(new, "You are now logged in")
    ns(new, "REGAIN")
    said(new, f"You have regained the nick {name}")
    assert new.expect("NICK").params == [name]
    old.expect("ERROR")
    new.nick = name
    new.sync(f"WHOIS {name}")
    assert any(m.params[1:3] == [name, name] for m in new.since("330"))
    ns(new, "REGAIN")
    said(new, f"You already have the nick {name}")


# --- PASSWORD and DROP ------------------------------------------------------------------------------------
def test_password_changes_what_logs_in_everywhere(server):
    owner, other = clients_on_distinct_workers(server, 2)
    owner, name, secret = registered_account(server, owner)
    new_secret = password("new")
    ns(owner, "PASSWORD short")
    said(owner, "at least 8 characters")
    ns(owner, f"SET PASSWORD {new_secret}")
    said(owner, "Your password has been changed")
    other.register(fresh("o"))
    ns(other, f"IDENTIFY {name} {secret}")
    said(other, "SASL authentication failed")
    other.send("CAP REQ :sasl")  # SASL PLAIN sees the new one too
    other.expect("CAP")
    other.send("AUTHENTICATE PLAIN")
    other.expect("AUTHENTICATE", "+")
    other.send("AUTHENTICATE " + encode_challenge(f"\0{name}\0{new_secret}".encode())[0])
    other.expect("903")


def test_drop_logs_out_everywhere_and_the_name_is_not_registered_again(server):
    owner, second, stranger = clients_on_distinct_workers(server, 3)
    owner, name, secret = registered_account(server, owner)
    second.register(fresh("second"))
    ns(second, f"IDENTIFY {name} {secret}")
    said(second, "You are now logged in")
    ns(owner, "DROP")
    said(owner, f"Account {name} has been dropped")
    for client in (owner, second):
        client.sync(f"WHOIS {client.nick}")
        assert not [m for m in client.since("330") if m.params[1] == client.nick and m.params[2] == name][1:]
    stranger.register(fresh("str"))
    stranger.sync(f"WHOIS {name}")
    assert not [m for m in stranger.since("330") if m.params[1] == name]
    ns(stranger, f"INFO {name}")
    said(stranger, f"Account {name} was dropped")
    ns(stranger, f"IDENTIFY {name} {secret}")
    said(stranger, "SASL authentication failed")
    owner.send("QUIT")
    owner.expect_closed()
    stranger.sync()  # the hub let the nick go before it answers this; the stranger's worker knows it
    stranger.send(f"NICK {name}")  # free to use, but not to register
    stranger.expect("NICK", name)
    stranger.nick = name
    ns(stranger, f"REGISTER {password('re')}")
    said(stranger, "already registered")


# --- certificates and SASL EXTERNAL ---------------------------------------------------------------------------
def authenticate_external(client: Client, expect: str = "903", certificate: bool = True) -> None:
    """AUTHENTICATE EXTERNAL: with a certificate the exchange begins and fails (or not) at the
    client's empty response; without one it fails at once."""
    client.send("AUTHENTICATE EXTERNAL")
    if certificate:
        client.expect("AUTHENTICATE", "+")
        client.send("AUTHENTICATE +")
    if expect == "903":
        client.expect("900")
    client.expect(expect)


def test_cert_add_then_sasl_external_over_tls_on_another_worker(server):
    cert = make_certificate(server.client_certs, fresh("client"))
    fp = fingerprint(cert)
    held = connections_on_distinct_workers(server, 2, lambda: TLSClient(server, cert))
    first, second = held.values()
    first, name, secret = registered_account(server, first)
    ns(first, "CERT ADD")
    said(first, f"Certificate fingerprint {fp} added")
    ns(first, "CERT ADD")
    said(first, "already on your account")
    ns(first, "CERT LIST")
    said(first, "Certificate fingerprints of")
    said(first, fp)
    first.sync(f"WHOIS {name}")
    assert first.since("276")[-1].params[-1] == f"has client certificate fingerprint {fp}"
    second.send("CAP LS 302")
    assert "sasl=PLAIN,SCRAM-SHA-256,EXTERNAL" in second.expect("CAP").params[-1]
    second.send("CAP REQ :sasl")
    second.expect("CAP")
    authenticate_external(second)
    second.nick = name
    second.send(f"NICK {fresh('ext')}\r\nUSER u 0 * :u\r\nCAP END")
    second.expect("001")
    # IDENTIFY alone logs in with the certificate too
    third = TLSClient(server, cert)
    third.register(fresh("third"))
    ns(third, "IDENTIFY")
    said(third, f"You are now logged in as {name}")
    # CERT DEL: the certificate logs in no more
    ns(first, f"CERT DEL {fp.upper()}")
    said(first, "removed")
    again = TLSClient(server, cert)
    again.send("CAP REQ :sasl")
    again.expect("CAP")
    authenticate_external(again, expect="904")
    for client in (first, second, third, again):
        client.close()


def test_external_fails_without_a_certificate_or_one_on_no_account(server):
    plain = server.connect()
    plain.send("CAP REQ :sasl")
    plain.expect("CAP")
    authenticate_external(plain, expect="904", certificate=False)
    bare = TLSClient(server)
    bare.send("CAP REQ :sasl")
    bare.expect("CAP")
    authenticate_external(bare, expect="904", certificate=False)
    bare.send("CAP END")
    bare.register(fresh("bare"))
    owner, name, _ = registered_account(server)
    ns(owner, "CERT ADD")
    said(owner, "You are not using a TLS client certificate")
    ns(owner, "CERT ADD 12:34")
    said(owner, "not a SHA-256 certificate fingerprint")
    unknown = TLSClient(server, make_certificate(server.client_certs, fresh("nobody")))
    unknown.send("CAP REQ :sasl")
    unknown.expect("CAP")
    authenticate_external(unknown, expect="904")
    unknown.send("CAP END")
    unknown.register(fresh("unk"))
    ns(unknown, "IDENTIFY")
    said(unknown, "No account holds your TLS client certificate")


# --- the throttle comes before the hash ------------------------------------------------------------------------
def test_a_throttled_attempt_costs_no_hash_even_from_many_connections_at_once():
    srv = Server(3, "--log-level", "debug", env={"HUBCHAT_ACCOUNTS_LOGIN_ATTEMPTS": "2"})
    try:
        client = srv.connect()
        client.register("tries")
        for _ in range(2):
            ns(client, "IDENTIFY somebody wrong-password")
            said(client, "SASL authentication failed")
        ns(client, "IDENTIFY somebody wrong-password")
        said(client, "Too many failed logins")
        crowd = clients_on_distinct_workers(srv, 3)  # every worker, all at once
        for n, other in enumerate(crowd):
            other.register(f"crowd{n}")
        for other in crowd:
            other.send("CAP REQ :sasl\r\nAUTHENTICATE PLAIN")
        for other in crowd:
            other.expect("AUTHENTICATE", "+")
            other.send("AUTHENTICATE " + encode_challenge(b"\0somebody\0wrong-password")[0])
        for other in crowd:
            assert "Too many failed logins" in other.expect("904").params[-1]
    finally:
        srv.stop()
    assert "Traceback" not in srv.stderr
    assert srv.stderr.count("checking a password") == 2  # the two allowed; no refused one was hashed


def test_pass_login_right_after_a_registration_on_another_worker(server):
    """PASS account:password waits for no barrier; the hub sends the hash it checks against, so an
    account made on another worker a moment before is there, every time."""
    for _ in range(5):
        maker, user = clients_on_distinct_workers(server, 2)
        maker, name, secret = registered_account(server, maker)
        user.nick = fresh("pass")
        user.send(f"PASS {name}:{secret}\r\nNICK {user.nick}\r\nUSER u 0 * :u")
        assert user.expect("900").params[2] == name
        user.expect("001")
        maker.close()
        user.close()
