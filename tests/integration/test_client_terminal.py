"""python -m client end to end against the real server with several workers."""
import socket
import subprocess
import sys

import pytest

from tests.integration.harness import ROOT, Server, wait_for
from tests.integration.terminal import TerminalClient


@pytest.fixture
def server():
    srv = Server(2)
    yield srv
    srv.stop()


def test_typing_is_never_clobbered_and_private_messages_stay_private(server):
    alice = TerminalClient("--port", str(server.port), "--nick", "alice")
    alice.wait_for("You joined #lobby")
    bob = TerminalClient("--port", str(server.port), "--nick", "bob")
    carol = server.connect()
    try:
        bob.wait_for("You joined #lobby")
        alice.wait_for("bob joined #lobby")
        carol.register("carol")
        carol.send("JOIN #lobby")
        carol.expect("366")

        alice.type("half typed")
        wait_for(lambda: alice.cursor_line().endswith("[#lobby] half typed"), what="alice's typing to show")
        bob.type("hello alice\r")
        alice.wait_for("<bob> hello alice")
        # The message was printed above the prompt and the half-typed line is intact (once
        # prompt_toolkit has redrawn it: it erases the prompt, prints, then draws it again).
        wait_for(lambda: alice.cursor_line().endswith("[#lobby] half typed"), what="alice's line redrawn intact")
        lines = alice.lines()
        assert max(i for i, line in enumerate(lines) if "<bob> hello alice" in line) < alice.screen.cursor.y
        assert sum("hello alice" in line for line in lines) == 1

        alice.type(" and finished\r")
        bob.wait_for("<alice> half typed and finished")
        carol.expect("PRIVMSG", "#lobby", where=lambda m: m.params[1] == "half typed and finished")
        alice.wait_for("<alice> half typed and finished")  # own message shown once
        assert alice.text().count("half typed and finished") == 1

        alice.type("/msg carol just for you\r")
        assert carol.expect("PRIVMSG", "carol").params[1] == "just for you"
        alice.type("back to everyone\r")
        bob.wait_for("<alice> back to everyone")
        assert "just for you" not in bob.text()  # alice's lines reach bob in order: the private one never did
        alice.wait_for("[to carol]")

        carol.send("PRIVMSG alice :thanks")
        alice.wait_for("[private] <carol> thanks")

        alice.type("/nosuch\r")
        alice.wait_for("Unknown command /nosuch. Type /help for the list.")
        alice.type("/quit\r")
        assert alice.proc.wait(10) == 0
        bob.wait_for("alice left the chat")
    finally:
        alice.close()
        bob.close()


def test_asks_for_a_nickname_and_again_when_it_is_taken(server):
    holder = server.connect()
    holder.register("taken")
    person = TerminalClient("--port", str(server.port))
    try:
        person.wait_for("Choose a nickname:")
        person.type("9bad\r")
        person.wait_for("don't start with a digit")
        person.type("taken\r")
        person.wait_for("That nickname is taken.")
        person.type("fresh\r")
        person.wait_for("You joined #lobby")
    finally:
        person.close()


def test_piped_input_is_sent_as_messages(server):
    listener = server.connect()
    listener.register("listener")
    listener.send("JOIN #lobby")
    listener.expect("366")
    proc = subprocess.run([sys.executable, "-m", "client", "--port", str(server.port), "--nick", "bot"],
                          input="hello from a script\n/me beeps\n", capture_output=True, text=True, cwd=ROOT,
                          timeout=20)
    assert proc.returncode == 0, proc.stderr
    assert listener.expect("PRIVMSG").params == ["#lobby", "hello from a script"]
    assert listener.expect("PRIVMSG").params == ["#lobby", "\x01ACTION beeps\x01"]
    assert "You joined #lobby" in proc.stdout and "<bot> hello from a script" in proc.stdout


def test_no_server_is_a_sentence_not_a_traceback():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, never listening: refused
        proc = subprocess.run([sys.executable, "-m", "client", "--port", str(port), "--nick", "x"],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, cwd=ROOT, timeout=20)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"could not connect to 127.0.0.1:{port} - is the server running? "
                                   "(python -m hub)")


def test_reconnects_and_rejoins_after_the_server_restarts():
    first = Server(2)
    port = first.port
    client = subprocess.Popen([sys.executable, "-m", "client", "--port", str(port), "--nick", "sticky",
                               "--channel", "#keep"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT)
    second = None
    try:
        assert "Connected as sticky" in client.stdout.readline()
        assert "You joined #keep" in client.stdout.readline()
        first.stop()
        second = Server(2, "--port", str(port))
        assert second.port == port
        watcher = second.connect()
        watcher.register("watcher")
        watcher.send("JOIN #keep")
        watcher.expect("366")
        joined = watcher.expect("JOIN", "#keep", where=lambda m: m.source.startswith("sticky!"), timeout=15)
        assert joined
        client.stdin.write("I am back\n")
        client.stdin.flush()
        assert watcher.expect("PRIVMSG").params == ["#keep", "I am back"]
        client.stdin.close()
        assert client.wait(10) == 0
        out = client.stdout.read()
        assert "Connection lost. Reconnecting" in out and "Reconnected; rejoining your rooms." in out
    finally:
        if client.poll() is None:
            client.kill()
        if second is not None:
            second.stop()
