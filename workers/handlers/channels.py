"""Channel operations (Modern IRC "Channel Operations"): JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE,
and RENAME (IRCv3 draft/channel-rename).

Changes are requests to the hub, which checks them against the global state (membership,
operator status, +i/+k/+l/+b) and answers with an event or an error numeric. Queries are
answered from the replica.
"""
from __future__ import annotations

import time
from typing import Callable

from ipc import link
from chatstate.state import Channel
from ircproto import numerics as N
from ircproto.caps import READ_MARKER
from ircproto.casemap import is_valid_channel
from ircproto.masks import matches
from ircproto.message import Message, truncate_utf8
from workers import replies
from workers.handlers import read_marker
from workers.handlers.common import Reply, split_targets
from workers.isupport import KICKLEN
from workers.session import Session



def join(s: Session, msg: Message) -> None:
    if msg.params[0] == "0":  # JOIN 0: leave every channel
        user = s.server.state.users.get(s.cid)
        for key in sorted(user.channels) if user else ():
            s.request((link.R_PART, s.cid, s.server.state.channels[key].name, ""))
        return
    maxlen = s.server.config.limits.channellen
    keys = msg.params[1].split(",") if len(msg.params) > 1 else []
    joins = []
    for i, name in enumerate(split_targets(msg.params[0])):
        if not is_valid_channel(name, maxlen):
            s.numeric(N.ERR_NOSUCHCHANNEL, name)
            continue
        joins.append((name, keys[i] if i < len(keys) else ""))
    if joins and READ_MARKER in s.caps:  # each JOIN burst carries the channel's read marker
        read_marker.join(s, joins)
        return
    for name, key in joins:
        s.request((link.R_JOIN, s.cid, name, key))


def part(s: Session, msg: Message) -> None:
    reason = msg.params[1] if len(msg.params) > 1 else ""
    for name in split_targets(msg.params[0]):
        s.request((link.R_PART, s.cid, name, reason))


def topic(s: Session, msg: Message) -> None:
    name = msg.params[0]
    if len(msg.params) == 1:
        chan = s.server.state.channel(name)
        if chan is None or not s.server.state.may_see(s.cid, chan):
            raise Reply(N.ERR_NOSUCHCHANNEL, name)
        replies.topic(s, chan)
        return
    text = truncate_utf8(msg.params[1], s.server.config.limits.topiclen)
    s.request((link.R_TOPIC, s.cid, name, text))


def names(s: Session, msg: Message) -> None:
    state = s.server.state
    if not msg.params:  # every channel this client may see (RFC 2812)
        for chan in list(state.channels.values()):
            if state.may_see(s.cid, chan):
                replies.names(s, chan, end=False)
        s.numeric(N.RPL_ENDOFNAMES, "*")
        return
    asked = []
    for name in split_targets(msg.params[0]):
        chan = state.channel(name)
        if chan is not None and state.may_see(s.cid, chan):
            replies.names(s, chan, end=False)
            name = chan.name
        asked.append(name)
    # One end for the whole list, naming it (Modern IRC; ergo does the same)
    s.numeric(N.RPL_ENDOFNAMES, ",".join(asked) or "*")


# What "<N" and ">N" compare, by the letter before them (ELIST U, C and T); None fails both.
LIST_MEASURES: dict[str, Callable[[Channel, float], float | None]] = {
    "": lambda chan, now: len(chan.members),
    "C": lambda chan, now: (now - chan.created) / 60,  # minutes since the channel was created
    "T": lambda chan, now: (now - chan.topic_time) / 60 if chan.topic else None,  # since the topic was set
}


def list_(s: Session, msg: Message) -> None:
    """LIST [<channel>{,<channel>} | <mask> | !<mask> | >N | <N | C>N | C<N | T>N | T<N]: ELIST M and
    N (names matching a mask, and not matching one), U (members), C and T (minutes since the
    channel was created, or its topic set)."""
    state = s.server.state
    masks: list[str] = []
    not_masks: list[str] = []
    bounds: list[tuple[Callable[[Channel, float], float | None], str, int]] = []
    for item in split_targets(msg.params[0]) if msg.params else []:
        letter = item[0] if item[0] in "CT" else ""
        bound = item[len(letter):]
        if bound[:1] in ("<", ">") and bound[1:].isdigit():
            bounds.append((LIST_MEASURES[letter], bound[0], int(bound[1:])))
        elif item[0] == "!" and len(item) > 1:
            not_masks.append(item[1:])
        else:
            masks.append(item)
    now = time.time()
    s.numeric(N.RPL_LISTSTART, "Channel")
    for chan in list(state.channels.values()):
        if not state.may_see(s.cid, chan):
            continue
        if masks and not any(matches(mask, chan.name) for mask in masks):
            continue
        if any(matches(mask, chan.name) for mask in not_masks):
            continue
        if not all(_within(measure(chan, now), sign, limit) for measure, sign, limit in bounds):
            continue
        s.numeric(N.RPL_LIST, chan.name, str(len(chan.members)),
                  f"[{chan.mode_string(with_key=False)[0]}] {chan.topic}")
    s.numeric(N.RPL_LISTEND)


def _within(value: float | None, sign: str, limit: int) -> bool:
    return value is not None and (value < limit if sign == "<" else value > limit)


def kick(s: Session, msg: Message) -> None:
    """KICK <channel> <user>{,<user>} [<comment>]: one request per user."""
    channels = split_targets(msg.params[0])
    nicks = split_targets(msg.params[1])
    reason = truncate_utf8(msg.params[2], KICKLEN) if len(msg.params) > 2 and msg.params[2] else s.nick
    if len(channels) == 1:
        pairs = [(channels[0], nick) for nick in nicks]
    elif len(channels) == len(nicks):
        pairs = list(zip(channels, nicks))
    else:
        raise Reply(N.ERR_NEEDMOREPARAMS, "KICK")
    for name, nick in pairs:
        s.request((link.R_KICK, s.cid, name, nick, reason))


def invite(s: Session, msg: Message) -> None:
    """INVITE <nick> <channel>; INVITE alone lists the channels the client is invited to."""
    if not msg.params:
        invitations(s)
    elif len(msg.params) < 2:
        raise Reply(N.ERR_NEEDMOREPARAMS, "INVITE")
    else:
        s.request((link.R_INVITE, s.cid, msg.params[0], msg.params[1]))


def invitations(s: Session) -> None:
    state = s.server.state
    for key in state.users[s.cid].invited_to:  # a joined or vanished channel's key stays behind here
        chan = state.channels.get(key)
        if chan is not None and s.cid in chan.invited:
            s.numeric(N.RPL_INVITELIST, chan.name)
    s.numeric(N.RPL_ENDOFINVITELIST)


def rename(s: Session, msg: Message) -> None:
    """RENAME <channel> <new name> [<reason>] (IRCv3 draft/channel-rename): the hub checks the
    rest (403, 442, 482, FAIL RENAME CHANNEL_NAME_IN_USE) and renames it everywhere at once."""
    name, new_name = msg.params[0], msg.params[1]
    if not is_valid_channel(new_name, s.server.config.limits.channellen):
        s.send("FAIL", "RENAME", "CANNOT_RENAME", name, "*", "That is not a valid channel name")
        return
    reason = truncate_utf8(msg.params[2], KICKLEN) if len(msg.params) > 2 else ""
    s.request((link.R_RENAME, s.cid, name, new_name, reason))
