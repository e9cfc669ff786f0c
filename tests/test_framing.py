"""LineBuffer: a byte stream to lines, fed whole and byte by byte."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ircproto.framing import LineBuffer, ReadQExceeded

STREAMS = [
    (b"NICK a\r\nUSER u 0 * :r\r\n", [b"NICK a", b"USER u 0 * :r"]),
    (b"NICK a\nUSER b\n", [b"NICK a", b"USER b"]),  # bare LF
    (b"NICK a\rUSER b\r", [b"NICK a", b"USER b"]),  # bare CR
    (b"\r\n\r\nPING x\r\n\n\n", [b"PING x"]),  # empty lines are ignored
    (b"PING x\r\nPART", [b"PING x"]),  # an unfinished line waits
]


def feed_all(chunks):
    buf = LineBuffer()
    lines = []
    for chunk in chunks:
        lines.extend(buf.feed(chunk))
    return lines


@pytest.mark.parametrize("stream,expected", STREAMS)
def test_whole(stream, expected):
    assert feed_all([stream]) == expected


@pytest.mark.parametrize("stream,expected", STREAMS)
def test_byte_by_byte(stream, expected):
    assert feed_all([stream[i:i + 1] for i in range(len(stream))]) == expected


@given(st.lists(st.binary(min_size=1, max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b), max_size=10),
       st.data())
def test_any_split_of_a_stream_gives_the_same_lines(lines, data):
    stream = b"".join(line + data.draw(st.sampled_from([b"\r\n", b"\n", b"\r"])) for line in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
    chunks = [stream[a:b] for a, b in zip([0] + cuts, cuts + [len(stream)])]
    assert feed_all(chunks) == lines


def test_bytes_without_a_line_ending_are_capped():
    buf = LineBuffer(max_pending=100)
    buf.feed(b"x" * 100)
    with pytest.raises(ReadQExceeded):
        buf.feed(b"x")


def test_a_long_complete_line_is_returned_for_the_parser_to_refuse():
    assert LineBuffer(max_pending=100).feed(b"x" * 300 + b"\n") == [b"x" * 300]
