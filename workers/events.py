"""What a worker does with each item from the hub: apply events to the replica in hub order,
then write the resulting lines to the local clients concerned.

Each line a local client must see is rendered once and written to every local recipient
(a relayed message has at most one variant per tag mode: none, server-time, message-tags,
both). Recipients are computed from the replica *before* an event that removes someone is
applied, so the leaver's neighbours are still known. A line that answers a local client's own
request goes through `Session.reply`, so a labelled command gets it in its response.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Iterable

from ipc import link
from chatstate.state import (E_AWAY, E_CHGHOST, E_CONNECTIONS, E_INVITE, E_JOIN, E_KICK, E_MODE, E_NICK, E_PART, E_QUIT, E_RENAME,
                       E_SETNAME, E_TOPIC, E_UMODE, E_USER, State, has_status)
from ircproto import numerics as N
from ircproto.caps import AWAY_NOTIFY, CHANNEL_RENAME, CHGHOST, EXTENDED_JOIN, INVITE_NOTIFY, SETNAME
from ircproto.message import format_line
from ircproto.modes import OP_STATUS, STATUS_RANK
from workers import replies
from workers.handlers import queries
from workers.handlers.registration import registered
from workers.session import NO_OUTPUT, TAG_MSGID, TAG_TIME

if TYPE_CHECKING:
    from chatstate.state import User
    from workers.session import Session
    from workers.worker import Worker


def _write_local(w: "Worker", cids: Iterable[int], line: bytes, actor: int | None = None,
                 skip: int | None = None, cap: str | None = None) -> None:
    """Write one line to the local clients among cids (only those with `cap`, when given)."""
    sessions = w.sessions
    for cid in cids:
        if cid == skip:
            continue
        s = sessions.get(cid)
        if s is None or (cap is not None and cap not in s.caps):
            continue
        if cid == actor:
            s.reply(line)
        else:
            s.write(line)


def _local_neighbours(w: "Worker", cid: int) -> list[int]:
    return [c for c in w.state.neighbours(cid) if c in w.sessions]


def on_user(w: "Worker", cid: int, nick: str, user: str, host: str, realname: str, signon: float) -> None:
    s = w.sessions.get(cid)
    if s is not None:  # the session's own strings, not a second copy of each from the hub's frame
        nick, user, host, realname = (mine if mine == theirs else theirs for mine, theirs in
                                      ((s.nick, nick), (s.user, user), (s.host, host), (s.realname, realname)))
    w.state.apply((E_USER, cid, nick, user, host, realname, signon))
    if s is not None:
        registered(s)
        s.resume()


def on_nick(w: "Worker", cid: int, new: str, ts: float = 0.0) -> None:
    state = w.state
    line = format_line(state.users[cid].prefix, "NICK", new)
    local = _local_neighbours(w, cid)
    state.apply((E_NICK, cid, new, ts))
    _write_local(w, local, line, actor=cid)
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
    s.numeric(N.ERR_NICKNAMEINUSE, nick)
    s.resume()


def on_join(w: "Worker", cid: int, name: str, ts: float) -> None:
    state = w.state
    state.apply((E_JOIN, cid, name, ts))
    chan = state.channel(name)
    user = state.users[cid]
    plain, extended = join_lines(user, chan.name)
    away = format_line(user.prefix, "AWAY", user.away) if user.away else None
    for member in chan.by_wid.get(w.wid, ()):
        s = w.sessions.get(member)
        if s is None:
            continue
        line = extended if EXTENDED_JOIN in s.caps else plain
        if member == cid:
            s.reply(line)
        else:
            s.write(line)
            if away is not None and AWAY_NOTIFY in s.caps:
                s.write(away)
    s = w.sessions.get(cid)
    if s is not None:
        replies.topic(s, chan, on_join=True)
        replies.names(s, chan)


def join_lines(user: "User", name: str) -> tuple[bytes, bytes]:
    """The user's JOIN, plain and as extended-join shows it."""
    return (format_line(user.prefix, "JOIN", name),
            format_line(user.prefix, "JOIN", name, "*", user.realname))  # '*': no account


def on_rename(w: "Worker", cid: int, key: str, name: str, reason: str) -> None:
    """draft/channel-rename: members with the capability see RENAME; the others see themselves
    leave the old name and join the new one, with its topic and names (the spec's fallback),
    except for a change of case only, which the spec says to leave unannounced to them."""
    state = w.state
    chan = state.channels[key]
    old = chan.name
    rename = format_line(state.users[cid].prefix, "RENAME", old, name, reason)
    state.apply((E_RENAME, cid, key, name, reason))
    case_only = chan.folded == key
    for member in chan.by_wid.get(w.wid, ()):
        s = w.sessions.get(member)
        if s is None:
            continue
        if CHANNEL_RENAME in s.caps:
            lines = [rename]
        elif case_only:
            continue
        else:
            user = state.users[member]
            plain, extended = join_lines(user, name)
            lines = [format_line(user.prefix, "PART", *((old, reason) if reason else (old,))),
                     extended if EXTENDED_JOIN in s.caps else plain]
        for line in lines:
            if member == cid:
                s.reply(line)
            else:
                s.write(line)
        if len(lines) > 1:
            replies.topic(s, chan, on_join=True, told=member != cid)
            replies.names(s, chan, told=member != cid)


def on_part(w: "Worker", cid: int, key: str, reason: str) -> None:
    state = w.state
    chan = state.channels[key]
    params = (chan.name, reason) if reason else (chan.name,)
    line = format_line(state.users[cid].prefix, "PART", *params)
    local = list(chan.by_wid.get(w.wid, ()))
    state.apply((E_PART, cid, key, reason))
    _write_local(w, local, line, actor=cid)


def on_kick(w: "Worker", cid: int, key: str, target: int, reason: str) -> None:
    state = w.state
    chan = state.channels[key]
    line = format_line(state.users[cid].prefix, "KICK", chan.name, state.users[target].nick, reason)
    local = list(chan.by_wid.get(w.wid, ()))
    state.apply((E_KICK, cid, key, target, reason))
    _write_local(w, local, line, actor=cid)


def on_quit(w: "Worker", cid: int, reason: str, ts: float = 0.0) -> None:
    state = w.state
    user = state.users.get(cid)
    if user is None:
        return
    line = format_line(user.prefix, "QUIT", reason)
    local = _local_neighbours(w, cid)
    state.apply((E_QUIT, cid, reason, ts))
    _write_local(w, local, line, skip=cid)
    s = w.sessions.get(cid)
    if s is not None:  # our client asked to QUIT (or was killed): the hub has let it go
        s.close_forgotten(reason)


def on_topic(w: "Worker", cid: int, key: str, text: str, ts: float) -> None:
    state = w.state
    chan = state.channels[key]
    state.apply((E_TOPIC, cid, key, text, ts))
    _write_local(w, chan.by_wid.get(w.wid, ()), format_line(state.users[cid].prefix, "TOPIC", chan.name, text),
                 actor=cid)


def on_mode(w: "Worker", cid: int, key: str, changes: tuple, ts: float) -> None:
    state = w.state
    chan = state.channels[key]
    letters, args, sign = [], [], ""
    for change_sign, letter, arg in changes:
        if change_sign != sign:
            sign = change_sign
            letters.append(sign)
        letters.append(letter)
        if arg:
            args.append(arg)
    line = format_line(state.users[cid].prefix, "MODE", chan.name, "".join(letters), *args)
    state.apply((E_MODE, cid, key, changes, ts))
    _write_local(w, chan.by_wid.get(w.wid, ()), line, actor=cid)


def on_user_mode(w: "Worker", cid: int, changes: str) -> None:
    w.state.apply((E_UMODE, cid, changes))
    s = w.sessions.get(cid)
    if s is not None:
        s.reply(format_line(s.nick, "MODE", s.nick, changes))


def on_invite(w: "Worker", cid: int, key: str, target: int) -> None:
    state = w.state
    state.apply((E_INVITE, cid, key, target))
    chan = state.channels[key]
    inviter, invited = state.users[cid], state.users[target]
    line = format_line(inviter.prefix, "INVITE", invited.nick, chan.name)
    s = w.sessions.get(cid)
    if s is not None:
        s.numeric(N.RPL_INVITING, invited.nick, chan.name)
    s = w.sessions.get(target)
    if s is not None:
        s.write(line)
    # invite-notify: the channel's other operators hear of it too
    ops = [m for m in chan.by_wid.get(w.wid, ()) if OP_STATUS in chan.members[m] and m not in (cid, target)]
    _write_local(w, ops, line, cap=INVITE_NOTIFY)


def on_away(w: "Worker", cid: int, text: str) -> None:
    state = w.state
    state.apply((E_AWAY, cid, text))
    user = state.users[cid]
    s = w.sessions.get(cid)
    if s is not None:
        if text:
            s.numeric(N.RPL_NOWAWAY)
        else:
            s.numeric(N.RPL_UNAWAY)
    line = format_line(user.prefix, "AWAY", text) if text else format_line(user.prefix, "AWAY")
    _write_local(w, _local_neighbours(w, cid), line, skip=cid, cap=AWAY_NOTIFY)


def on_setname(w: "Worker", cid: int, realname: str) -> None:
    state = w.state
    state.apply((E_SETNAME, cid, realname))
    s = w.sessions.get(cid)
    if s is not None:
        s.realname = realname
    line = format_line(state.users[cid].prefix, "SETNAME", realname)
    _write_local(w, _local_neighbours(w, cid), line, actor=cid, cap=SETNAME)


def on_chghost(w: "Worker", cid: int, user: str, host: str) -> None:
    state = w.state
    line = format_line(state.users[cid].prefix, "CHGHOST", user, host)
    _write_local(w, _local_neighbours(w, cid), line, cap=CHGHOST)
    state.apply((E_CHGHOST, cid, user, host))
    s = w.sessions.get(cid)
    if s is not None:
        s.user, s.host = user, host


def on_connections(w: "Worker", count: int) -> None:
    w.state.apply((E_CONNECTIONS, count))


# --- relayed messages: the hot path --------------------------------------------------------
def _iso(ts: float) -> str:
    ms = round(ts * 1000)  # to the nearest millisecond: monotonic, so stamps in hub order never go backwards
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def tagged(line: bytes, mode: int, msgid: str, ts: float, client_tags: str) -> bytes:
    """The line as a client with this tag mode sees it."""
    tags = []
    if mode & TAG_TIME:
        tags.append("time=" + _iso(ts))
    if mode & TAG_MSGID:
        tags.append("msgid=" + msgid)
        if client_tags:
            tags.append(client_tags)
    return ("@" + ";".join(tags) + " ").encode() + line if tags else line


def _deliver(s: "Session", variants: list, line: bytes, msgid: str, ts: float, flags: int, tags: str,
             own: bool = False) -> None:
    mode = s.tag_mode
    if flags & link.MSG_TAGMSG and not mode & TAG_MSGID:
        return  # TAGMSG is only for clients with message-tags (server-time alone does not carry tags)
    if mode:
        data = variants[mode]
        if data is None:
            data = variants[mode] = tagged(line, mode, msgid, ts, tags)
    else:
        data = line
    if own:
        s.reply(data)
    else:
        s.write(data)


def deliver_channel_run(w: "Worker", key: str, run: list[tuple]) -> None:
    """Deliver consecutive messages of one channel (from one hub frame) to the local members.

    This is the hot path. A plain member (no tags, no label) gets the run as one joined blob
    appended to its output: one step per member per run instead of one per member per message.
    A member who sent some of the lines gets them joined without its own (unless it has
    echo-message); members with tags or an open label get each message in turn. The run holds
    only consecutive items, so every client still sees exactly the hub's order."""
    chan = w.state.channels.get(key)
    if chan is None:
        if key[:1] in STATUS_RANK:
            deliver_status_run(w, key, run)
        return
    ids = [item[4] for item in run]
    fresh = w.delivered_ids.add_new(ids)
    if fresh is not ids:  # a hub restart replayed some of these: keep each first copy
        wanted = set(fresh)
        kept = []
        for item in run:
            if item[4] in wanted:
                wanted.discard(item[4])
                kept.append(item)
        if not kept:
            return
        run = kept
    senders = {item[2] for item in run}
    blob = b"".join(item[3] for item in run if not item[6] & link.MSG_TAGMSG)
    sessions = w.sessions
    unflushed = w.unflushed()
    one_by_one = []
    for cid in chan.by_wid.get(w.wid, ()):
        s = sessions.get(cid)
        if s is None or s.closed:
            continue
        if s.tag_mode or s.label is not None:
            one_by_one.append(s)
        elif cid in senders:  # the run without its own lines, unless it asked for their echo
            lines = b"".join([item[3] for item in run if (item[2] != cid or item[6] & link.MSG_ECHO)
                             and not item[6] & link.MSG_TAGMSG])
            if lines:
                s.write(lines)
        elif blob:  # Session.write, inlined: this loop runs once per member per run
            if s.outbuf is NO_OUTPUT:
                unflushed.append(s)
                s.outbuf = [blob]
            else:
                s.outbuf.append(blob)
    if not one_by_one:
        return
    for _, _, sender, line, msgid, ts, flags, tags in run:
        variants = [line, None, None, None]  # each tagged form rendered once per message
        for s in one_by_one:
            if s.cid != sender:
                _deliver(s, variants, line, msgid, ts, flags, tags)
            elif flags & link.MSG_ECHO:
                _deliver(s, variants, line, msgid, ts, flags, tags, own=True)


def deliver_status_run(w: "Worker", key: str, run: list[tuple]) -> None:
    """STATUSMSG: messages to '@#chan' (the hub routes them under that key) reach the local
    members with at least that status, and the sender's echo if it asked for one. They are rare,
    so they go one by one and cost the plain path nothing."""
    chan = w.state.channels.get(key[1:])
    if chan is None:
        return
    to_status = key[0]
    members = chan.members
    for _, _, sender, line, msgid, ts, flags, tags in run:
        if not w.first_delivery(msgid):
            continue
        variants = [line, None, None, None]
        for cid in chan.by_wid.get(w.wid, ()):
            s = w.sessions.get(cid)
            if s is None or s.closed:
                continue
            if cid == sender:
                if flags & link.MSG_ECHO:
                    _deliver(s, variants, line, msgid, ts, flags, tags, own=True)
            elif has_status(members[cid], to_status):
                _deliver(s, variants, line, msgid, ts, flags, tags)


def on_user_message(w: "Worker", target: int, sender: int, line: bytes, msgid: str, ts: float,
                    flags: int, tags: str) -> None:
    w.hub_time = ts
    s = w.sessions.get(target)
    if s is not None and w.first_delivery(msgid):
        _deliver(s, [line, None, None, None], line, msgid, ts, flags, tags)


def on_echo(w: "Worker", sender: int, line: bytes, msgid: str, ts: float, flags: int, tags: str) -> None:
    w.hub_time = ts
    s = w.sessions.get(sender)
    if s is not None and w.first_delivery(msgid + ".echo"):
        _deliver(s, [line, None, None, None], line, msgid, ts, flags, tags, own=True)


def on_wallops(w: "Worker", line: bytes) -> None:
    users = w.state.users
    for cid, s in w.sessions.items():
        user = users.get(cid)
        if user is not None and "w" in user.modes:
            s.write(line)


# --- answers to one client ------------------------------------------------------------------
def on_numeric(w: "Worker", cid: int, numeric: str, params: tuple) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.numeric_as_given(numeric, *params)  # the hub sends the text too


def on_fail(w: "Worker", cid: int, command: str, code: str, params: tuple) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.send("FAIL", command, code, *params)


def on_barrier(w: "Worker", cid: int, token: int) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.barrier_came_back(token)


def on_refuse(w: "Worker", cid: int, reason: str) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.close_forgotten(reason)


def on_idle_ask(w: "Worker", asker: int, target: int) -> None:
    s = w.sessions.get(target)
    idle = int(time.time() - s.idle_since) if s is not None else None
    w.request((link.R_FORWARD, asker, (link.F_IDLE_TELL, asker, target, idle)))


def on_idle_tell(w: "Worker", asker: int, target: int, idle: int | None) -> None:
    w.hub_turn = False  # another worker's answer, not the hub's: the WHOIS reply is a local answer
    try:
        queries.whois_answered(w, asker, target, idle)
    finally:
        w.hub_turn = True


def on_sync(w: "Worker", snapshot: dict) -> None:
    """A new hub's view: adopt it, keeping what this worker knows of its own clients."""
    mine = w.state.snapshot(only_wid=w.wid)
    w.state = State.from_snapshot(snapshot, w.wid)
    w.state.merge(mine)


def on_ack(w: "Worker", count: int) -> None:
    w.acknowledged(count)


# D_CHANMSG is not here: Worker._on_hub_items gathers runs of them for deliver_channel_run.
HANDLERS: dict[str, Callable[..., None]] = {
    E_USER: on_user,
    E_NICK: on_nick,
    E_JOIN: on_join,
    E_PART: on_part,
    E_KICK: on_kick,
    E_QUIT: on_quit,
    E_TOPIC: on_topic,
    E_MODE: on_mode,
    E_UMODE: on_user_mode,
    E_INVITE: on_invite,
    E_AWAY: on_away,
    E_SETNAME: on_setname,
    E_CHGHOST: on_chghost,
    E_RENAME: on_rename,
    E_CONNECTIONS: on_connections,
    link.D_USERMSG: on_user_message,
    link.D_ECHO: on_echo,
    link.D_WALLOPS: on_wallops,
    link.D_NUMERIC: on_numeric,
    link.D_FAIL: on_fail,
    link.D_BARRIER: on_barrier,
    link.D_NICK_REFUSED: on_nick_refused,
    link.D_SYNC: on_sync,
    link.D_REFUSE: on_refuse,
    link.D_ACK: on_ack,
    link.F_IDLE_ASK: on_idle_ask,
    link.F_IDLE_TELL: on_idle_tell,
}
