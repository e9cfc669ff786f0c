"""The hub's events applied to the worker's replica, with the lines they write to local clients.

Each event is applied in hub order; each line a local client must see is rendered once and
written to every local recipient. Recipients are computed from the replica *before* an event
that removes someone is applied, so the leaver's neighbours are still known. A line that
answers a local client's own request goes through `Session.reply`, so a labelled command gets
it in its response.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from chatstate.state import (E_ACCOUNT, E_AWAY, E_CHGHOST, E_CONNECTIONS, E_INVITE, E_JOIN, E_KICK, E_LOGIN, E_MODE, E_NICK,
                             E_PART, E_QUIT, E_RENAME, E_RESTORE, E_SETNAME, E_TOPIC, E_UMODE, E_USER)
from ircproto import numerics as N
from ircproto.caps import ACCOUNT_NOTIFY, AWAY_NOTIFY, CHANNEL_RENAME, CHGHOST, EXTENDED_JOIN, INVITE_NOTIFY, READ_MARKER, SETNAME
from ircproto.message import format_line
from ircproto.modes import OP_STATUS, change_params
from workers import replies
from workers.handlers import monitor, read_marker
from workers.handlers.registration import registered

if TYPE_CHECKING:
    from chatstate.state import User
    from workers.item_target import HubItemTarget


def _write_local(w: "HubItemTarget", cids: Iterable[int], line: bytes, actor: int | None = None,
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


def _local_neighbours(w: "HubItemTarget", cid: int) -> list[int]:
    return [c for c in w.state.neighbours(cid) if c in w.sessions]


def _neighbours_and_watchers(w: "HubItemTarget", cid: int) -> list[int]:
    """The local neighbours, then the local clients monitoring the user with extended-monitor
    that share no channel with it: each once."""
    local = _local_neighbours(w, cid)
    return local + monitor.extended_watchers(w, w.state.users[cid].nick, local)


def on_user(w: "HubItemTarget", cid: int, nick: str, user: str, host: str, realname: str, signon: float) -> None:
    s = w.sessions.get(cid)
    if s is not None:  # the session's own strings, not a second copy of each from the hub's frame
        nick, user, host, realname = (mine if mine == theirs else theirs for mine, theirs in
                                      ((s.nick, nick), (s.user, user), (s.host, host), (s.realname, realname)))
    w.state.apply((E_USER, cid, nick, user, host, realname, signon))
    monitor.came_online(w, w.state.users[cid])
    if s is not None:
        s.nick = nick  # the hub's grant: after a replayed registration it may follow a refusal
        registered(s)
        s.resume()


def on_nick(w: "HubItemTarget", cid: int, new: str, ts: float = 0.0) -> None:
    state = w.state
    line = format_line(state.users[cid].prefix, "NICK", new)
    old = state.users[cid].nick
    local = _local_neighbours(w, cid)
    state.apply((E_NICK, cid, new, ts))
    _write_local(w, local, line, actor=cid)
    monitor.nick_changed(w, old, state.users[cid])
    s = w.sessions.get(cid)
    if s is not None:
        s.nick = new
        s.resume()


def on_join(w: "HubItemTarget", cid: int, name: str, ts: float) -> None:
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
        if READ_MARKER in s.caps:  # draft/read-marker: after the JOIN, before RPL_ENDOFNAMES
            read_marker.joined(s, chan.name)
        replies.names(s, chan)


def join_lines(user: "User", name: str) -> tuple[bytes, bytes]:
    """The user's JOIN, plain and as extended-join shows it."""
    return (format_line(user.prefix, "JOIN", name),
            format_line(user.prefix, "JOIN", name, user.account or "*", user.realname))  # '*': no account


def on_rename(w: "HubItemTarget", cid: int, key: str, name: str, reason: str) -> None:
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


def on_part(w: "HubItemTarget", cid: int, key: str, reason: str) -> None:
    state = w.state
    chan = state.channels[key]
    params = (chan.name, reason) if reason else (chan.name,)
    line = format_line(state.users[cid].prefix, "PART", *params)
    local = list(chan.by_wid.get(w.wid, ()))
    state.apply((E_PART, cid, key, reason))
    _write_local(w, local, line, actor=cid)


def on_kick(w: "HubItemTarget", cid: int, key: str, target: int, reason: str) -> None:
    state = w.state
    chan = state.channels[key]
    line = format_line(state.users[cid].prefix, "KICK", chan.name, state.users[target].nick, reason)
    local = list(chan.by_wid.get(w.wid, ()))
    state.apply((E_KICK, cid, key, target, reason))
    _write_local(w, local, line, actor=cid)


def on_quit(w: "HubItemTarget", cid: int, reason: str, ts: float = 0.0) -> None:
    state = w.state
    user = state.users.get(cid)
    if user is None:
        monitor.user_quit(w, cid, None)
        return
    line = format_line(user.prefix, "QUIT", reason)
    local = _local_neighbours(w, cid)
    state.apply((E_QUIT, cid, reason, ts))
    _write_local(w, local, line, skip=cid)
    monitor.user_quit(w, cid, user.nick)
    s = w.sessions.get(cid)
    if s is not None:  # our client asked to QUIT (or was killed): the hub has let it go
        s.close_forgotten(reason)


def on_topic(w: "HubItemTarget", cid: int, key: str, text: str, ts: float) -> None:
    state = w.state
    chan = state.channels[key]
    state.apply((E_TOPIC, cid, key, text, ts))
    _write_local(w, chan.by_wid.get(w.wid, ()), format_line(state.users[cid].prefix, "TOPIC", chan.name, text),
                 actor=cid)


def on_mode(w: "HubItemTarget", cid: int, key: str, changes: tuple, ts: float) -> None:
    state = w.state
    chan = state.channels[key]
    line = format_line(state.users[cid].prefix, "MODE", chan.name, *change_params(changes))
    state.apply((E_MODE, cid, key, changes, ts))
    _write_local(w, chan.by_wid.get(w.wid, ()), line, actor=cid)


def on_user_mode(w: "HubItemTarget", cid: int, changes: str) -> None:
    w.state.apply((E_UMODE, cid, changes))
    s = w.sessions.get(cid)
    if s is not None:
        s.reply(format_line(s.nick, "MODE", s.nick, changes))


def on_invite(w: "HubItemTarget", cid: int, key: str, target: int) -> None:
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


def on_away(w: "HubItemTarget", cid: int, text: str) -> None:
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
    _write_local(w, _neighbours_and_watchers(w, cid), line, skip=cid, cap=AWAY_NOTIFY)


def on_setname(w: "HubItemTarget", cid: int, realname: str) -> None:
    state = w.state
    state.apply((E_SETNAME, cid, realname))
    s = w.sessions.get(cid)
    if s is not None:
        s.realname = realname
    line = format_line(state.users[cid].prefix, "SETNAME", realname)
    _write_local(w, _neighbours_and_watchers(w, cid), line, actor=cid, cap=SETNAME)


def on_chghost(w: "HubItemTarget", cid: int, user: str, host: str) -> None:
    state = w.state
    line = format_line(state.users[cid].prefix, "CHGHOST", user, host)
    _write_local(w, _neighbours_and_watchers(w, cid), line, cap=CHGHOST)
    state.apply((E_CHGHOST, cid, user, host))
    s = w.sessions.get(cid)
    if s is not None:
        s.user, s.host = user, host


def on_account(w: "HubItemTarget", key: str, record: dict | None) -> None:
    w.state.apply((E_ACCOUNT, key, record))


def on_login(w: "HubItemTarget", cid: int, account: str) -> None:
    """account-notify: the user's neighbours, and extended-monitor watchers, see ACCOUNT."""
    state = w.state
    state.apply((E_LOGIN, cid, account))
    line = format_line(state.users[cid].prefix, "ACCOUNT", account or "*")
    _write_local(w, _neighbours_and_watchers(w, cid), line, skip=cid, cap=ACCOUNT_NOTIFY)
    s = w.sessions.get(cid)
    if s is not None:
        s.account = account


def on_connections(w: "HubItemTarget", count: int) -> None:
    w.state.apply((E_CONNECTIONS, count))




def on_restore(w: "HubItemTarget", key: str, settings: dict) -> None:
    """A channel kept from before a restart: its first joiner follows, and sees its topic."""
    w.state.apply((E_RESTORE, key, settings))
