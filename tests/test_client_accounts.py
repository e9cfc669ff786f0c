"""The client's accounts, with strings only: which capabilities are asked for, the SASL exchange
(PLAIN, and SCRAM-SHA-256 against a scramp server), its failures, /register, /login, accounts
shown (WHOIS 330, account-notify, extended-join, account-tag) and 433 for a reserved nick."""
import base64

import pytest
from scramp import ScramMechanism

from client import accounts as A
from client.core import ChatCore
from ircproto.message import parse

pytestmark = pytest.mark.timeout(10)

SECRET = "s3cret pass"


def feed(core, line):
    return core.handle_message(parse(line.encode()))


def sends(core):
    return [line.decode().rstrip("\r\n") for line in core.take_sends()]


def offer(core, caps):
    core.start_lines()
    feed(core, f":srv CAP * LS :{caps}")
    return sends(core)


def texts(events):
    return [e.text for e in events]


def logged_in_core(offered="sasl=PLAIN,SCRAM-SHA-256 account-notify", account="alice"):
    core = ChatCore("alice")
    core.set_credentials(account, SECRET)
    return core, offer(core, offered)


def test_sasl_is_requested_only_when_offered_and_only_to_log_in():
    core = ChatCore("me")
    assert offer(core, "sasl=PLAIN account-notify extended-join account-tag chghost") == \
        ["CAP REQ :account-notify extended-join account-tag"]
    core, sent = logged_in_core("sasl=PLAIN account-tag")
    assert sent == ["CAP REQ :account-tag sasl"] or sent == ["CAP REQ :sasl account-tag"]


def test_no_sasl_offered_says_so_and_ends_negotiation():
    core = ChatCore("alice")
    core.set_credentials("alice", SECRET)
    core.start_lines()
    events = feed(core, ":srv CAP * LS :batch")
    assert sends(core) == ["CAP REQ batch"]
    assert any("does not let you log in" in t and "carrying on" in t for t in texts(events))
    feed(core, ":srv CAP alice ACK :batch")
    assert sends(core) == ["CAP END"]


def test_plain_exchange_lines_and_success():
    core, sent = logged_in_core("sasl=PLAIN")
    assert sent == ["CAP REQ sasl"]
    feed(core, ":srv CAP alice ACK :sasl")
    assert sends(core) == ["AUTHENTICATE PLAIN"]  # no CAP END yet
    feed(core, "AUTHENTICATE +")
    payload = base64.b64encode(f"\0alice\0{SECRET}".encode()).decode()
    assert sends(core) == [f"AUTHENTICATE {payload}"]
    events = feed(core, ":srv 900 alice alice!u@h alice :You are now logged in as alice")
    assert texts(events) == ["You are logged in as alice."]
    assert core.account == "alice" and core.status_text == "logged in as alice"
    feed(core, ":srv 903 alice :SASL authentication successful")
    assert sends(core) == ["CAP END"]
    for event in events:
        assert SECRET not in event.text


def test_a_long_plain_response_is_chunked():
    long_secret = "x" * 500
    lines = A.plain_response("alice", long_secret)
    assert len(lines) == 2 and len(lines[0]) == 400
    assert base64.b64decode("".join(lines)).decode() == f"\0alice\0{long_secret}"


def test_scram_is_preferred_and_verified_by_a_scramp_server():
    mechanism = ScramMechanism("SCRAM-SHA-256")
    auth_info = mechanism.make_auth_info(SECRET)
    server = mechanism.make_server(lambda name: auth_info)
    core, _ = logged_in_core("sasl=PLAIN,SCRAM-SHA-256")
    feed(core, ":srv CAP alice ACK :sasl")
    assert sends(core) == ["AUTHENTICATE SCRAM-SHA-256"]
    feed(core, "AUTHENTICATE +")
    first, = sends(core)
    server.set_client_first(base64.b64decode(first.split()[1]).decode())
    feed(core, "AUTHENTICATE " + base64.b64encode(server.get_server_first().encode()).decode())
    final, = sends(core)
    server.set_client_final(base64.b64decode(final.split()[1]).decode())  # raises on a wrong proof
    feed(core, "AUTHENTICATE " + base64.b64encode(server.get_server_final().encode()).decode())
    assert sends(core) == ["AUTHENTICATE +"]
    feed(core, ":srv 900 alice alice!u@h alice :logged in")
    feed(core, ":srv 903 alice :ok")
    assert sends(core) == ["CAP END"] and core.account == "alice"


def test_scram_with_a_server_that_cannot_prove_the_password_aborts():
    mechanism = ScramMechanism("SCRAM-SHA-256")
    auth_info = mechanism.make_auth_info("another password")
    server = mechanism.make_server(lambda name: auth_info)
    core, _ = logged_in_core("sasl=SCRAM-SHA-256")
    feed(core, ":srv CAP alice ACK :sasl")
    sends(core)
    feed(core, "AUTHENTICATE +")
    server.set_client_first(base64.b64decode(sends(core)[0].split()[1]).decode())
    feed(core, "AUTHENTICATE " + base64.b64encode(server.get_server_first().encode()).decode())
    sends(core)  # the client's proof (wrong for this server)
    feed(core, "AUTHENTICATE " + base64.b64encode(b"v=bm90IHRoZSBzaWduYXR1cmU=").decode())
    assert sends(core) == ["AUTHENTICATE *"]
    events = feed(core, ":srv 906 alice :SASL authentication aborted")
    assert sends(core) == ["CAP END"]
    assert texts(events) == ["Login failed: the server could not prove it knows your password; "
                             "carrying on without logging in."]


def test_wrong_password_is_told_in_words_and_registration_carries_on():
    core, _ = logged_in_core("sasl=PLAIN")
    feed(core, ":srv CAP alice ACK :sasl")
    feed(core, "AUTHENTICATE +")
    sends(core)
    events = feed(core, ":srv 904 alice :SASL authentication failed")
    assert texts(events) == ["Login failed: wrong account or password; carrying on without logging in."]
    assert sends(core) == ["CAP END"] and core.account is None
    # not tried again on a reconnect
    assert offer(core, "sasl=PLAIN") == ["CAP END"]


def test_throttled_failure_keeps_the_servers_reason():
    core, _ = logged_in_core("sasl=PLAIN")
    feed(core, ":srv CAP alice ACK :sasl")
    events = feed(core, ":srv 904 alice :Too many failed logins; try again in 60 seconds")
    assert "wrong account or password (Too many failed logins" in texts(events)[0]


def test_credentials_are_used_again_after_a_reconnect():
    core, _ = logged_in_core("sasl=PLAIN")
    feed(core, ":srv CAP alice ACK :sasl")
    feed(core, ":srv 900 alice alice!u@h alice :in")
    feed(core, ":srv 903 alice :ok")
    assert offer(core, "sasl=PLAIN") == ["CAP REQ sasl"] and core.account is None


def test_the_password_never_shows():
    core, _ = logged_in_core("sasl=PLAIN")
    assert SECRET not in repr(core._sasl) and SECRET not in repr(core.__dict__.get("_sasl"))
    feed(core, ":srv CAP alice ACK :sasl")
    assert SECRET not in repr(core._sasl)


def registered(offered="sasl=PLAIN,SCRAM-SHA-256 draft/account-registration=before-connect account-notify"):
    core = ChatCore("me")
    offer(core, offered)
    feed(core, ":srv CAP me ACK :account-notify")
    sends(core)
    for line in [":srv 001 me :hi", ":me!u@h JOIN #lobby", ":srv 353 me = #lobby :me bob",
                 ":srv 366 me #lobby :end"]:
        feed(core, line)
    return core


@pytest.mark.parametrize("typed,line", [
    ("/register hunter2 horse", "REGISTER * * :hunter2 horse"),
    ("/register me@example.com hunter2", "REGISTER * me@example.com hunter2"),
])
def test_register_lines(typed, line):
    core = registered()
    out = core.handle_input(typed)
    assert [s.decode().rstrip("\r\n") for s in out.send] == [line]
    assert all("hunter2" not in e.text for e in out.events)


def test_register_success_and_fail_in_words():
    core = registered()
    core.handle_input("/register hunter2")
    events = feed(core, ":srv REGISTER SUCCESS me :Account created")
    assert texts(events) == ["REGISTER SUCCESS: the account me is created."]
    assert core._credentials == ("me", "hunter2")  # a reconnect logs in again
    core.handle_input("/register x")
    events = feed(core, ":srv FAIL REGISTER WEAK_PASSWORD me :Password too weak")
    assert texts(events) == ["REGISTER failed (WEAK_PASSWORD): the password is too weak; choose a longer one."]
    events = feed(core, ":srv FAIL REGISTER ACCOUNT_EXISTS me :exists")
    assert "already exists" in texts(events)[0]


def test_register_without_the_capability_says_so():
    core = registered("batch")
    out = core.handle_input("/register pw")
    assert out.send == [] and "does not offer account registration" in texts(out.events)[0]
    assert "Usage" in texts(registered().handle_input("/register").events)[0]


def test_login_after_connect_asks_for_sasl_then_authenticates():
    core = registered()
    out = core.handle_input("/login acct hunter2")
    assert [s.decode().rstrip("\r\n") for s in out.send] == ["CAP REQ sasl"]
    assert all("hunter2" not in e.text for e in out.events)
    feed(core, ":srv CAP me ACK :sasl")
    assert sends(core) == ["AUTHENTICATE SCRAM-SHA-256"]  # no CAP END: registration is over


def test_login_when_sasl_is_enabled_starts_at_once_and_a_failure_is_told():
    core = registered()
    core.handle_input("/login acct hunter2")
    feed(core, ":srv CAP me ACK :sasl")
    sends(core)
    out = core.handle_input("/login acct again")
    assert "in progress" in texts(out.events)[0]
    events = feed(core, ":srv 904 me :SASL authentication failed")
    assert texts(events) == ["Login failed: wrong account or password."] and sends(core) == []
    out = core.handle_input("/login acct hunter3")
    assert [s.decode().rstrip("\r\n") for s in out.send] == ["AUTHENTICATE SCRAM-SHA-256"]


def test_login_refused_when_the_server_has_no_sasl():
    out = registered("batch").handle_input("/login acct pw")
    assert out.send == [] and "does not let you log in" in texts(out.events)[0]
    assert "Usage" in texts(registered().handle_input("/login acct").events)[0]


def test_accounts_are_shown_and_followed():
    core = registered()
    assert texts(feed(core, ":srv 330 me bob bobacct :is logged in as")) == ["bob is logged in as bobacct"]
    assert core.account_of("bob") == "bobacct"
    events = feed(core, ":bob!u@h ACCOUNT *")
    assert texts(events) == ["bob logged out"] and events[0].target == "#lobby"
    assert core.account_of("bob") is None
    feed(core, ":carol!u@h JOIN #lobby carolacct :Carol")  # extended-join
    assert core.account_of("carol") == "carolacct"
    feed(core, "@account=danacct :dan!u@h PRIVMSG #lobby :hi")  # account-tag
    assert core.account_of("dan") == "danacct"
    feed(core, ":carol!u@h NICK caz")
    assert core.account_of("caz") == "carolacct" and core.account_of("carol") is None
    feed(core, ":caz!u@h QUIT :bye")
    assert core.account_of("caz") is None
    assert texts(feed(core, ":bob!u@h ACCOUNT bobacct")) == ["bob logged in as bobacct"]


def test_a_reserved_nickname_is_explained():
    core = registered()
    events = feed(core, ":srv 433 me alice :Nickname is reserved by a different account")
    assert texts(events) == ["That nickname belongs to an account; log in with --account or pick another."]
    events = feed(core, ":srv 433 me alice :Nickname is already in use")
    assert texts(events) == ["The nickname alice is taken; pick another."]


def test_help_lists_the_account_commands():
    shown = "\n".join(texts(registered().handle_input("/help").events))
    assert "/register [email] password" in shown and "/login account password" in shown


def test_lines_with_a_password_stay_out_of_the_input_history():
    from client.tui import InputHistory
    history = InputHistory()
    for line in ["/login acct pw", "hello", "/REGISTER pw", "/whois bob"]:
        history.append_string(line)
    assert list(history.get_strings()) == ["hello", "/whois bob"]
    assert A.carries_password("/login a b") and not A.carries_password("/loginx")
