"""The HTTP and WebSocket layer without sockets: bytes in, bytes and events out (web/)."""
from __future__ import annotations

import os

import h11
import pytest
from prometheus_client.parser import text_string_to_metric_families
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage

from web import metrics
from web.http import MAX_HEAD, WebServer, origin_allowed, static_file
from web.websocket import BINARY, MAX_MESSAGE, TEXT, WebSocketTransport, encode_frames, negotiate, \
    offered_subprotocols


class FakeRaw:
    """What a SocketStream offers its protocol, recording what is written."""

    def __init__(self) -> None:
        self.out = b""
        self.closed = self.aborted = self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.out += data

    def get_write_buffer_size(self) -> int:
        return 0

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = self.aborted = True


class Lines:
    """A session's side: the bytes the transport hands it."""

    def __init__(self) -> None:
        self.data = b""
        self.transport = None
        self.lost = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data

    def connection_lost(self, exc) -> None:
        self.lost = True


# --- subprotocols -----------------------------------------------------------------------------
@pytest.mark.parametrize("offered,chosen", [
    ([TEXT, BINARY], TEXT), ([BINARY, TEXT], BINARY), ([BINARY], BINARY), ([TEXT], TEXT), ([], None),
    (["irc", BINARY], BINARY), (["chat", "irc"], None)])
def test_the_clients_order_of_preference_decides(offered, chosen):
    assert negotiate(offered) == chosen


def test_offers_over_several_header_lines_keep_their_order():
    assert offered_subprotocols(["binary.ircv3.net, x", " text.ircv3.net"]) == [BINARY, "x", TEXT]


# --- frames out, and in --------------------------------------------------------------------------
def client_events(data: bytes) -> list:
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(data)
    return list(client.events())


def test_our_frames_are_what_a_websocket_client_reads():
    lines = [b"", b"short", b"x" * 125, b"y" * 126, b"z" * 70000]
    got = client_events(encode_frames(lines, 0x2))
    assert [bytes(e.data) for e in got] == lines and all(isinstance(e, BytesMessage) for e in got)


def transport(subprotocol=TEXT, interval=30.0):
    raw, lines = FakeRaw(), Lines()
    ws = WebSocketTransport(raw, subprotocol, interval)
    ws.start(lines, b"")
    return ws, raw, lines


def masked(data: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A client frame as a browser sends it (masked), whatever its payload."""
    mask = os.urandom(4)
    n = len(data)
    head = bytes((0x80 * fin | opcode,)) + (bytes((0x80 | n,)) if n < 126 else
                                            bytes((0x80 | 126,)) + n.to_bytes(2, "big") if n < 65536 else
                                            bytes((0x80 | 127,)) + n.to_bytes(8, "big"))
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data))


def test_each_message_is_one_line_for_the_session_whole_or_byte_by_byte():
    stream = masked(b"NICK alice") + masked(b"USER a 0 * :A\r\n", 0x2) + masked(b"PRIV", fin=False) + \
        masked(b"MSG #a :hi", 0x0)
    for chunks in ([stream], [stream[i:i + 1] for i in range(len(stream))]):
        ws, raw, lines = transport()
        for chunk in chunks:
            ws.data_received(chunk)
        assert lines.data == b"NICK alice\r\nUSER a 0 * :A\r\nPRIVMSG #a :hi\r\n"
        assert raw.out == b"" and not raw.closed


def test_the_sessions_lines_go_out_one_frame_each_without_crlf():
    ws, raw, _ = transport(TEXT)
    ws.write(b":s 001 a :hi\r\n:s 002 a :h\xc3\xa9\r\n")
    assert [(type(e), e.data) for e in client_events(raw.out)] == [(TextMessage, ":s 001 a :hi"),
                                                                   (TextMessage, ":s 002 a :hé")]
    ws, raw, _ = transport(BINARY)
    ws.write(b":s NOTICE a :\xff\r\n")
    assert [bytes(e.data) for e in client_events(raw.out)] == [b":s NOTICE a :\xff"]


def test_a_text_frame_never_carries_invalid_utf8():
    ws, raw, _ = transport(None)  # none negotiated: text
    ws.write(b":s NOTICE a :\xff ok\r\n")
    assert [e.data for e in client_events(raw.out)] == [":s NOTICE a :\ufffd ok"]


def close_code(raw: FakeRaw) -> int:
    events = client_events(raw.out)
    closes = [e for e in events if isinstance(e, CloseConnection)]
    assert closes and raw.closed, events
    return closes[0].code


def test_invalid_utf8_in_a_text_frame_closes_with_1007():
    ws, raw, lines = transport()
    ws.data_received(masked(b"PRIVMSG #a :\xff\xfe"))
    assert close_code(raw) == 1007 and lines.data == b""


def test_a_message_longer_than_any_line_closes_with_1009_before_it_is_all_in():
    ws, raw, lines = transport()
    frame = masked(b"x" * (1 << 20), 0x2)
    ws.data_received(frame[:MAX_MESSAGE + 100])
    assert close_code(raw) == 1009 and lines.data == b""
    ws, raw, lines = transport()  # in fragments too
    for i in range(3):
        ws.data_received(masked(b"y" * 4000, 0x0 if i else 0x2, fin=False))
    assert close_code(raw) == 1009


def test_pings_are_answered_and_idle_clients_pinged_then_dropped():
    ws, raw, _ = transport(interval=10)
    client = Connection(ConnectionType.CLIENT)
    ws.data_received(client.send(Ping(b"are you there")))
    assert [type(e) for e in client_events(raw.out)] == [Pong]
    raw.out = b""
    start = ws.last_seen
    ws.tick(start + 5)
    assert raw.out == b""
    ws.tick(start + 11)
    assert [e.payload for e in client_events(raw.out)] == [b"hubchat"]
    ws.tick(start + 20)
    assert not raw.closed
    ws.tick(start + 22)
    assert close_code(raw) == 1001


def test_a_client_close_is_answered_and_the_session_hears_of_it():
    ws, raw, lines = transport()
    ws.data_received(Connection(ConnectionType.CLIENT).send(CloseConnection(1000)))
    assert close_code(raw) == 1000
    ws.connection_lost(None)
    ws.connection_lost(None)
    assert lines.lost


def test_closing_sends_one_close_frame():
    ws, raw, _ = transport()
    ws.write(b"ERROR :bye\r\n")
    ws.close()
    ws.close()
    events = client_events(raw.out)
    assert [type(e) for e in events] == [TextMessage, CloseConnection] and raw.closed


# --- HTTP ---------------------------------------------------------------------------------------
def http_server(tmp_path, **web):
    settings = {"request_timeout": 10, "ping_interval": 30, "allowed_origins": "", **web}
    config = type("Web", (), settings)
    (tmp_path / "index.html").write_text("<p>hello</p>")
    (tmp_path / "app.js").write_text("export {}")
    (tmp_path / ".secret").write_text("no")
    opened = []
    server = WebServer(lambda: config, None, False,
                       lambda ws, host, trailing: (opened.append(ws), ws.start(Lines(), trailing)),
                       static_root=tmp_path)
    return server, opened


def connect(server):
    raw = FakeRaw()
    closed = []
    conn = server.connection("127.0.0.1", closed.append)
    conn.connection_made(raw)
    return conn, raw


def responses(data: bytes, method: bytes = b"GET") -> list[tuple[int, dict, bytes]]:
    client = h11.Connection(h11.CLIENT)
    found = []
    while True:
        client.send(h11.Request(method=method, target="/", headers=[("host", "x")]))
        client.send(h11.EndOfMessage())
        if data:
            client.receive_data(data)  # all of it, once (an empty one would say end of file)
            data = b""
        event = client.next_event()
        if event is h11.NEED_DATA:
            return found
        body = b""
        while not isinstance(next_event := client.next_event(), h11.EndOfMessage):
            body += next_event.data
        found.append((event.status_code, {k.decode(): v.decode() for k, v in event.headers}, body))
        if client.our_state is h11.MUST_CLOSE or client.their_state is not h11.DONE:
            return found
        client.start_next_cycle()


def get(path: str, *headers: str) -> bytes:
    return (f"GET {path} HTTP/1.1\r\nHost: x\r\n" + "".join(h + "\r\n" for h in headers) + "\r\n").encode()


def test_static_files_with_their_headers_whole_or_byte_by_byte(tmp_path):
    server, _ = http_server(tmp_path)
    request = get("/") + get("/app.js")
    for chunks in ([request], [request[i:i + 1] for i in range(len(request))]):
        conn, raw = connect(server)
        for chunk in chunks:
            conn.data_received(chunk)
        (status, headers, body), (js_status, js_headers, js) = responses(raw.out)
        assert (status, body, js_status, js) == (200, b"<p>hello</p>", 200, b"export {}")
        assert headers["content-type"].startswith("text/html") and js_headers["content-type"].startswith(
            "text/javascript")
        assert "default-src 'self'" in headers["content-security-policy"]
        assert headers["cache-control"] == "no-cache" and headers["etag"]
        assert not raw.closed


def test_an_unchanged_file_is_a_304(tmp_path):
    server, _ = http_server(tmp_path)
    conn, raw = connect(server)
    conn.data_received(get("/"))
    etag = responses(raw.out)[0][1]["etag"]
    raw.out = b""
    conn.data_received(get("/", f"If-None-Match: {etag}"))
    assert responses(raw.out)[0][0] == 304


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/%2e%2e/pyproject.toml", "/..%2fpyproject.toml",
                                  "/.secret", "/a//b", "/%00", "/nope.js", "/..\\x", "/index.html/"])
def test_nothing_outside_the_folder_nor_hidden_is_served(tmp_path, path):
    server, _ = http_server(tmp_path)
    conn, raw = connect(server)
    conn.data_received(get(path))
    assert responses(raw.out)[0][0] == 404
    assert static_file(tmp_path, "index.html") is not None


@pytest.mark.parametrize("request_bytes,status", [
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 413),
    (b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 413),
    (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(100)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"y" * MAX_HEAD + b"\r\n\r\n", 431),
    (b"NONSENSE\r\n\r\n", 400),
])
def test_requests_we_do_not_take_are_refused_and_the_connection_closed(tmp_path, request_bytes, status):
    server, _ = http_server(tmp_path)
    conn, raw = connect(server)
    conn.data_received(request_bytes)
    assert raw.out.startswith(b"HTTP/1.1 %d " % status) and raw.closed


def test_a_head_that_never_ends_is_closed_after_the_timeout(tmp_path):
    server, _ = http_server(tmp_path, request_timeout=5)
    conn, raw = connect(server)
    conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")
    server.sweep(conn.deadline - 1)
    assert not raw.closed
    server.sweep(conn.deadline + 0.1)
    assert raw.closed and raw.out == b""


def upgrade(*headers: str) -> bytes:
    return get("/", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", *headers)


@pytest.mark.parametrize("offer,chosen", [("binary.ircv3.net, text.ircv3.net", b"binary.ircv3.net"),
                                          ("text.ircv3.net, binary.ircv3.net", b"text.ircv3.net"),
                                          (None, None)])
def test_the_upgrade_answers_with_the_clients_first_choice(tmp_path, offer, chosen):
    server, opened = http_server(tmp_path)
    conn, raw = connect(server)
    conn.data_received(upgrade(*([f"Sec-WebSocket-Protocol: {offer}"] if offer else [])) + masked(b"NICK a"))
    head, _, frames = raw.out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101 ")
    assert b"sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455's own example
    assert (b"sec-websocket-protocol: " + chosen in head.lower()) if chosen else b"protocol" not in head.lower()
    assert opened and opened[0].protocol.data == b"NICK a\r\n"  # what came right after the upgrade


@pytest.mark.parametrize("origin,host,allowed,ok", [
    (None, "x", "", True),
    ("http://127.0.0.1:8080", "127.0.0.1:8080", "", True),
    ("http://localhost:3000", "chat.example.org", "", True),
    ("https://chat.example.org", "chat.example.org", "", False),  # scheme differs from this listener's
    ("http://chat.example.org", "chat.example.org", "", True),
    ("http://evil.example", "127.0.0.1:8080", "", False),
    ("null", "127.0.0.1:8080", "", False),
    ("http://localhost:3000", "x", "https://chat.example.org", False),
    ("https://chat.example.org", "x", "https://chat.example.org, https://other.org", True),
    ("http://evil.example", "x", "*", True),
])
def test_origins(origin, host, allowed, ok):
    assert origin_allowed(origin, host, "http", allowed) is ok


def test_a_refused_origin_gets_403(tmp_path):
    server, opened = http_server(tmp_path)
    conn, raw = connect(server)
    conn.data_received(upgrade("Origin: http://evil.example"))
    assert raw.out.startswith(b"HTTP/1.1 403 ") and not opened


# --- metrics ---------------------------------------------------------------------------------------
def test_metrics_parse_add_up_over_processes_and_survive_a_restart():
    board = metrics.Board(2)
    for slot in (0, 1, board.hub, board.supervisor):
        board.row(slot).put("pid", 100 + slot)
        board.row(slot).put("up", 1)
    board.row(0).put("linked", 1)
    board.row(1).put("linked", 1)
    board.row(0).put("deliveries", 7)
    board.row(1).put("deliveries", 5)
    board.row(1).put("conn_websocket", 3)
    board.retire(1)  # worker 1 died: its counters stay in the totals, its gauges go
    families = {f.name: f for f in text_string_to_metric_families(metrics.render(board))}
    assert families["hubchat_deliveries"].samples[0].value == 12
    assert {s.labels["transport"]: s.value for s in families["hubchat_connections"].samples}["websocket"] == 0
    assert families["hubchat_healthy"].samples[0].value == 0  # worker 1 is down
    ok, lines = metrics.health(board)
    assert not ok and lines == ["hub: up", "worker 0: linked", "worker 1: down"]
