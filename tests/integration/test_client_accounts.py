"""python -m client --account against the real server: an account registered by a raw client,
then the client logs in with HUBCHAT_PASSWORD and no terminal, and says so; without a password
and a terminal it says what is missing and exits 2."""
import os
import subprocess
import sys

import pytest

from tests.integration.harness import ROOT, Server
from tests.integration.test_accounts import make_account

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def server():
    srv = Server(2)
    yield srv
    srv.stop()
    assert "Traceback" not in srv.stderr, srv.stderr[-3000:]


def client(server, *args, password=None, stdin_text="", timeout=30):
    env = {k: v for k, v in os.environ.items() if k != "HUBCHAT_PASSWORD"}
    if password is not None:
        env["HUBCHAT_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "client", "--port", str(server.port), *args],
                          input=stdin_text, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)


def test_logs_in_with_the_password_from_the_environment(server):
    name, secret = "acctuser", "pw-" + os.urandom(8).hex()
    raw = make_account(server, name, secret)
    raw.send("QUIT")
    raw.expect_closed()
    proc = client(server, "--account", name, password=secret, stdin_text="hello, logged in\n")
    assert proc.returncode == 0, proc.stderr
    assert f"logged in as {name}" in proc.stdout, proc.stdout
    assert f"Connected as {name}" in proc.stdout  # the account's own nick, taken once logged in
    assert secret not in proc.stdout + proc.stderr

    wrong = client(server, "--account", name, "--nick", "other" + os.urandom(2).hex(), password="not-it")
    assert wrong.returncode == 0, wrong.stderr
    assert "Login failed: wrong account or password; carrying on without logging in." in wrong.stdout
    assert "You joined #lobby" in wrong.stdout

    reserved = client(server, "--nick", name)  # no terminal: the client tries name_ after the refusal
    assert reserved.returncode == 0, reserved.stderr
    assert "logged in as" not in reserved.stdout and f"Connected as {name}_" in reserved.stdout


def test_no_password_and_no_terminal_is_a_sentence_and_exit_2(server):
    proc = client(server, "--account", "someone")
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("--account someone needs a password: set HUBCHAT_PASSWORD, or run the client "
                                   "in a terminal to be asked for it.")


def test_in_a_terminal_the_password_is_asked_for_unechoed_and_the_title_says_who(server, monkeypatch):
    from tests.integration.terminal import TerminalClient
    monkeypatch.delenv("HUBCHAT_PASSWORD", raising=False)
    name, secret = "termacct", "pw-" + os.urandom(8).hex()
    raw = make_account(server, name, secret)
    raw.send("QUIT")
    raw.expect_closed()
    person = TerminalClient("--port", str(server.port), "--account", name)
    try:
        person.wait_for(f"Password for {name}:")
        person.type(secret + "\r")
        person.wait_for(f"You are logged in as {name}.")
        person.wait_for("You joined #lobby")
        assert secret not in person.text()
        assert person.screen.title == f"hubchat - {name} (logged in as {name})"
        person.type("/quit\r")
        assert person.proc.wait(10) == 0
    finally:
        person.close()
