"""The HTTP listener of a real server: the page, IRC over WebSocket from independent clients
(websockets, and wsproto over a raw socket for frames no polite client sends), /metrics and
/healthz, over real loopback sockets."""
from __future__ import annotations

import http.client
import os
import signal
import socket
import ssl
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, Request, TextMessage

from tests.integration.harness import TIMEOUT, Server, client_on_worker, stopped, wait_for, worker_pid_holding
from tests.integration.test_tls import make_certificate
from tests.test_web import masked


@pytest.fixture(scope="module")
def web():
    srv = Server(2)
    yield srv
    srv.stop()


def ws_url(srv: Server) -> str:
    return f"ws://127.0.0.1:{srv.web_port}/"


def fetch(srv: Server, path: str, method: str = "GET", headers: dict | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", srv.web_port, timeout=TIMEOUT)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def recv_until(ws, text: str) -> list:
    """Messages up to and including the first that contains `text`."""
    got = []
    deadline = time.monotonic() + TIMEOUT
    while True:
        message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        got.append(message)
        if text in (message if isinstance(message, str) else message.decode(errors="replace")):
            return got


def register(ws, nick: str) -> None:
    ws.send(f"NICK {nick}")
    ws.send(f"USER {nick} 0 * :{nick} on the web")
    recv_until(ws, " 376 ")


class RawWebSocket:
    """A WebSocket client over a plain socket (wsproto), which can also send broken frames."""

    def __init__(self, port: int, subprotocols=(), origin: str | None = None, tls: ssl.SSLContext | None = None,
                 rcvbuf: int = 0):
        sock = socket.socket()
        if rcvbuf:  # before connecting, so the TCP window really is small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(TIMEOUT)
        sock.connect(("127.0.0.1", port))
        self.sock = tls.wrap_socket(sock, server_hostname="127.0.0.1") if tls else sock
        self.ws = WSConnection(ConnectionType.CLIENT)
        extra = [(b"origin", origin.encode())] if origin else []
        self.sock.sendall(self.ws.send(Request(host=f"127.0.0.1:{port}", target="/",
                                               subprotocols=list(subprotocols), extra_headers=extra)))
        self.pending: list = []
        self.handshake = self.next_event()

    def next_event(self, timeout: float = TIMEOUT):
        deadline = time.monotonic() + timeout
        while not self.pending:
            for event in self.ws.events():
                self.pending.append(event)
            if self.pending:
                break
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
        return self.pending.pop(0)

    def send_line(self, line: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=line)))

    def close_code(self) -> int:
        """Read until the server's close frame; its code."""
        while not isinstance(event := self.next_event(), CloseConnection):
            pass
        return event.code


@pytest.mark.parametrize("offer,chosen,frames", [
    (["text.ircv3.net", "binary.ircv3.net"], "text.ircv3.net", str),
    (["binary.ircv3.net", "text.ircv3.net"], "binary.ircv3.net", bytes),
    (["binary.ircv3.net"], "binary.ircv3.net", bytes),
    (None, None, str),
    (["chat"], None, str),
])
def test_subprotocol_negotiation_follows_the_clients_order(web, offer, chosen, frames):
    with connect(ws_url(web), subprotocols=offer, open_timeout=TIMEOUT) as ws:
        assert ws.subprotocol == chosen
        ws.send("PING :hello")
        reply = ws.recv(timeout=TIMEOUT)
        assert isinstance(reply, frames)
        assert (reply if frames is str else reply.decode()) == ":hubchat.local PONG hubchat.local hello"


def test_text_and_binary_frames_both_work_one_line_each(web):
    with connect(ws_url(web), subprotocols=["binary.ircv3.net"], open_timeout=TIMEOUT) as ws:
        ws.send(b"NICK binuser")  # binary in
        ws.send("USER b 0 * :b")  # text in, too: the spec allows either
        lines = recv_until(ws, " 376 ")
        assert all(isinstance(m, bytes) and not m.endswith(b"\n") for m in lines)
        ws.send(b"PRIVMSG binuser :\xc3\xa9t\xc3\xa9\r\n")  # a trailing CRLF is tolerated
        echo = recv_until(ws, "PRIVMSG binuser")[-1]
        assert echo.endswith(" été".encode())
        ws.send(b"PRIVMSG binuser :\xff")  # bytes that are not UTF-8: refused by the session, not the frame
        assert b"INVALID_UTF8" in recv_until(ws, "INVALID_UTF8")[-1]


def test_invalid_utf8_in_a_text_frame_closes_with_1007(web):
    raw = RawWebSocket(web.web_port, ["text.ircv3.net"])
    assert isinstance(raw.handshake, AcceptConnection)
    raw.sock.sendall(masked(b"NICK \xff\xfe"))
    assert raw.close_code() == 1007


def test_an_over_long_frame_closes_with_1009(web):
    raw = RawWebSocket(web.web_port, ["binary.ircv3.net"])
    raw.sock.sendall(masked(b"PRIVMSG x :" + b"y" * 20000, 0x2))
    assert raw.close_code() == 1009
    with connect(ws_url(web), open_timeout=TIMEOUT) as ws:  # a long line that fits a frame: IRC's own answer
        ws.send("PING " + "z" * 600)
        assert " 417 " in recv_until(ws, " 417 ")[-1]


def test_a_websocket_user_and_a_tcp_user_on_different_workers_talk_both_ways(web):
    with connect(ws_url(web), subprotocols=["text.ircv3.net"], open_timeout=TIMEOUT) as ws:
        ws_worker = worker_pid_holding(web, ws.socket.getsockname()[1])
        other, = set(web.current_workers()) - {ws_worker}
        tcp = client_on_worker(web, other)
        assert tcp.worker_pid != ws_worker
        register(ws, "webby")
        tcp.register("tcpy")
        ws.send("JOIN #mixed")
        recv_until(ws, " 366 ")
        tcp.send("JOIN #mixed")
        tcp.expect("366")
        recv_until(ws, "tcpy!")
        tcp.send("PRIVMSG #mixed :from tcp to the web")
        assert recv_until(ws, "from tcp")[-1].endswith("PRIVMSG #mixed :from tcp to the web")
        ws.send("PRIVMSG #mixed :from the web to tcp")
        assert tcp.expect("PRIVMSG").params == ["#mixed", "from the web to tcp"]
        ws.send("PRIVMSG tcpy :privately")
        assert tcp.expect("PRIVMSG").params == ["tcpy", "privately"]
        tcp.send("WHOIS webby")
        assert tcp.expect("311").params[1:4] == ["webby", "~webby", "127.0.0.1"]  # its real peer address
        tcp.close()


def test_the_page_is_served_with_a_csp_and_cache_headers(web):
    status, headers, body = fetch(web, "/")
    assert status == 200 and b"<html" in body.lower()
    assert headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "connect-src 'self' ws: wss:" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-cache" and headers["x-content-type-options"] == "nosniff"
    assert fetch(web, "/", headers={"If-None-Match": headers["etag"]})[0] == 304
    head_status, head_headers, head_body = fetch(web, "/", "HEAD")
    assert (head_status, head_body, head_headers["content-length"]) == (200, b"", str(len(body)))


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2fpyproject.toml",
                                  "/%2e%2e%2f%2e%2e%2fetc/passwd", "/../../../../etc/passwd"])
def test_path_traversal_is_refused(web, path):
    sock = socket.create_connection(("127.0.0.1", web.web_port), timeout=TIMEOUT)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    assert answer.startswith(b"HTTP/1.1 404 ") and b"[project]" not in answer and b"root:" not in answer


def test_a_foreign_origin_is_refused_and_the_pages_own_accepted(web):
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(web), origin="http://evil.example", open_timeout=TIMEOUT)
    assert refused.value.response.status_code == 403
    with connect(ws_url(web), origin=f"http://127.0.0.1:{web.web_port}", open_timeout=TIMEOUT) as ws:
        ws.send("PING :ok")
        assert "PONG" in ws.recv(timeout=TIMEOUT)


def metric_values(srv: Server) -> dict:
    status, headers, body = fetch(srv, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def write_jobs(values: dict) -> float:
    """The store's writing jobs, wherever they ran."""
    return sum(values[("hubchat_history_write_jobs_total", (("priority", p),))] for p in ("idle", "low", "normal"))


def test_metrics_parse_and_move_when_traffic_flows(web):
    before = metric_values(web)
    with connect(ws_url(web), open_timeout=TIMEOUT) as ws:
        register(ws, "counted")
        listener = web.connect()
        listener.register("listener")
        ws.send("PRIVMSG listener :one")
        ws.send("PRIVMSG listener :two")
        listener.expect("PRIVMSG", "listener", "two")

        def moved():
            now = metric_values(web)
            grew = all(now[(name, ())] >= before[(name, ())] + n for name, n in (
                ("hubchat_registrations_total", 2), ("hubchat_messages_in_total", 2),
                ("hubchat_deliveries_total", 2), ("hubchat_commands_in_total", 4)))
            return (grew and now[("hubchat_connections", (("transport", "websocket"),))] >= 1
                    and write_jobs(now) > write_jobs(before) and now)  # the store committed the two
        now = wait_for(moved, what="the counters to move (published once a second)")
        listener.close()
    roles = {dict(labels).get("role") for name, labels in now if name == "hubchat_process_resident_memory_bytes"}
    assert roles == {"supervisor", "hub", "store", "worker"}
    assert now[("hubchat_process_resident_memory_bytes", (("role", "hub"),))] > 1e6
    assert ("hubchat_history_unfinished_items", ()) in now and ("hubchat_hub_queue_bytes", ()) in now
    assert now[("hubchat_restarts_total", (("role", "hub"),))] == 0
    assert ("hubchat_history_writer_stuck_total", ()) in now
    assert now[("hubchat_healthy", ())] == 1


def test_healthz_is_503_while_the_hub_is_being_restarted():
    srv = Server(2)
    try:
        wait_for(lambda: fetch(srv, "/healthz")[0] == 200, what="a healthy server")
        old_hub = srv.current_hub()
        # Frozen, the supervisor cannot start the next hub yet: "being restarted" lasts until it thaws.
        with stopped(srv.pid):
            os.kill(old_hub, signal.SIGKILL)
            status, _, body = wait_for(lambda: (answer := fetch(srv, "/healthz"))[0] == 503 and answer,
                                       what="/healthz to say 503")
            assert b"hub: down" in body or b"not linked" in body
        wait_for(lambda: fetch(srv, "/healthz")[0] == 200, what="/healthz back to 200")
        restarts = metric_values(srv)[("hubchat_restarts_total", (("role", "hub"),))]
        assert restarts == 1
    finally:
        srv.stop()


def test_slow_heads_bodies_and_silent_websockets_are_cut():
    srv = Server(1, env={"HUBCHAT_WEB_REQUEST_TIMEOUT": "1", "HUBCHAT_WEB_PING_INTERVAL": "1"})
    try:
        slow = socket.create_connection(("127.0.0.1", srv.web_port), timeout=TIMEOUT)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the end of the head
        started = time.monotonic()
        assert slow.recv(100) == b""
        assert 0.9 < time.monotonic() - started < 5
        body = socket.create_connection(("127.0.0.1", srv.web_port), timeout=TIMEOUT)
        body.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 65536)
        assert body.recv(100).startswith(b"HTTP/1.1 413 ")
        raw = RawWebSocket(srv.web_port)
        assert isinstance(raw.next_event(timeout=5), Ping)  # the server asks; nobody answers
        assert raw.close_code() == 1001
        answering = RawWebSocket(srv.web_port)  # one that answers stays
        for _ in range(3):
            ping = raw_ping = answering.next_event(timeout=5)
            assert isinstance(ping, Ping)
            answering.sock.sendall(answering.ws.send(raw_ping.response()))
        answering.send_line("PING :still here")
        assert isinstance(answering.next_event(), TextMessage)
    finally:
        srv.stop()


def test_https_and_wss_with_the_servers_certificate(tmp_path):
    cert, key = make_certificate(tmp_path, "web")
    srv = Server(1, "--tls-port", "0", "--tls-cert", str(cert), "--tls-key", str(key))
    try:
        assert srv.web_scheme == "https"
        context = ssl.create_default_context(cafile=str(cert))
        conn = http.client.HTTPSConnection("127.0.0.1", srv.web_port, context=context, timeout=TIMEOUT)
        conn.request("GET", "/healthz")
        assert conn.getresponse().status in (200, 503)
        conn.close()
        with connect(f"wss://127.0.0.1:{srv.web_port}/", ssl=context, open_timeout=TIMEOUT) as ws:
            ws.send("PING :secure")
            assert ws.recv(timeout=TIMEOUT).endswith(" secure")
        plain = socket.create_connection(("127.0.0.1", srv.web_port), timeout=TIMEOUT)
        plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port gets no page
        assert b"<html" not in plain.recv(65536)
        plain.close()
    finally:
        srv.stop()


def test_no_web_means_no_http_listener():
    srv = Server(1, "--no-web")
    try:
        assert srv.web_port is None
        srv.connect().register("plainonly")
    finally:
        srv.stop()


def test_a_websocket_client_that_does_not_read_is_dropped_at_its_sendq():
    srv = Server(1, env={"HUBCHAT_LIMITS_SENDQ": "65536"})
    try:
        raw = RawWebSocket(srv.web_port, rcvbuf=4096)
        for line in ("NICK sleepy", "USER s 0 * :s", "JOIN #flood"):
            raw.send_line(line)
        while not (isinstance(event := raw.next_event(), TextMessage) and " 366 " in event.data):
            pass
        talker = srv.connect()
        talker.register("talker")
        talker.send("JOIN #flood")
        talker.expect("366")
        text = "z" * 440
        # The kernel's loopback buffers absorb a few MB first (as in test_limits): keep talking
        # until the worker gives up on the sleeper, echoing each round back to pace it.
        dropped, rounds = None, 0
        while dropped is None and rounds < 400:
            talker.send(b"".join(f"PRIVMSG #flood :{rounds} {i} {text}\r\n".encode() for i in range(50)))
            talker.ping()
            rounds += 1
            dropped = next((m for m in talker.since("QUIT") if m.source.startswith("sleepy!")), None)
        assert dropped is not None and dropped.params == ["SendQ exceeded"]
    finally:
        srv.stop()


def test_closing_connections_never_reach_a_closed_session():
    """A browser that goes away mid-burst: its session quits once, and everyone else carries on."""
    srv = Server(1)
    try:
        watcher = srv.connect()
        watcher.register("watcher")
        watcher.send("JOIN #gone")
        watcher.expect("366")
        for i in range(5):
            with connect(ws_url(srv), open_timeout=TIMEOUT) as ws:
                register(ws, f"brief{i}")
                ws.send("JOIN #gone")
                recv_until(ws, " 366 ")
            watcher.expect("QUIT", where=lambda m, i=i: m.source.startswith(f"brief{i}!"))
        with pytest.raises(ConnectionClosed):
            with connect(ws_url(srv), open_timeout=TIMEOUT) as ws:
                ws.send("QUIT :bye")
                while True:
                    ws.recv(timeout=TIMEOUT)
        watcher.sync()
    finally:
        srv.stop()


def test_rejected_handshakes_say_why(web):
    raw = RawWebSocket(web.web_port, origin="http://evil.example")
    assert isinstance(raw.handshake, RejectConnection) and raw.handshake.status_code == 403
