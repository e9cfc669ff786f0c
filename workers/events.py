"""What a worker does with each item from the hub: apply events to the replica in hub order,
then write the resulting lines to the local clients concerned.

Each line a local client must see is rendered once and written to every local recipient.
Recipients are computed from the replica *before* an event that removes someone is applied,
so the leaver's neighbours are still known.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from hub import link
from hub.state import E_JOIN, E_NICK, E_PART, E_QUIT, E_TOPIC, E_USER, State
from ircproto import numerics as N
from ircproto.message import format_line
from workers import replies
from workers.handlers.registration import registered

if TYPE_CHECKING:
    from workers.worker import Worker


def _write_local(w: "Worker", cids, line: bytes, skip: int | None = None) -> None:
    sessions = w.sessions
    for cid in cids:
        if cid != skip:
            s = sessions.get(cid)
            if s is not None:
                s.write(line)


def on_user(w: "Worker", cid: int, nick: str, user: str, host: str, realname: str, signon: float) -> None:
    w.state.apply((E_USER, cid, nick, user, host, realname, signon))
    s = w.sessions.get(cid)
    if s is not None:
        registered(s)
        s.resume()


def on_nick(w: "Worker", cid: int, new: str) -> None:
    state = w.state
    line = format_line(state.users[cid].prefix, "NICK", new)
    local = [c for c in state.neighbours(cid) if c in w.sessions]
    state.apply((E_NICK, cid, new))
    _write_local(w, local, line)
    s = w.sessions.get(cid)
    if s is not None:
        s.nick = new
        s.resume()


def on_nick_refused(w: "Worker", cid: int, nick: str) -> None:
    s = w.sessions.get(cid)
    if s is None:
        return
    if not s.registered:  # the client is still nameless: the reply goes to "*"
        s.nick = None
    s.numeric(N.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
    s.resume()


def on_join(w: "Worker", cid: int, name: str, ts: float) -> None:
    state = w.state
    state.apply((E_JOIN, cid, name, ts))
    chan = state.channel(name)
    _write_local(w, chan.by_wid.get(w.wid, ()), format_line(state.users[cid].prefix, "JOIN", chan.name))
    s = w.sessions.get(cid)
    if s is not None:
        replies.topic(s, chan, on_join=True)
        replies.names(s, chan)


def on_part(w: "Worker", cid: int, key: str, reason: str) -> None:
    state = w.state
    chan = state.channels[key]
    params = (chan.name, reason) if reason else (chan.name,)
    line = format_line(state.users[cid].prefix, "PART", *params)
    local = list(chan.by_wid.get(w.wid, ()))
    state.apply((E_PART, cid, key, reason))
    _write_local(w, local, line)


def on_quit(w: "Worker", cid: int, reason: str) -> None:
    state = w.state
    user = state.users.get(cid)
    if user is None:
        return
    line = format_line(user.prefix, "QUIT", reason)
    local = [c for c in state.neighbours(cid) if c in w.sessions]
    state.apply((E_QUIT, cid, reason))
    _write_local(w, local, line, skip=cid)
    s = w.sessions.get(cid)
    if s is not None:  # our client asked to QUIT: the hub has handled everything before it
        s.close_forgotten(reason)


def on_topic(w: "Worker", cid: int, key: str, text: str, ts: float) -> None:
    state = w.state
    chan = state.channels[key]
    state.apply((E_TOPIC, cid, key, text, ts))
    _write_local(w, chan.by_wid.get(w.wid, ()), format_line(state.users[cid].prefix, "TOPIC", chan.name, text))


def on_channel_message(w: "Worker", key: str, sender: int, line: bytes, msgid: str, ts: float) -> None:
    chan = w.state.channels.get(key)
    if chan is not None and w.first_delivery(msgid):
        _write_local(w, chan.by_wid.get(w.wid, ()), line, skip=sender)


def on_user_message(w: "Worker", target: int, sender: int, line: bytes, msgid: str, ts: float) -> None:
    s = w.sessions.get(target)
    if s is not None and w.first_delivery(msgid):
        s.write(line)


def on_numeric(w: "Worker", cid: int, numeric: str, params: tuple) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.numeric(numeric, *params)


def on_refuse(w: "Worker", cid: int, reason: str) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.close_forgotten(reason)


def on_sync(w: "Worker", snapshot: dict) -> None:
    """A new hub's view: adopt it, keeping what this worker knows of its own clients."""
    mine = w.state.snapshot(only_wid=w.wid)
    w.state = State.from_snapshot(snapshot)
    w.state.merge(mine)


def on_ack(w: "Worker", count: int) -> None:
    w.acknowledged(count)


HANDLERS: dict[str, Callable[..., None]] = {
    E_USER: on_user,
    E_NICK: on_nick,
    E_JOIN: on_join,
    E_PART: on_part,
    E_QUIT: on_quit,
    E_TOPIC: on_topic,
    link.D_CHANMSG: on_channel_message,
    link.D_USERMSG: on_user_message,
    link.D_NUMERIC: on_numeric,
    link.D_NICK_REFUSED: on_nick_refused,
    link.D_SYNC: on_sync,
    link.D_REFUSE: on_refuse,
    link.D_ACK: on_ack,
}
