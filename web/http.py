"""The HTTP listener's connections: h11 (sans-I/O) in, routes, responses out; the WebSocket upgrade.

Theory of operation
-------------------
Every accepted connection on the web port gets an `HttpConnection`, the protocol of its raw
transport (a `SocketStream`, or asyncio's SSL transport for https). It feeds what arrives to
an h11 server connection and answers each request as soon as its head is complete:

- `GET /` (and `HEAD`): the bundled web client, `client/web/index.html`; other paths are static
  files from `client/web/` (`static_file`: no `..`, no dot files, no directories, nothing
  outside the folder). Every answer has a Content-Security-Policy and Cache-Control: `no-cache`
  with an ETag for the files (the modules carry no hash in their names, so a browser must ask
  again, and a 304 makes that cheap); `no-store` for the rest.
- `GET /metrics` and `GET /healthz`: web/metrics.py, from the shared rows.
- A WebSocket upgrade on `/` (`websocket_answer`): the origin is checked (`origin_allowed`), a
  subprotocol is chosen in the client's order (web/websocket.py), and the 101 goes out. From
  then on this object only hands the bytes to the `WebSocketTransport`, which is the session's
  transport.

No input can hold resources without bound: the head is at most `MAX_HEAD` bytes (h11 answers
431 past it) and `MAX_HEADERS` lines; a request with a body is refused (413) and the connection
closed; a connection that does not finish a head within `web.request_timeout` seconds, or stays
idle that long between requests, is closed by the sweep (`WebServer.sweep`, once a second); one
that does not read its answers (more than `MAX_BUFFERED` bytes waiting) is cut.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote_to_bytes, urlsplit

import h11
from wsproto.utilities import generate_accept_token

from web import metrics
from web.websocket import WebSocketTransport, negotiate, offered_subprotocols

log = logging.getLogger("hubchat.web")

STATIC_ROOT = Path(__file__).resolve().parents[1] / "client" / "web"
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_HEADERS = 64
MAX_BUFFERED = 1 << 20  # bytes of answers a client may leave unread before it is cut
MAX_FILE = 8 << 20  # bytes: a larger file is not served (the client's files are far smaller)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
COMMON = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
          (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"), (b"server", b"hubchat")]
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".mjs": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".json": "application/json", ".webmanifest": "application/manifest+json", ".svg": "image/svg+xml",
         ".png": "image/png", ".ico": "image/x-icon", ".txt": "text/plain; charset=utf-8",
         ".woff2": "font/woff2", ".map": "application/json"}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    cache: str = "no-store"
    extra: tuple[tuple[bytes, bytes], ...] = ()

    def headers(self, head_only_length: int | None = None) -> list[tuple[bytes, bytes]]:
        length = len(self.body) if head_only_length is None else head_only_length
        return [(b"content-type", self.content_type.encode()), (b"content-length", str(length).encode()),
                (b"cache-control", self.cache.encode()), *COMMON, *self.extra]


def plain(status: int, text: str, *extra: tuple[bytes, bytes]) -> Response:
    return Response(status, (text + "\n").encode(), extra=extra)


def static_file(root: Path, path: str) -> Path | None:
    """The file under `root` that a decoded URL path names, or None for anything else."""
    if "\x00" in path or "\\" in path:
        return None
    parts = path.lstrip("/").split("/")
    if any(not part or part.startswith(".") for part in parts):  # "..", dot files, "a//b", a directory
        return None
    root = root.resolve()
    candidate = root.joinpath(*parts).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    return candidate


def serve_file(path: Path, if_none_match: bytes | None) -> Response:
    stat = path.stat()
    if stat.st_size > MAX_FILE:
        return plain(404, "not found")
    etag = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'.encode()
    kind = TYPES.get(path.suffix, "application/octet-stream")
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(b",")]:
        return Response(304, b"", kind, "no-cache", ((b"etag", etag),))
    return Response(200, path.read_bytes(), kind, "no-cache", ((b"etag", etag),))


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def origin_allowed(origin: str | None, host: str | None, scheme: str, allowed: str) -> bool:
    """Whether a page from `origin` may open a WebSocket here. No Origin: not a browser, which
    could send any Origin it liked anyway. The page's own origin always may; loopback origins
    only when no list is configured; `*` allows every origin."""
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    listed = {o.lower().rstrip("/") for o in allowed.replace(",", " ").split()}
    if "*" in listed or origin in listed:
        return True
    if host and origin == f"{scheme}://{host.strip().lower()}":
        return True
    if listed or origin == "null":
        return False
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and _is_loopback(parts.hostname)


def header_values(headers: list[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in headers if key == name]


def _tokens(headers: list[tuple[bytes, bytes]], name: bytes) -> set[str]:
    return {t.strip().lower() for v in header_values(headers, name) for t in v.split(",")}


def websocket_answer(headers: list[tuple[bytes, bytes]], scheme: str,
                     allowed: str) -> tuple[Response | None, list[tuple[bytes, bytes]], str | None]:
    """For an upgrade request on `/`: (a refusal, [], None), or (None, the 101's headers, the subprotocol)."""
    if "upgrade" not in _tokens(headers, b"connection"):
        return plain(400, "a WebSocket upgrade needs Connection: Upgrade"), [], None
    if header_values(headers, b"sec-websocket-version") != ["13"]:
        return plain(426, "WebSocket version 13 only", (b"sec-websocket-version", b"13")), [], None
    keys = header_values(headers, b"sec-websocket-key")
    if len(keys) != 1 or len(keys[0].strip()) != 24:
        return plain(400, "a WebSocket upgrade needs one Sec-WebSocket-Key"), [], None
    origins = header_values(headers, b"origin")
    hosts = header_values(headers, b"host")
    if not origin_allowed(origins[0] if origins else None, hosts[0] if hosts else None, scheme, allowed):
        log.info("refused a WebSocket from origin %s", origins[0][:100])
        return plain(403, "this origin may not open a WebSocket here (web.allowed_origins)"), [], None
    chosen = negotiate(offered_subprotocols(header_values(headers, b"sec-websocket-protocol")))
    reply = [(b"upgrade", b"websocket"), (b"connection", b"Upgrade"),
             (b"sec-websocket-accept", generate_accept_token(keys[0].strip().encode()))]
    if chosen:
        reply.append((b"sec-websocket-protocol", chosen.encode()))
    return None, reply, chosen


class HttpConnection(asyncio.Protocol):
    """The protocol of one web connection: HTTP/1.1 until a WebSocket upgrade, then its frames."""

    def __init__(self, server: "WebServer", host: str, on_closed: Callable[[bool], None]) -> None:
        self.server = server
        self.host = host  # the peer's address
        self.on_closed = on_closed  # called once when the connection is gone (True: it had become a session)
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self.raw: Any = None
        self.websocket: WebSocketTransport | None = None
        self.upgrade: tuple[list, str | None] | None = None  # an accepted upgrade waiting for its 101
        self.deadline = 0.0
        self.done = False

    def connection_made(self, transport: Any) -> None:
        self.raw = transport
        self.deadline = time.monotonic() + self.server.config().request_timeout
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.websocket is not None:
            self.websocket.data_received(data)
            return
        if self.done:
            return
        self.h11.receive_data(data)
        self._events()

    def eof_received(self) -> bool:
        if self.websocket is None and not self.done:
            self.h11.receive_data(b"")
            self._events()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.done = True
        if self.websocket is not None:
            self.websocket.connection_lost(exc)
        self.on_closed(self.websocket is not None)

    # --- HTTP ------------------------------------------------------------------------------
    def _events(self) -> None:
        conn = self.h11
        while not self.done:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                self._refuse(plain(exc.error_status_hint, "bad request"))
                return
            if event is h11.NEED_DATA:
                return
            if event is h11.PAUSED:
                if conn.their_state is h11.MIGHT_SWITCH_PROTOCOL and self.upgrade is not None:
                    self._switch()
                    return
                if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                    conn.start_next_cycle()
                    self.deadline = time.monotonic() + self.server.config().request_timeout
                    continue
                return
            if isinstance(event, h11.Request):
                self._request(event)
            elif isinstance(event, h11.ConnectionClosed):
                self._finish()
                return
            elif isinstance(event, h11.EndOfMessage) and conn.our_state is h11.DONE \
                    and conn.their_state is h11.DONE:
                conn.start_next_cycle()
                self.deadline = time.monotonic() + self.server.config().request_timeout

    def _request(self, request: h11.Request) -> None:
        self.deadline = float("inf")  # the head is in: answering is up to us
        self.server.requests += 1
        headers = list(request.headers)
        # h11 bounds a head still arriving; one that arrives whole in a single read is measured here.
        if len(request.target) + sum(len(k) + len(v) + 4 for k, v in headers) > MAX_HEAD:
            self._refuse(plain(431, "the request head is too large"))
            return
        if len(headers) > MAX_HEADERS:
            self._refuse(plain(431, "too many header lines"))
            return
        if any(k == b"transfer-encoding" for k, _ in headers) or \
                any(k == b"content-length" and v.strip() != b"0" for k, v in headers):
            self._refuse(plain(413, "requests with a body are not accepted here"))
            return
        method = request.method
        if method not in (b"GET", b"HEAD"):
            self._refuse(plain(405, "GET or HEAD only", (b"allow", b"GET, HEAD")))
            return
        try:
            path = unquote_to_bytes(request.target.split(b"?", 1)[0]).decode("utf-8")
        except UnicodeDecodeError:
            self._send(plain(400, "the path is not UTF-8"), method)
            return
        if path == "/" and "websocket" in _tokens(headers, b"upgrade"):
            config = self.server.config()
            refusal, reply, chosen = websocket_answer(headers, self.server.scheme, config.allowed_origins)
            if refusal is not None:
                self._refuse(refusal)
            else:
                self.upgrade = (reply, chosen)  # the 101 goes once h11 has the whole request
            return
        self._send(self.server.route(path, headers), method)

    def _send(self, response: Response, method: bytes = b"GET") -> None:
        conn = self.h11
        head_only = method == b"HEAD"
        try:
            data = conn.send(h11.Response(status_code=response.status, headers=response.headers()))
            if response.body and not head_only and response.status != 304:
                data += conn.send(h11.Data(data=response.body))
            data += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            self._finish()
            return
        self.raw.write(data)
        if conn.our_state is h11.MUST_CLOSE:
            self._finish()
        elif self.raw.get_write_buffer_size() > MAX_BUFFERED:
            log.info("cutting an HTTP client from %s that does not read its answers", self.host)
            self.done = True
            self.raw.abort()

    def _refuse(self, response: Response) -> None:
        """Answer (if HTTP still allows it) and close: what follows a bad request cannot be trusted."""
        response.extra = (*response.extra, (b"connection", b"close"))
        if self.h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                self.raw.write(self.h11.send(h11.Response(status_code=response.status, headers=response.headers()))
                               + self.h11.send(h11.Data(data=response.body)) + self.h11.send(h11.EndOfMessage()))
            except h11.LocalProtocolError:
                pass
        self._finish()

    def _finish(self) -> None:
        self.done = True
        self.raw.close()

    def _switch(self) -> None:
        reply, chosen = self.upgrade  # type: ignore[misc]
        self.upgrade = None
        self.raw.write(self.h11.send(h11.InformationalResponse(status_code=101, headers=reply)))
        trailing, _closed = self.h11.trailing_data
        self.websocket = WebSocketTransport(self.raw, chosen, self.server.config().ping_interval)
        self.server.websockets += 1
        self.server.open_session(self.websocket, self.host, trailing)

    # --- the sweep ---------------------------------------------------------------------------
    def tick(self, now: float) -> None:
        if self.websocket is not None:
            self.websocket.tick(now)
        elif not self.done and now > self.deadline:
            log.info("closing an HTTP connection from %s: no complete request in time", self.host)
            self._finish()


class WebServer:
    """A worker's side of the HTTP listener: its open connections, the routes, the counters."""

    def __init__(self, config: Callable[[], Any], board: metrics.Board | None, tls: bool,
                 open_session: Callable[[WebSocketTransport, str, bytes], None],
                 static_root: Path = STATIC_ROOT) -> None:
        self.config = config  # the current WebSection (it changes on a reload)
        self.board = board
        self.scheme = "https" if tls else "http"
        self.open_session = open_session  # makes the session and calls WebSocketTransport.start
        self.static_root = static_root
        self.connections: set[HttpConnection] = set()
        self.requests = 0
        self.websockets = 0

    def connection(self, host: str, on_closed: Callable[[bool], None]) -> HttpConnection:
        return HttpConnection(self, host, on_closed)

    def route(self, path: str, headers: list[tuple[bytes, bytes]]) -> Response:
        if path == "/metrics":
            if self.board is None:
                return plain(404, "no metrics here")
            return Response(200, metrics.render(self.board).encode(), "text/plain; version=0.0.4; charset=utf-8")
        if path == "/healthz":
            if self.board is None:
                return plain(200, "ok")
            ok, lines = metrics.health(self.board)
            return plain(200 if ok else 503, ("ok" if ok else "unavailable") + "\n" + "\n".join(lines))
        found = static_file(self.static_root, "index.html" if path == "/" else path)
        if found is None:
            return plain(404, "not found")
        etags = [v for k, v in headers if k == b"if-none-match"]
        return serve_file(found, etags[0] if etags else None)

    def sweep(self, now: float) -> None:
        for connection in list(self.connections):
            try:
                connection.tick(now)
            except Exception:  # one broken connection must not stop the sweep for the others
                log.exception("web: a connection's timer failed; closing it")
                connection.raw.abort()

    def close_all(self) -> None:
        for connection in list(self.connections):
            if connection.websocket is None:
                connection.done = True
                connection.raw.close()
