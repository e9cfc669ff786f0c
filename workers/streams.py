"""Plain TCP client connections on one epoll set: the worker's own small reactor.

An asyncio transport costs about 1.3 KB per connection (uvloop's TCPTransport with its libuv
handle, plus the socket object and the loop's weak reference to the transport), and a worker
holds tens of thousands of mostly idle clients. So plain TCP clients live on an epoll set of
the worker's own, which the event loop watches as one descriptor; a connection then costs a
`SocketStream` (under 100 bytes) and a kernel epoll entry.

`SocketStream` has the part of the asyncio `Transport` interface that `Session` uses (write,
get_write_buffer_size, pause_reading, resume_reading, is_closing, close, abort) and calls the
protocol's `connection_made`, `data_received` and `connection_lost` as asyncio would, so TLS
connections keep their asyncio transport and the session cannot tell the two apart.

The set is level-triggered: whatever is not read or written in one callback is reported
again in the next loop iteration, so one busy client cannot starve the others.
"""
from __future__ import annotations

import asyncio
import logging
import os
import select
import socket

log = logging.getLogger(__name__)

READ_SIZE = 65536
CLOSE_LINGER = 10.0  # seconds a closed connection may take to drain its last lines before it is cut
_IN, _OUT = select.EPOLLIN, select.EPOLLOUT
_GONE = select.EPOLLHUP | select.EPOLLERR


class SocketStream:
    __slots__ = ("fd", "protocol", "streams", "pending", "pending_size", "closing", "paused", "mask")

    def __init__(self, fd: int, protocol: asyncio.Protocol, streams: "Streams") -> None:
        self.fd = fd
        self.protocol = protocol
        self.streams = streams
        self.pending: list[bytes] | None = None  # what the socket would not take yet
        self.pending_size = 0
        self.closing = False
        self.paused = False
        self.mask = _IN  # what epoll watches for on this socket

    # --- the Transport interface ---------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.closing or not data:
            return
        if self.pending is not None:  # already waiting for room: keep the order
            self.pending.append(data)
            self.pending_size += len(data)
            return
        if self._send(data) and self.pending is not None:
            self._watch()

    def get_write_buffer_size(self) -> int:
        return self.pending_size

    def pause_reading(self) -> None:
        if not self.paused:
            self.paused = True
            self._watch()

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self._watch()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        """Stop reading; finish once what is queued has been written (or CLOSE_LINGER has passed)."""
        if self.closing:
            return
        self.closing = True
        if self.pending is None:
            self._finish(None)
        else:
            self._watch()
            asyncio.get_running_loop().call_later(CLOSE_LINGER, self.abort)

    def abort(self) -> None:
        self.pending = None
        self.pending_size = 0
        self._finish(None)

    # --- readiness -----------------------------------------------------------------------
    def on_readable(self) -> None:
        try:
            data = os.read(self.fd, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._finish(exc)
            return
        if data:
            try:
                self.protocol.data_received(data)
            except Exception as exc:  # as asyncio's transports do: a broken protocol loses its connection
                log.exception("a client's input could not be handled; closing its connection")
                self.pending = None
                self._finish(exc)
        else:  # end of file: close, as asyncio does when eof_received returns false
            self.close()

    def on_writable(self) -> None:
        if self.pending is not None and not self._send(b"".join(self.pending)):
            return
        if self.pending is None and self.closing:
            self._finish(None)
        else:
            self._watch()

    def _send(self, data: bytes) -> bool:
        """Write what the socket takes now and keep the rest pending; False: the connection failed."""
        try:
            sent = os.write(self.fd, data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._finish(exc)
            return False
        if sent < len(data):
            self.pending = [data[sent:]]
            self.pending_size = len(data) - sent
        else:
            self.pending = None
            self.pending_size = 0
        return True

    def _watch(self) -> None:
        """Tell epoll what this stream waits for now."""
        mask = (0 if self.paused or self.closing else _IN) | (_OUT if self.pending is not None else 0)
        if mask != self.mask and self.fd >= 0:
            self.mask = mask
            self.streams.epoll.modify(self.fd, mask)

    def _finish(self, exc: Exception | None) -> None:
        if self.fd < 0:
            return
        self.closing = True
        self.streams.forget(self.fd)
        os.close(self.fd)
        self.fd = -1
        asyncio.get_running_loop().call_soon(self.protocol.connection_lost, exc)


class Streams:
    """The worker's epoll set of plain client sockets, watched by the event loop as one fd."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        # fd -> stream. A list: descriptors are small dense numbers, and a slot is 8 bytes where a
        # dict entry is about 50.
        self.by_fd: list[SocketStream | None] = []
        self.open_count = 0
        asyncio.get_running_loop().add_reader(self.epoll.fileno(), self._ready)

    def open(self, sock: socket.socket, protocol: asyncio.Protocol) -> SocketStream:
        """Take over an accepted socket and start the protocol on it (OSError: the connection was
        already gone, and the socket is closed)."""
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio transports do
        except OSError:
            sock.close()
            raise
        fd = sock.detach()
        stream = SocketStream(fd, protocol, self)
        if fd >= len(self.by_fd):
            self.by_fd.extend([None] * (fd + 1 - len(self.by_fd)))
        self.by_fd[fd] = stream
        self.open_count += 1
        self.epoll.register(fd, _IN)
        protocol.connection_made(stream)  # type: ignore[arg-type]
        return stream

    def forget(self, fd: int) -> None:
        if self.by_fd[fd] is not None:
            self.by_fd[fd] = None
            self.open_count -= 1
        try:
            self.epoll.unregister(fd)
        except OSError:
            pass

    def _ready(self) -> None:
        by_fd = self.by_fd
        for fd, events in self.epoll.poll(0):
            stream = by_fd[fd] if fd < len(by_fd) else None
            if stream is None:
                continue
            if events & _OUT:
                stream.on_writable()
            if events & (_IN | _GONE) and stream.fd >= 0 and not stream.closing:
                stream.on_readable()
            elif events & _GONE and stream.fd >= 0:
                stream._finish(None)  # hung up while closing or paused: nothing more will be read

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.epoll.fileno())
        self.epoll.close()
