"""IRCv3 draft/read-marker: `MARKREAD <target> [timestamp=<time>]`. Sans-I/O: the command's
parameters in, a request (or the FAIL that refuses it) out; a stored marker out as the
parameter the server's `MARKREAD <target> <timestamp>` carries.

Theory of operation
-------------------
`MARKREAD <target>` asks for the marker, `MARKREAD <target> timestamp=YYYY-MM-DDThh:mm:ss.sssZ`
moves it (the server keeps the later of the two: a marker never goes back) and both are
answered with the marker as stored: `:<server> MARKREAD <target> timestamp=<time>`, or `*` when
there is none. A client with the capability is also sent its marker for each channel it joins,
after the JOIN and before RPL_ENDOFNAMES. Markers are private: each user's own, never shown to
another. Refusals, as the spec gives them:

    FAIL MARKREAD NEED_MORE_PARAMS :Missing parameters
    FAIL MARKREAD INVALID_PARAMS <the parameter> :Invalid parameters
    FAIL MARKREAD INTERNAL_ERROR <target> :The read timestamp could not be set

Times are integer microseconds since the epoch, as everywhere in history; a marker names a
millisecond, as the server-time it copies does.
"""
from __future__ import annotations

from ircproto.casemap import is_channel_name, is_valid_channel, is_valid_nick
from ircproto.chathistory import NAME_MAX, Fail, echo_param, format_timestamp, parse_timestamp

MARKREAD = "MARKREAD"
NEED_MORE_PARAMS = "NEED_MORE_PARAMS"
INVALID_PARAMS = "INVALID_PARAMS"
INTERNAL_ERROR = "INTERNAL_ERROR"
NO_MARKER = "*"
TIMESTAMP_PREFIX = "timestamp="


def _fail(code: str, *params: str, description: str) -> Fail:
    return Fail(MARKREAD, code, tuple(echo_param(p) for p in params) + (description,))


def internal_error(target: str) -> Fail:
    return _fail(INTERNAL_ERROR, target, description="The read timestamp could not be set")


def parse_markread(params: list[str], channellen: int = NAME_MAX, nicklen: int = NAME_MAX) -> tuple | Fail:
    """The parameters after `MARKREAD` to `(target, time_us)`, time_us None for a get, or the
    Fail that answers it. Never raises."""
    if not params:
        return _fail(NEED_MORE_PARAMS, description="Missing parameters")
    target = params[0]
    valid = is_valid_channel(target, channellen) if is_channel_name(target) else is_valid_nick(target, nicklen)
    if not valid:
        return _fail(INVALID_PARAMS, target, description="Invalid target")
    if len(params) > 2:
        return _fail(INVALID_PARAMS, params[2], description="Too many parameters")
    if len(params) == 1:
        return (target, None)
    given = params[1]
    time_us = parse_timestamp(given[len(TIMESTAMP_PREFIX):]) if given.startswith(TIMESTAMP_PREFIX) else None
    if time_us is None:  # `*` included: a client may not set "no marker"
        return _fail(INVALID_PARAMS, given, description="Invalid timestamp")
    return (target, time_us)


def marker_param(time_us: int | None) -> str:
    """The marker as MARKREAD carries it: `timestamp=<time>` to the millisecond, or `*`."""
    return NO_MARKER if time_us is None else TIMESTAMP_PREFIX + format_timestamp(time_us)


def clamp(time_us: int, now: float) -> int:
    """A marker no later than the millisecond after `now` (seconds): a client cannot mark as
    read what has not been sent, and so lock its marker in the future. The millisecond after,
    since a message's time is shown rounded to the nearest one."""
    return min(time_us, (int(now * 1000) + 1) * 1000)
