"""User queries (Modern IRC "User-Based Queries"): WHO (with WHOX), WHOIS, WHOWAS, ISON, USERHOST.

All are answered from the worker's replica, except WHOIS's idle time: only the worker holding
the target knows when it last spoke, so WHOIS for a user on another worker asks that worker
through the hub (F_IDLE_ASK / F_IDLE_TELL) and answers when it hears back, or after
IDLE_WAIT without the idle line if that worker has gone.
"""
from __future__ import annotations

import time

from accounts.names import is_service_nick
from ipc import link
from chatstate.state import Channel, User
from ircproto import numerics as N
from ircproto.casemap import is_channel_name
from ircproto.masks import is_wild, matches
from ircproto.message import Message
from ircproto.modes import BOT_MODE
from workers.handlers import nickserv
from workers.handlers.common import Reply, split_targets
from workers.replies import shown_status
from workers.session import Session

IDLE_WAIT = 2.0
WHOX_FIELDS = "tcuihsnfdlaor"  # the order WHOX replies use, whatever order they were asked in
WHOWAS_DEFAULT = 10


def _flags(s: Session, user: User, status: str) -> str:
    return ("G" if user.away else "H") + ("*" if "o" in user.modes else "") + shown_status(s, status) + \
        (BOT_MODE if BOT_MODE in user.modes else "")  # last, as ergo and InspIRCd put it


def _visible(s: Session, user: User) -> bool:
    """Invisible users (+i) show up only to themselves and to those who share a channel."""
    return "i" not in user.modes or user.cid == s.cid or s.server.state.shares_channel(s.cid, user.cid)


def who(s: Session, msg: Message) -> None:
    mask = msg.params[0]
    options = msg.params[1] if len(msg.params) > 1 else ""
    fields, _, token = options.partition("%")[2].partition(",")
    whox = "%" in options
    opers_only = "o" in options.partition("%")[0]
    state = s.server.state
    rows: list[tuple[str, User, str]] = []
    if is_channel_name(mask):
        chan = state.channel(mask)
        if chan is not None and state.may_see(s.cid, chan):
            member = s.cid in chan.members
            rows = [(chan.name, state.users[cid], status) for cid, status in chan.members.items()
                    if member or "i" not in state.users[cid].modes]
    elif not is_wild(mask) and mask != "0":
        user = state.user_by_nick(mask)
        rows = [("*", user, "")] if user else []
    else:
        pattern = "*" if mask == "0" else mask
        rows = [("*", u, "") for u in state.users.values()
                if _visible(s, u) and any(matches(pattern, text) for text in (u.nick, u.prefix, u.host, u.realname))]
    server = s.server.server_name
    for channel_name, user, status in rows:
        if opers_only and "o" not in user.modes:
            continue
        if whox:
            values = {"t": token or "0", "c": channel_name, "u": user.user, "i": "255.255.255.255", "h": user.host,
                      "s": server, "n": user.nick, "f": _flags(s, user, status), "d": "0", "l": "0",
                      "a": user.account or "0",
                      "o": "n/a", "r": user.realname}
            s.numeric(N.RPL_WHOSPCRPL, *[values[f] for f in WHOX_FIELDS if f in fields] or ["*"])
        else:
            s.numeric(N.RPL_WHOREPLY, channel_name, user.user, user.host, server, user.nick,
                      _flags(s, user, status), f"0 {user.realname}")
    s.numeric(N.RPL_ENDOFWHO, mask)


def whois(s: Session, msg: Message) -> None:
    """WHOIS [<server>] <nick>: the last parameter is the nick; only the first of a list is answered."""
    targets = split_targets(msg.params[-1])
    if not targets:
        raise Reply(N.ERR_NONICKNAMEGIVEN)
    nick = targets[0]
    server = s.server
    user = server.state.user_by_nick(nick)
    if user is None and is_service_nick(nick):
        nickserv.whois(s)
        return
    if user is None:
        s.numeric(N.ERR_NOSUCHNICK, nick)
        s.numeric(N.RPL_ENDOFWHOIS, nick)
        return
    idle = server.idle_seconds(user.cid)
    if idle is not None:  # a client of this worker
        _whois_reply(s, user, idle)
        return
    # Another worker holds this user: ask it for the idle time, holding the client's later lines.
    server.expect_idle(s.cid, user.cid, nick)
    s.await_answer()
    s.send_to_hub((link.R_FORWARD, user.cid, (link.F_IDLE_ASK, s.cid, user.cid)))


def whois_answered(s: Session, nick: str, target: int, idle: int | None) -> None:
    """The other worker told the idle time (None: it did not in time): answer, and carry on."""
    user = s.server.state.users.get(target)
    if user is None:  # quit while we asked
        s.numeric(N.ERR_NOSUCHNICK, nick)
        s.numeric(N.RPL_ENDOFWHOIS, nick)
    else:
        _whois_reply(s, user, idle)
    s.resume()


def _whois_reply(s: Session, user: User, idle: int | None) -> None:
    state = s.server.state
    s.numeric(N.RPL_WHOISUSER, user.nick, user.user, user.host, "*", user.realname)
    channels = []
    for key in sorted(user.channels):
        chan: Channel = state.channels[key]
        if state.may_see(s.cid, chan) or user.cid == s.cid:
            channels.append(shown_status(s, chan.members[user.cid]) + chan.name)
    if channels:
        s.numeric(N.RPL_WHOISCHANNELS, user.nick, " ".join(channels))
    s.numeric(N.RPL_WHOISSERVER, user.nick, s.server.server_name, s.server.config.server.network)
    if "o" in user.modes:
        s.numeric(N.RPL_WHOISOPERATOR, user.nick)
    if BOT_MODE in user.modes:
        s.numeric(N.RPL_WHOISBOT, user.nick)
    if user.account:
        s.numeric(N.RPL_WHOISACCOUNT, user.nick, user.account)
    if user.cid == s.cid and s.certfp:  # (another worker's client's certificate is not in the replica)
        s.numeric_as_given(N.RPL_WHOISCERTFP, user.nick, f"has client certificate fingerprint {s.certfp}")
    if user.away:
        s.numeric(N.RPL_AWAY, user.nick, user.away)
    if idle is not None:
        s.numeric(N.RPL_WHOISIDLE, user.nick, str(max(idle, 0)), str(int(user.signon)))
    s.numeric(N.RPL_ENDOFWHOIS, user.nick)


def whowas(s: Session, msg: Message) -> None:
    nick = msg.params[0]
    count = msg.params[1] if len(msg.params) > 1 else ""
    limit = int(count) if count.isdigit() and int(count) > 0 else WHOWAS_DEFAULT
    entries = s.server.state.was(nick)[:limit]
    if not entries:
        s.numeric(N.ERR_WASNOSUCHNICK, nick)
    for was_nick, user, host, realname, ts in entries:
        s.numeric(N.RPL_WHOWASUSER, was_nick, user, host, "*", realname)
        s.numeric(N.RPL_WHOISSERVER, was_nick, s.server.server_name,
                  time.strftime("%a %b %d %H:%M:%S %Y UTC", time.gmtime(ts)))
    s.numeric(N.RPL_ENDOFWHOWAS, nick)


def ison(s: Session, msg: Message) -> None:
    state = s.server.state
    online = []
    for nick in " ".join(msg.params).split():
        user = state.user_by_nick(nick)
        if user is not None:
            online.append(user.nick)
    s.numeric(N.RPL_ISON, " ".join(online))


def userhost(s: Session, msg: Message) -> None:
    state = s.server.state
    found = []
    for nick in msg.params[:5]:
        user = state.user_by_nick(nick)
        if user is not None:
            oper = "*" if "o" in user.modes else ""
            found.append(f"{user.nick}{oper}={'-' if user.away else '+'}{user.user}@{user.host}")
    s.numeric(N.RPL_USERHOST, " ".join(found))
