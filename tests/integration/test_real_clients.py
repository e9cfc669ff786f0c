"""Independent IRC clients against the real server with several workers: jaraco's `irc` library
and WeeChat (weechat-headless, driven through its FIFO, read through its logs). Each registers,
joins, chats both ways and receives a private message from a user on another worker."""
import subprocess
import time

import irc.client
import psutil
import pytest

from tests.integration.harness import (Server, clients_on_distinct_workers, require_program, wait_for,
                                       worker_pid_holding)


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()


class LibraryClient(irc.client.SimpleIRCClient):
    """A bot written with jaraco's irc library, recording what it sees."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[tuple[str, str, list[str]]] = []

    def _dispatcher(self, connection, event):  # every event, in order
        self.events.append((event.type, str(event.source), [str(a) for a in event.arguments]))
        super()._dispatcher(connection, event)

    def until(self, predicate, what: str, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events:
                if predicate(event):
                    return event
            self.reactor.process_once(0.05)
        raise AssertionError(f"the irc library client never saw {what}; it saw {self.events[-10:]}")


def test_the_irc_library_registers_joins_chats_and_gets_a_private_message(server):
    bot = LibraryClient()
    bot.connect("127.0.0.1", server.port, "libbot", username="libbot", ircname="Library Bot")
    try:
        bot.until(lambda e: e[0] == "welcome", "the welcome")
        bot.connection.join("#real")
        bot.until(lambda e: e[0] == "endofnames", "the end of NAMES for #real")
        peer = peer_on_another_worker(server, bot.connection.socket.getsockname()[1], "lib_peer")
        peer.send("JOIN #real")
        bot.until(lambda e: e[0] == "join" and e[1].startswith("lib_peer!"), "lib_peer joining")
        bot.connection.privmsg("#real", "hello from the library")
        assert peer.expect("PRIVMSG", "#real").params[1] == "hello from the library"
        peer.send("PRIVMSG #real :hello library")
        peer.send("PRIVMSG libbot :just for you")
        bot.until(lambda e: e[0] == "pubmsg" and e[2] == ["hello library"], "the channel message")
        bot.until(lambda e: e[0] == "privmsg" and e[2] == ["just for you"], "the private message")
    finally:
        bot.connection.disconnect("done")


def test_weechat_registers_joins_chats_and_gets_a_private_message(server, tmp_path):
    require_program("weechat-headless", "weechat-headless")
    fifo = tmp_path / "fifo"
    logs = tmp_path / "logs"
    commands = ";".join([
        "/set logger.file.path " + str(logs), "/set logger.file.flush_delay 0",
        "/set logger.file.mask $plugin.$name.weechatlog", "/set fifo.file.path " + str(fifo),
        "/set irc.server_default.nicks weebot", "/set irc.server_default.username weebot",
        f"/server add hub 127.0.0.1/{server.port} -notls", "/set irc.server.hub.autojoin #wee",
        "/connect hub",
    ])
    wee = subprocess.Popen(["weechat-headless", "--dir", str(tmp_path / "home"), "--run-command", commands],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port = wait_for(lambda: _local_port(wee.pid, server.port), what="WeeChat's connection")
        peer = peer_on_another_worker(server, port, "wee_peer")
        peer.send("JOIN #wee")
        peer.expect("366", "wee_peer", "#wee")
        names = [m for m in peer.received if m.command == "353" and m.params[2] == "#wee"][-1].params[3]
        if "weebot" not in names.replace("@", "").split():  # not in yet: await its JOIN
            peer.expect("JOIN", "#wee", where=lambda m: m.source.startswith("weebot!"), timeout=20)
        wait_for(fifo.exists, what="WeeChat's FIFO")
        with open(fifo, "w") as pipe:
            pipe.write("irc.hub.#wee */say hello from weechat\n")
        assert peer.expect("PRIVMSG", "#wee").params[1] == "hello from weechat"
        peer.send("PRIVMSG #wee :hello weechat")
        peer.send("PRIVMSG weebot :a private word")
        channel_log = logs / "irc.hub.#wee.weechatlog"
        private_log = logs / "irc.hub.wee_peer.weechatlog"
        wait_for(lambda: channel_log.exists() and "hello weechat" in channel_log.read_text(),
                 what="the channel message in WeeChat's log")
        wait_for(lambda: private_log.exists() and "a private word" in private_log.read_text(),
                 what="the private message in WeeChat's log")
    finally:
        wee.terminate()
        try:
            wee.wait(10)
        except subprocess.TimeoutExpired:
            wee.kill()


def _local_port(pid: int, server_port: int) -> int | None:
    for conn in psutil.Process(pid).net_connections(kind="tcp"):
        if conn.raddr and conn.raddr.port == server_port and conn.status == psutil.CONN_ESTABLISHED:
            return conn.laddr.port
    return None


def peer_on_another_worker(server, client_port: int, nick: str):
    """A registered test client on a different worker from the connection at client_port."""
    theirs = worker_pid_holding(server, client_port)
    for client in clients_on_distinct_workers(server, 2):
        if client.worker_pid != theirs:
            client.register(nick)
            return client
    raise AssertionError("no second worker")
