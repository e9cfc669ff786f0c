"""IRCv3 draft/read-marker: MARKREAD, and the marker each JOIN brings a client with the capability.

The worker checks the syntax (ircproto/readmarker.py) and answers a bad command with its FAIL at
once; a good one asks the hub (`R_MARKREAD`), which asks the store for the client's own marker
(moved forward first, for a set), and the client's later lines wait for the answer
(`D_MARKREAD`): `MARKREAD <target> timestamp=<time>`, `*` for none, or a FAIL.

The spec wants a channel's marker after the JOIN and before RPL_ENDOFNAMES, which the worker
writes as it applies the hub's JOIN. So a client with the capability asks for the markers of the
channels it joins first (`join`): with the answer, the worker keeps them in the session
(`join_markers`), sends the joins, and carries on; each JOIN burst then takes its channel's
marker from there (`joined`), between the topic and the names.
"""
from __future__ import annotations

from ipc import link
from ircproto.casemap import casefold, is_channel_name
from ircproto.chathistory import Fail
from ircproto.message import Message
from ircproto.readmarker import MARKREAD, internal_error, marker_param, parse_markread
from workers.session import Session


def markread(s: Session, msg: Message) -> None:
    """MARKREAD <target> [timestamp=<time>]."""
    limits = s.server.config.limits
    parsed = parse_markread(msg.params, limits.channellen, limits.nicklen)
    if type(parsed) is Fail:
        s.send("FAIL", parsed.command, parsed.code, *parsed.params)
        return
    target, time_us = parsed
    s.ask_hub((link.R_MARKREAD, s.cid, (target,), time_us, None))


def join(s: Session, joins: list[tuple[str, str]]) -> None:
    """JOIN for a client with draft/read-marker: the markers first, then the joins (`answered`)."""
    s.ask_hub((link.R_MARKREAD, s.cid, tuple(name for name, _ in joins), None, tuple(joins)))


def answered(s: Session, targets: tuple[str, ...], times, joins) -> None:
    """The hub's answer: the marker to the client (or its FAIL), or, for a JOIN, the markers kept
    for the JOIN bursts and the joins sent; then carry on with the client's held lines. An answer
    nothing waits for (a replayed request's, after a hub restart) does nothing."""
    if s.closed or not s.waiting:
        return
    if joins is None:
        if times is None:
            fail = internal_error(targets[0])
            s.send("FAIL", fail.command, fail.code, *fail.params)
        else:
            s.send(MARKREAD, _shown_name(s, targets[0]), marker_param(times[0]))
    else:
        if s.join_markers is None:
            s.join_markers = {}
        s.join_markers.update((casefold(target), time) for target, time in zip(targets, times or ()))
        for name, key in joins:
            s.request((link.R_JOIN, s.cid, name, key))
    s.resume()


def joined(s: Session, name: str) -> None:
    """In the JOIN burst of a client with the capability: its marker of the channel."""
    markers = s.join_markers
    time_us = markers.pop(casefold(name), None) if markers else None
    if markers is not None and not markers:
        s.join_markers = None
    s.send(MARKREAD, name, marker_param(time_us))


def _shown_name(s: Session, target: str) -> str:
    """A channel's or a user's own spelling when the replica knows it, else the name as given."""
    state = s.server.state
    if is_channel_name(target):
        chan = state.channel(target)
        return chan.name if chan is not None else target
    user = state.user_by_nick(target)
    return user.nick if user is not None else target
