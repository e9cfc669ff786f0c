"""python -m client end to end against the real server with several workers, and (for server-side
history, which hubchat's server does not answer yet) against a scripted server that speaks the
protocol as the IRCv3 specifications write it."""
import socket
import subprocess
import sys
import threading
import time

import pytest

from client.history import format_server_time, parse_server_time
from client.render import NEW_LINES, day_label
from ircproto.message import parse
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


def test_windows_switch_with_alt_n_and_a_mention_is_highlighted_and_rings(server):
    alice = TerminalClient("--port", str(server.port), "--nick", "alice")
    carol = server.connect()
    try:
        alice.wait_for("You joined #lobby")
        alice.type("/join #side\r")
        alice.wait_for("You joined #side")
        wait_for(lambda: alice.cursor_line().endswith("[#side]"), what="the prompt in #side")
        alice.type("\x1b1")  # Alt-1
        alice.wait_for("Now in #lobby.")
        wait_for(lambda: alice.cursor_line().endswith("[#lobby]"), what="the prompt back in #lobby")

        carol.register("carol")
        carol.send("JOIN #side")
        carol.expect("366")
        carol.send("PRIVMSG #side :are you there, Alice?")
        alice.wait_for("are you there, Alice?")
        assert all(cell.reverse for cell in alice.styled("Alice"))  # our nick stands out
        wait_for(lambda: alice.screen.bells == 1, what="the bell for the mention")
        wait_for(lambda: "2:#side(@1) [#lobby]" in alice.cursor_line(), what="the activity in the prompt")

        alice.type("/windows\r")
        alice.wait_for("*1: #lobby,  2: #side (1 new) (@1)")
        alice.type("/win 2\r")
        alice.wait_for("Now in #side.")
        wait_for(lambda: alice.cursor_line().endswith("[#side]"), what="the prompt in #side, its activity seen")
        alice.type("/win 9\r")
        alice.wait_for("No window 9: /windows lists them.")
    finally:
        alice.close()


def test_formatting_wide_characters_and_the_new_lines_marker_in_the_terminal(server):
    from wcwidth import wcswidth
    alice = TerminalClient("--port", str(server.port), "--nick", "alice")
    carol = server.connect()
    try:
        alice.wait_for("You joined #lobby")
        carol.register("carol")
        carol.send("JOIN #lobby")
        carol.expect("366")
        carol.send("PRIVMSG #lobby :\x02loud\x02 \x0304,01danger\x03 \x1dslanted\x1d \x1fbelow\x1f plain")
        alice.wait_for("loud danger slanted below plain")  # the codes drawn, none left as text
        assert all(c.bold and not c.italics for c in alice.styled("loud"))
        assert all(c.fg == "ff0000" and c.bg == "000000" for c in alice.styled("danger"))
        assert all(c.italics for c in alice.styled("slanted")) and all(c.underscore for c in alice.styled("below"))
        assert not any(c.bold or c.italics or c.underscore or c.fg == "ff0000" for c in alice.styled("plain"))

        wide = "\u6f22\u5b57\u30c6\u30b9\u30c8 \U0001f389 \u00e9t\u00e9 wide"  # CJK, an emoji, accents
        carol.send(f"PRIVMSG #lobby :{wide}")
        carol.send("PRIVMSG #lobby :the line after")
        alice.wait_for("the line after")
        lines = alice.lines()
        row = next(i for i, line in enumerate(lines) if "wide" in line)
        assert lines[row].endswith(f"<carol> {wide}") and lines[row][:5] == lines[row + 1][:5]
        assert lines[row + 1].endswith("<carol> the line after") and lines[row + 1].index("<") == lines[row].index("<")
        alice.type("\u65e5\u672c\u8a9e ok")  # typed wide characters: the cursor after them
        wait_for(lambda: alice.cursor_line().endswith("[#lobby] \u65e5\u672c\u8a9e ok"), what="the typed line")
        assert alice.screen.cursor.x == wcswidth(alice.cursor_line())
        alice.type("\x15")  # Ctrl-U: the line emptied again

        alice.type("/join #side\r")
        wait_for(lambda: alice.cursor_line().endswith("[#side]"), what="the prompt in #side")
        carol.send("PRIVMSG #lobby :first unread")
        carol.send("PRIVMSG #lobby :second unread")
        wait_for(lambda: "1:#lobby(2)" in alice.cursor_line(), what="the unread count")
        alice.type("\x1b1")
        alice.wait_for("Now in #lobby.")
        wait_for(lambda: sum("second unread" in line for line in alice.lines()) == 2, what="the recap")
        lines = alice.lines()
        now_in = max(i for i, line in enumerate(lines) if "Now in #lobby." in line)
        assert NEW_LINES in lines[now_in + 1]  # the marker, then what came while we were away
        assert "first unread" in lines[now_in + 2] and "second unread" in lines[now_in + 3]
        carol.send("PRIVMSG #lobby :watched arriving")
        alice.wait_for("watched arriving")
        assert alice.text().count(NEW_LINES) == 1  # lines seen as they come are not new
    finally:
        alice.close()


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


class ScriptedServer:
    """A stand-in IRC server that answers as draft/chathistory, batch, server-time and
    soju.im/search specify, from the lines it is given: `history` maps a lower-case target to
    its lines, oldest first, each (unix time, msgid, nick, text); `targets` are (nick, time) for
    CHATHISTORY TARGETS; `results` (time, msgid, nick, target, text) answer every SEARCH;
    `after_join(room)` gives lines sent right after a JOIN's answer (a live line, say).
    ISUPPORT CHATHISTORY is `chathistory_max`. `names` is a room's NAMES after our nick;
    `markers` maps a lower-case room to the read marker (draft/read-marker) its JOIN brings, when
    `caps` offers that. `push(line)` sends a line to every client. Every line received is kept in
    `received`."""

    CAPS = "batch server-time message-tags draft/chathistory soju.im/search"

    def __init__(self, history=None, targets=(), results=(), chathistory_max=5, after_join=None, caps=None,
                 names="bob", markers=None):
        self.history = history or {}
        self.targets = list(targets)
        self.results = list(results)
        self.max = chathistory_max
        self.after_join = after_join
        self.caps = caps or self.CAPS
        self.names = names
        self.markers = markers or {}
        self.received: list[str] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def push(self, *lines: str) -> None:
        for conn in list(self.conns):
            conn.sendall(b"".join(line.encode() + b"\r\n" for line in lines))

    def sent(self, prefix: str) -> list[str]:
        return [line for line in list(self.received) if line.startswith(prefix)]

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        nick, buffer, batches = "*", b"", 0

        def send(*lines: str) -> None:
            conn.sendall(b"".join(line.encode() + b"\r\n" for line in lines))

        def batch(kind: str, lines: list[str]) -> None:
            nonlocal batches
            batches += 1
            ref = f"b{batches}"
            send(f":fake BATCH +{ref} {kind}", *(f"@batch={ref};{line[1:]}" if line[0] == "@" else
                                                 f"@batch={ref} {line}" for line in lines), f":fake BATCH -{ref}")

        def said(ts, msgid, who, target, text):
            return f"@time={format_server_time(ts)};msgid={msgid} :{who}!u@fake PRIVMSG {target} :{text}"

        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            *lines, buffer = buffer.split(b"\r\n")
            for raw in lines:
                self.received.append(raw.decode())
                msg = parse(raw)
                command, params = msg.command, msg.params
                if command == "CAP" and params[0] == "LS":
                    send(f":fake CAP * LS :{self.caps}")
                elif command == "CAP" and params[0] == "REQ":
                    send(f":fake CAP {nick} ACK :{params[1]}")
                elif command == "CAP" and params[0] == "END":
                    send(f":fake 001 {nick} :Welcome", f":fake 005 {nick} CHATHISTORY={self.max} :are supported",
                         f":fake 376 {nick} :End of /MOTD command.")
                elif command == "NICK":
                    nick = params[0]
                elif command == "JOIN":
                    room = params[0]
                    marker = self.markers.get(room.lower())
                    send(f":{nick}!u@fake JOIN {room}",
                         *([f":fake MARKREAD {room} timestamp={format_server_time(marker)}"] if marker else []),
                         f":fake 353 {nick} = {room} :{nick} {self.names}", f":fake 366 {nick} {room} :End of /NAMES list.")
                    if self.after_join:
                        send(*self.after_join(room))
                elif command == "CHATHISTORY" and params[0] == "TARGETS":
                    batch("draft/chathistory-targets",
                          [f":fake CHATHISTORY TARGETS {who} {format_server_time(ts)}" for who, ts in self.targets])
                elif command == "CHATHISTORY":
                    target, limit = params[1], int(params[-1])
                    stored = self.history.get(target.lower(), [])
                    if params[0] == "BEFORE":
                        bound = parse_server_time(params[2])
                        stored = [line for line in stored if parse_server_time(format_server_time(line[0])) < bound]
                    batch(f"chathistory {target}", [said(ts, msgid, who, target, text)
                                                    for ts, msgid, who, text in stored[-limit:]])
                elif command == "SEARCH":
                    batch("soju.im/search", [said(*result) for result in self.results])
                elif command == "QUIT":
                    send("ERROR :Closing link")
                    conn.close()
                    return


@pytest.fixture
def scripted():
    servers = []

    def start(**options):
        servers.append(ScriptedServer(**options))
        return servers[-1]
    yield start
    for srv in servers:
        srv.close()


def row_colours(term: TerminalClient, needle: str) -> set[str]:
    """The foreground colours of the characters of the screen row that shows `needle`."""
    with term.lock:
        for y in range(term.screen.lines):
            row = term.screen.buffer[y]
            text = "".join(row[x].data for x in range(term.screen.columns))
            if needle in text:
                return {row[x].fg for x in range(term.screen.columns) if row[x].data.strip()}
    raise AssertionError(f"{needle!r} is not on screen:\n{term.text()}")


def test_history_on_join_pageup_targets_and_search_in_the_terminal(scripted):
    now = time.time()
    lobby = [(now - 2 * 86400 + i, f"m{i}", "carol", f"old line {i}") for i in range(3)]
    lobby += [(now - 600 + 60 * i, f"m{i}", "bob", f"old line {i}") for i in range(3, 8)]
    lobby.append((now - 1, "m8", "bob", "live while joining"))  # stored, and relayed live at the join
    live = f"@time={format_server_time(now - 1)};msgid=m8 :bob!u@fake PRIVMSG #lobby :live while joining"
    srv = scripted(history={"#lobby": lobby}, targets=[("erin", now - 3600)],
                   results=[(now - 3 * 86400, "s1", "dave", "#dev", "deploy on friday")],
                   after_join=lambda room: [live] if room == "#lobby" else [],
                   caps=ScriptedServer.CAPS + " draft/read-marker", markers={"#lobby": lobby[5][0]})
    alice = TerminalClient("--port", str(srv.port), "--nick", "alice")
    try:
        alice.wait_for("\u2014 now \u2014")
        alice.wait_for("live while joining")
        assert srv.sent("CAP REQ") == [
            "CAP REQ :batch server-time message-tags draft/chathistory soju.im/search draft/read-marker"]
        assert srv.sent("CHATHISTORY LATEST") == ["CHATHISTORY LATEST #lobby * 5"]  # ISUPPORT CHATHISTORY=5
        alice.wait_for("Recent private conversations: erin (")
        lines = alice.lines()
        at = {text: next(i for i, line in enumerate(lines) if text in line)
              for text in ("\u2014 earlier messages \u2014", "old line 4", "old line 5", NEW_LINES, "old line 6",
                           "old line 7", "\u2014 now \u2014", "live while joining")}
        assert list(at.values()) == sorted(at.values())  # the held live line comes after the history
        assert at[NEW_LINES] == at["old line 6"] - 1  # the server's read marker was at line 5
        assert alice.text().count("live while joining") == 1  # live and in history: shown once
        assert "old line 3" not in alice.text()
        assert row_colours(alice, "old line 5") == {"brightblack"}  # history is grey...
        assert row_colours(alice, "\u2014 now \u2014") == {"brightblack"}
        assert row_colours(alice, "live while joining") - {"default", "brightblack"}  # ...live lines are not

        alice.type("\x1b[5~")  # PageUp
        alice.wait_for("old line 0")
        oldest = format_server_time(lobby[4][0])
        assert srv.sent("CHATHISTORY BEFORE") == [f"CHATHISTORY BEFORE #lobby timestamp={oldest} 5"]
        alice.wait_for("\u2014 end of earlier messages \u2014")
        two_days_ago = time.strftime("%Y-%m-%d %H:%M", time.localtime(lobby[0][0]))
        assert any(line.startswith(two_days_ago) and "old line 0" in line for line in alice.lines())
        lines = alice.lines()
        first = next(i for i, line in enumerate(lines) if "old line 0" in line)
        assert lines[first - 1].endswith(day_label(lobby[0][0]))  # that block is of another day
        assert row_colours(alice, "old line 2") == {"brightblack"}
        alice.type("\x1b[5~")
        alice.wait_for("\u2014 no earlier messages \u2014")
        assert len(srv.sent("CHATHISTORY BEFORE")) == 2

        alice.type("/search deploy\r")
        alice.wait_for("\u2014 end of search results \u2014")
        assert srv.sent("SEARCH") == ["SEARCH text=deploy"]
        found = time.strftime("%Y-%m-%d %H:%M", time.localtime(now - 3 * 86400))
        assert any(line.startswith(found) and "#dev <dave> deploy on friday" in line for line in alice.lines())
        alice.type("/quit\r")
        assert alice.proc.wait(10) == 0
        wait_for(lambda: srv.sent("MARKREAD"), what="the read marker sent on leaving")
        marked = parse_server_time(srv.sent("MARKREAD")[-1].split()[-1])
        assert srv.sent("MARKREAD")[-1].startswith("MARKREAD #lobby ") and marked >= lobby[-1][0] - 0.001
    finally:
        alice.close()
