"""The worker's epoll streams against real loopback TCP connections, under both event loops."""
from __future__ import annotations

import asyncio
import select
import socket
import struct

import pytest

from workers.streams import Streams

pytestmark = pytest.mark.timeout(30)

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is installed on Linux
    uvloop = None

LOOPS = ["asyncio"] + (["uvloop"] if uvloop else [])


class Recorder(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport = None
        self.data = bytearray()
        self.arrived = asyncio.Event()
        self.lost = asyncio.get_running_loop().create_future()
        self.lost_calls = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.arrived.set()

    def connection_lost(self, exc) -> None:
        self.lost_calls += 1
        self.lost.set_result(exc)


def run(loop_name: str, coro_fn) -> None:
    if loop_name == "uvloop":
        uvloop.run(coro_fn())
    else:
        asyncio.run(coro_fn())


async def connected_pair(streams: Streams):
    """(our stream's protocol, the peer's blocking socket) over loopback TCP."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    peer = socket.create_connection(listener.getsockname())
    accepted, _ = listener.accept()
    listener.close()
    protocol = Recorder()
    streams.open(accepted, protocol)
    return protocol, peer


async def read_exactly(peer: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    peer.setblocking(False)
    chunks, got = [], 0
    while got < n:
        chunk = await loop.sock_recv(peer, min(65536, n - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_bytes_both_ways_then_eof(loop_name):
    async def main():
        streams = Streams()
        protocol, peer = await connected_pair(streams)
        peer.sendall(b"NICK alice\r\n")
        await asyncio.wait_for(protocol.arrived.wait(), 5)
        assert bytes(protocol.data) == b"NICK alice\r\n"
        protocol.transport.write(b":server 001 alice :hi\r\n")
        assert await read_exactly(peer, 23) == b":server 001 alice :hi\r\n"
        peer.close()
        assert await asyncio.wait_for(protocol.lost, 5) is None
        assert protocol.lost_calls == 1 and streams.open_count == 0
        streams.close()
    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_peer_that_does_not_read_gets_everything_in_order_once_it_does(loop_name):
    async def main():
        streams = Streams()
        protocol, peer = await connected_pair(streams)
        blob = b"".join(b"%08d\r\n" % i for i in range(400_000))  # 4 MB: more than the socket buffers
        for start in range(0, len(blob), 100_000):
            protocol.transport.write(blob[start:start + 100_000])
        assert protocol.transport.get_write_buffer_size() > 0  # the rest waits in the stream
        assert await read_exactly(peer, len(blob)) == blob
        assert protocol.transport.get_write_buffer_size() == 0
        protocol.transport.close()
        assert await asyncio.wait_for(protocol.lost, 5) is None
        peer.close()
        streams.close()
    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_close_drains_what_is_queued_and_abort_does_not(loop_name):
    async def main():
        streams = Streams()
        draining, peer1 = await connected_pair(streams)
        cut, peer2 = await connected_pair(streams)
        blob = b"x" * 4_000_000
        for protocol in (draining, cut):
            protocol.transport.write(blob)
            assert protocol.transport.get_write_buffer_size() > 0
        draining.transport.close()
        cut.transport.abort()
        assert draining.transport.is_closing() and cut.transport.is_closing()
        assert await asyncio.wait_for(cut.lost, 5) is None
        got = await read_exactly(peer2, len(blob))
        assert len(got) < len(blob)
        assert await read_exactly(peer1, len(blob) + 1) == blob  # everything, then end of file
        assert await asyncio.wait_for(draining.lost, 5) is None
        draining.transport.write(b"after close")  # ignored, as on a closing asyncio transport
        peer1.close()
        peer2.close()
        streams.close()
    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_paused_reading_holds_input_until_resumed(loop_name):
    async def main():
        streams = Streams()
        protocol, peer = await connected_pair(streams)
        protocol.transport.pause_reading()
        peer.sendall(b"PING :1\r\n")
        fd = protocol.transport.fd
        assert select.select([fd], [], [], 5)[0] == [fd]  # the input is there to be read
        for _ in range(5):  # loop iterations that poll for readiness and find nothing to do
            await asyncio.sleep(0)
        assert protocol.data == b""
        protocol.transport.resume_reading()
        await asyncio.wait_for(protocol.arrived.wait(), 5)
        assert bytes(protocol.data) == b"PING :1\r\n"
        peer.close()
        await asyncio.wait_for(protocol.lost, 5)
        streams.close()
    run(loop_name, main)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_reset_connection_is_lost_once_with_the_error(loop_name):
    async def main():
        streams = Streams()
        protocol, peer = await connected_pair(streams)
        protocol.transport.write(b"x" * 4_000_000)  # unread data on our side, then the peer resets
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.sendall(b"QUIT\r\n")
        peer.close()
        exc = await asyncio.wait_for(protocol.lost, 5)
        assert isinstance(exc, ConnectionError), exc  # the reset, not a clean end of file
        assert protocol.lost_calls == 1 and streams.open_count == 0
        streams.close()
    run(loop_name, main)


class Broken(Recorder):
    def data_received(self, data: bytes) -> None:
        raise ValueError("a bug")


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_protocol_that_fails_loses_only_its_own_connection(loop_name, caplog):
    async def main():
        streams = Streams()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(2)
        bad_peer = socket.create_connection(listener.getsockname())
        broken = Broken()
        streams.open(listener.accept()[0], broken)
        good, good_peer = await connected_pair(streams)
        listener.close()
        bad_peer.sendall(b"PRIVMSG #a :boom\r\n")
        assert isinstance(await asyncio.wait_for(broken.lost, 5), ValueError)
        assert await read_exactly(bad_peer, 1) == b""  # closed on it, not left spinning
        good_peer.sendall(b"still here\r\n")
        await asyncio.wait_for(good.arrived.wait(), 5)
        assert bytes(good.data) == b"still here\r\n"
        bad_peer.close()
        good_peer.close()
        streams.close()
    run(loop_name, main)
    assert "could not be handled" in caplog.text
