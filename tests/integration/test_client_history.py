"""The clients' server-side history against the real server: what was said before joining, older
pages on PageUp, /search, and the recent private conversations at connect.

hubchat's server does not answer CHATHISTORY or SEARCH yet (that work is under way), so every
test here is expected to fail for now; each one first checks that the server offers the
capabilities, so that it fails at once instead of waiting for lines that cannot come. When the
server side lands, these should pass (XPASS) and the mark can go."""
import subprocess
import sys

import pytest

from tests.integration.harness import ROOT, Server
from tests.integration.terminal import TerminalClient


EARLIER, NOW, END_EARLIER, NO_EARLIER = ("\u2014 earlier messages \u2014", "\u2014 now \u2014",
                                          "\u2014 end of earlier messages \u2014", "\u2014 no earlier messages \u2014")


@pytest.fixture
def server():
    srv = Server(2)
    yield srv
    srv.stop()


def require_history(server: Server, *caps: str) -> dict[str, str]:
    """The capabilities the server offers (CAP LS 302) and its ISUPPORT; fails at once without these."""
    probe = server.connect()
    probe.send("CAP LS 302")
    offered: set[str] = set()
    while True:
        msg = probe.expect("CAP")
        offered |= {item.partition("=")[0] for item in msg.params[-1].split()}
        if msg.params[2] != "*":
            break
    missing = [cap for cap in ("batch", "server-time", "draft/chathistory", *caps) if cap not in offered]
    if missing:
        probe.close()
        pytest.fail(f"the server does not offer {', '.join(missing)}")
    probe.send("CAP END")
    probe.register("probe")
    tokens = {}
    for msg in probe.since("005"):
        for token in msg.params[1:-1]:
            name, _, value = token.partition("=")
            tokens[name] = value
    probe.close()
    return tokens


def said_in_lobby(server: Server, nick: str, *texts: str):
    peer = server.connect()
    peer.register(nick)
    peer.send("JOIN #lobby")
    peer.expect("366")
    peer.sync(*(f"PRIVMSG #lobby :{text}" for text in texts))
    return peer


def test_the_terminal_shows_what_was_said_before_it_joined(server):
    require_history(server)
    peer = said_in_lobby(server, "peer", "first, before you came", "second, before you came")
    alice = TerminalClient("--port", str(server.port), "--nick", "alice")
    try:
        alice.wait_for(NOW)
        lines = alice.lines()
        at = [next(i for i, line in enumerate(lines) if text in line)
              for text in (EARLIER, "<peer> first, before you came", "<peer> second, before you came", NOW)]
        assert at == sorted(at)
        peer.send("PRIVMSG #lobby :and now, live")
        alice.wait_for("<peer> and now, live")
        assert alice.text().count("and now, live") == 1
        alice.type("hello peer\r")
        assert peer.expect("PRIVMSG").params == ["#lobby", "hello peer"]
        alice.wait_for("<alice> hello peer")
        assert alice.text().count("hello peer") == 1
        alice.type("/quit\r")
        assert alice.proc.wait(10) == 0
    finally:
        alice.close()


def test_pageup_pages_back_to_the_start_and_search_finds_a_line(server):
    tokens = require_history(server, "soju.im/search")
    page = min(50, int(tokens.get("CHATHISTORY") or 50))
    said_in_lobby(server, "peer", "the needle is here", *(f"filler {i}" for i in range(page + 5)))
    alice = TerminalClient("--port", str(server.port), "--nick", "alice")
    try:
        alice.wait_for(NOW)
        assert "the needle is here" not in alice.text()  # it is on an earlier page
        alice.type("\x1b[5~")  # PageUp
        alice.wait_for(END_EARLIER)
        alice.wait_for("the needle is here")
        alice.type("\x1b[5~")
        alice.wait_for(NO_EARLIER)
        alice.type("/search needle\r")
        alice.wait_for("\u2014 end of search results \u2014")
        assert any("#lobby <peer> the needle is here" in line for line in alice.lines())
    finally:
        alice.close()


def test_a_later_bot_of_the_same_nick_is_not_shown_the_earlier_ones_private_conversations(server):
    """Private history belongs to whoever held the nick then (until accounts exist, a connection):
    the client asks for recent conversations at connect, and a newcomer with the same nick gets
    none of the last holder's. The listing itself is in tests/test_client_history.py."""
    require_history(server)
    peer = server.connect()
    peer.register("peer")
    first = subprocess.Popen([sys.executable, "-m", "client", "--port", str(server.port), "--nick", "bot"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
    try:
        assert "Connected as bot" in first.stdout.readline()
        peer.sync("PRIVMSG bot :remember me?")
        first.stdin.close()
        assert first.wait(10) == 0
    finally:
        if first.poll() is None:
            first.kill()
    again = subprocess.run([sys.executable, "-m", "client", "--port", str(server.port), "--nick", "bot"],
                           input="", capture_output=True, text=True, cwd=ROOT, timeout=20)
    assert again.returncode == 0, again.stderr
    assert "You joined #lobby" in again.stdout  # it got as far as the TARGETS it asks at connect
    assert "peer" not in again.stdout and "remember me?" not in again.stdout
