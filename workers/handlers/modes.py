"""MODE (Modern IRC "MODE message") for channels and for the client's own user modes.

The worker parses the mode string (unknown letters, missing or bad parameters) and answers
list queries (+b, +e or +I with no mask) from the replica; the changes themselves go to the hub, which
checks operator status and targets and broadcasts only what actually changed.
"""
from __future__ import annotations

from ipc import link
from chatstate.state import Channel
from ircproto import numerics as N
from ircproto.casemap import casefold, is_channel_name
from ircproto.masks import normalize_list_mask
from ircproto.message import Message
from ircproto.modes import (ACTING_LIST_MODES, BAN_MODE, EXCEPT_MODE, FLAG_MODES, INVEX_MODE, KEY_MODE, LIMIT_MODE,
                            LIST_MODES, MODES_PER_COMMAND, STATUS_OF_MODE, USER_MODES)
from workers.handlers.common import Reply
from workers.session import Session

MAX_KEY = 23


def mode(s: Session, msg: Message) -> None:
    target = msg.params[0]
    if is_channel_name(target):
        channel_mode(s, target, msg.params[1:])
    else:
        user_mode(s, target, msg.params[1:])


def channel_mode(s: Session, name: str, params: list[str]) -> None:
    state = s.server.state
    chan = state.channel(name)
    if chan is None or not state.may_see(s.cid, chan):
        raise Reply(N.ERR_NOSUCHCHANNEL, name)
    if not params:
        s.numeric(N.RPL_CHANNELMODEIS, chan.name, *chan.mode_string(with_key=s.cid in chan.members))
        s.numeric(N.RPL_CREATIONTIME, chan.name, str(int(chan.created)))
        return
    args = iter(params[1:])
    changes: list[tuple[str, str, str]] = []
    with_param = 0
    sign = "+"
    for letter in params[0]:
        if letter in "+-":
            sign = letter
        elif letter in LIST_MODES:
            mask = next(args, None)
            if mask is None:
                mask_list(s, chan, letter)
            elif normalize_list_mask(mask, acting=letter in ACTING_LIST_MODES) is None:
                s.numeric(N.ERR_INVALIDMODEPARAM, chan.name, letter, mask, "Unknown or invalid extended ban")
            elif with_param < MODES_PER_COMMAND and mask.strip():
                with_param += 1
                changes.append((sign, letter, mask))
        elif letter in STATUS_OF_MODE:
            nick = next(args, None)
            if nick is not None and with_param < MODES_PER_COMMAND:
                with_param += 1
                changes.append((sign, letter, nick))
        elif letter == KEY_MODE:
            key = next(args, None)  # -k takes the key too (RFC 2812), though any key will do
            if sign == "-":
                changes.append((sign, letter, ""))
            elif key is None:
                s.numeric(N.ERR_NEEDMOREPARAMS, "MODE")
            elif not key or len(key) > MAX_KEY or any(c in key for c in " ,:") or not key.isprintable():
                s.numeric(N.ERR_INVALIDMODEPARAM, chan.name, KEY_MODE, "*", "Invalid key")  # a bad key is not echoed
            else:
                changes.append((sign, letter, key))
        elif letter == LIMIT_MODE:
            if sign == "-":
                changes.append((sign, letter, ""))
                continue
            limit = next(args, None)
            if limit is None:
                s.numeric(N.ERR_NEEDMOREPARAMS, "MODE")
            elif not limit.isdigit() or not 0 < int(limit) < 1 << 31:
                s.numeric(N.ERR_INVALIDMODEPARAM, chan.name, LIMIT_MODE, limit, "Invalid limit")
            else:
                changes.append((sign, letter, str(int(limit))))
        elif letter in FLAG_MODES:
            changes.append((sign, letter, ""))
        else:
            s.numeric(N.ERR_UNKNOWNMODE, letter)
    if changes:
        s.request((link.R_MODE, s.cid, chan.name, tuple(changes)))


# Each list mode's entry and end numerics.
LIST_REPLIES = {
    BAN_MODE: (N.RPL_BANLIST, N.RPL_ENDOFBANLIST),
    EXCEPT_MODE: (N.RPL_EXCEPTLIST, N.RPL_ENDOFEXCEPTLIST),
    INVEX_MODE: (N.RPL_INVEXLIST, N.RPL_ENDOFINVEXLIST),
}


def mask_list(s: Session, chan: Channel, letter: str) -> None:
    """A list mode's entries, to anyone who may see the channel (as +b always was)."""
    entry, end = LIST_REPLIES[letter]
    for mask, setter, ts in chan.mask_list(letter):
        s.numeric(entry, chan.name, mask, setter or s.server.server_name, str(int(ts)))
    s.numeric(end, chan.name)


def user_mode(s: Session, nick: str, params: list[str]) -> None:
    if casefold(nick) != casefold(s.nick or ""):
        if s.server.state.user_by_nick(nick) is None:
            raise Reply(N.ERR_NOSUCHNICK, nick)
        raise Reply(N.ERR_USERSDONTMATCH)
    user = s.server.state.users[s.cid]
    if not params:
        s.numeric(N.RPL_UMODEIS, "+" + user.modes)
        return
    wanted = "".join(c for c in params[0] if c in "+-" + USER_MODES)
    if len(wanted) != len(params[0]):
        s.numeric(N.ERR_UMODEUNKNOWNFLAG)
    if any(c not in "+-" for c in wanted):
        s.request((link.R_UMODE, s.cid, wanted))
        s.wait_for_hub()  # +B changes how this client's next messages are rendered
