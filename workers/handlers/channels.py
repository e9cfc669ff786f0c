"""Channel operations (Modern IRC "Channel Operations"): JOIN, PART, TOPIC, NAMES, MODE, WHO.

Changes (JOIN, PART, TOPIC) are requests to the hub, which checks them against the global
state and answers with an event or an error numeric. Queries are answered from the replica.
"""
from __future__ import annotations

from hub import link
from ircproto import numerics as N
from ircproto.casemap import casefold, is_channel_name, is_valid_channel
from ircproto.message import Message, truncate_utf8
from workers import replies
from workers.handlers.common import Reply, split_targets
from workers.session import Session


def join(s: Session, msg: Message) -> None:
    if msg.params[0] == "0":  # JOIN 0: leave every channel
        user = s.worker.state.users.get(s.cid)
        for key in sorted(user.channels) if user else ():
            s.worker.request((link.R_PART, s.cid, s.worker.state.channels[key].name, ""))
        return
    maxlen = s.worker.config.limits.channellen
    for name in split_targets(msg.params[0]):
        if not is_valid_channel(name, maxlen):
            s.numeric(N.ERR_NOSUCHCHANNEL, name, "No such channel")
            continue
        s.worker.request((link.R_JOIN, s.cid, name))


def part(s: Session, msg: Message) -> None:
    reason = msg.params[1] if len(msg.params) > 1 else ""
    for name in split_targets(msg.params[0]):
        s.worker.request((link.R_PART, s.cid, name, reason))


def topic(s: Session, msg: Message) -> None:
    name = msg.params[0]
    if len(msg.params) == 1:
        chan = s.worker.state.channel(name)
        if chan is None:
            raise Reply(N.ERR_NOSUCHCHANNEL, name, "No such channel")
        replies.topic(s, chan)
        return
    text = truncate_utf8(msg.params[1], s.worker.config.limits.topiclen)
    s.worker.request((link.R_TOPIC, s.cid, name, text))


def names(s: Session, msg: Message) -> None:
    if not msg.params:
        s.numeric(N.RPL_ENDOFNAMES, "*", "End of /NAMES list.")
        return
    for name in split_targets(msg.params[0]):
        chan = s.worker.state.channel(name)
        if chan is None:
            s.numeric(N.RPL_ENDOFNAMES, name, "End of /NAMES list.")
        else:
            replies.names(s, chan)


def mode(s: Session, msg: Message) -> None:
    target = msg.params[0]
    state = s.worker.state
    if is_channel_name(target):
        chan = state.channel(target)
        if chan is None:
            raise Reply(N.ERR_NOSUCHCHANNEL, target, "No such channel")
        if len(msg.params) == 1:
            s.numeric(N.RPL_CHANNELMODEIS, chan.name, "+" + chan.modes)
            s.numeric(N.RPL_CREATIONTIME, chan.name, str(int(chan.created)))
            return
        change = msg.params[1]
        if change.lstrip("+") == "b":  # ban list query; bans arrive with the full mode set
            s.numeric(N.RPL_ENDOFBANLIST, chan.name, "End of channel ban list")
            return
        if "@" not in chan.members.get(s.cid, ""):
            raise Reply(N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        for letter in change:
            if letter not in "+-" + replies.CHANNEL_MODES:
                s.numeric(N.ERR_UNKNOWNMODE, letter, "is unknown mode char to me")
        return
    if casefold(target) != casefold(s.nick or ""):
        raise Reply(N.ERR_USERSDONTMATCH, "Cant change mode for other users")
    if len(msg.params) == 1:
        s.numeric(N.RPL_UMODEIS, "+")
        return
    if any(letter not in "+-" + replies.USER_MODES for letter in msg.params[1]):
        s.numeric(N.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")


def who(s: Session, msg: Message) -> None:
    mask = msg.params[0]
    state = s.worker.state
    server = s.worker.server_name
    if is_channel_name(mask):
        chan = state.channel(mask)
        rows = [(chan.name, state.users[cid], status) for cid, status in chan.members.items()] if chan else []
    else:
        user = state.user_by_nick(mask)
        rows = [("*", user, "")] if user else []
    for channel_name, user, status in rows:
        s.numeric(N.RPL_WHOREPLY, channel_name, user.user, user.host, server, user.nick,
                  "H" + status[:1], f"0 {user.realname}")
    s.numeric(N.RPL_ENDOFWHO, mask, "End of WHO list")
