"""The hub<->worker frame format, and that a plain multiprocessing Connection can speak it."""
import asyncio
import multiprocessing
import os
import pickle

import pytest

from ipc.link import FrameDecoder, LinkProtocol, encode_frame, open_link

def own_fd(connection):
    """The link takes ownership of its fd; hand it a duplicate so the Connection can close its own."""
    fd = os.dup(connection.fileno())
    connection.close()
    return fd


BATCHES = [[("cmsg", "#a", 1, b":n!u@h PRIVMSG #a :hi\r\n", "id1", 1.5)], [("quit", 7, "bye")] * 3, []]


def test_frames_decode_whole_and_byte_by_byte():
    stream = b"".join(encode_frame(b) for b in BATCHES)
    assert FrameDecoder().feed(stream) == BATCHES
    decoder = FrameDecoder()
    out = []
    for i in range(len(stream)):
        out.extend(decoder.feed(stream[i:i + 1]))
    assert out == BATCHES


def test_everything_sent_in_one_loop_iteration_leaves_as_one_frame():
    ours, theirs = multiprocessing.Pipe()

    async def main():
        protocol = await open_link(own_fd(ours), LinkProtocol(lambda items: None))
        for i in range(100):
            protocol.send(("n", i))
        await asyncio.sleep(0)  # the flush was scheduled for the next iteration
        protocol.close()

    asyncio.run(main())
    assert pickle.loads(theirs.recv_bytes()) == [("n", i) for i in range(100)]
    with pytest.raises(EOFError):  # and nothing else was sent before the link closed
        theirs.recv_bytes()


def test_a_plain_connection_can_talk_to_a_link():
    ours, theirs = multiprocessing.Pipe()
    received = []

    async def main():
        done = asyncio.get_running_loop().create_future()

        def on_items(items):
            received.extend(items)
            if len(received) == 3:
                done.set_result(None)

        await open_link(own_fd(ours), LinkProtocol(on_items))
        theirs.send_bytes(pickle.dumps([("a", 1), ("b", 2)]))
        theirs.send_bytes(pickle.dumps([("c", 3)]))
        await asyncio.wait_for(done, 5)

    asyncio.run(main())
    assert received == [("a", 1), ("b", 2), ("c", 3)]
