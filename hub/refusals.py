"""Why the hub refuses a request, as plain functions of the state: each answers "why not?" (a
numeric's text, or a code and text) or None when the request may go ahead. `hub.policy` calls
them and turns a refusal into a reply."""
from __future__ import annotations

from chatstate.state import Channel, User, has_status
from ircproto.modes import VOICE_STATUS
from ircproto import numerics as N
from ircproto.casemap import casefold

CANNOT_SEND = "Cannot send to channel"


def speak_refusal(chan: Channel, status: str | None, user: User | None, ctcp: bool = False,
                  to_status: str = "") -> str | None:
    """Why a sender may not send a message to the channel (the text of 404), or None if it may.
    `status` is the sender's member prefixes, or None when it is not a member; `ctcp` says the
    message is a CTCP other than ACTION; `to_status` is the prefix of a STATUSMSG (@#chan)."""
    if to_status and not has_status(status or "", VOICE_STATUS):  # as solanum: no whispering to ops
        return f"{CANNOT_SEND} (only voiced members and operators may send to {to_status}{chan.name})"
    if ctcp and "C" in chan.modes:  # operators too, as in ergo
        return "Cannot send CTCP to channel (+C)"
    if status:  # +o and +v speak through +n, +m, bans and mutes
        return None
    if (status is None and "n" in chan.modes) or "m" in chan.modes:
        return CANNOT_SEND
    if chan.bans and user is not None:
        if chan.is_banned(user):
            return CANNOT_SEND
        if chan.is_muted(user):
            return CANNOT_SEND + " (you are muted)"
    return None


def rename_refusal(channels: dict[str, Channel], chan: Channel, new_name: str) -> tuple[str, str] | None:
    """Why an operator may not rename the channel (a FAIL RENAME code and text), or None.
    A change of case only is always allowed (draft/channel-rename says it must be)."""
    holder = channels.get(casefold(new_name))
    if holder is not None and holder is not chan:
        return "CHANNEL_NAME_IN_USE", "The channel name is already taken"
    return None


def join_refusal(chan: Channel, user: User, key: str) -> str | None:
    """Why a user may not join an existing channel (the numeric, whose text is fixed), or None."""
    if chan.is_banned(user):
        return N.ERR_BANNEDFROMCHAN
    if "i" in chan.modes and user.cid not in chan.invited and not chan.is_invite_excepted(user):
        return N.ERR_INVITEONLYCHAN
    if chan.key and key != chan.key:
        return N.ERR_BADCHANNELKEY
    if chan.limit and len(chan.members) >= chan.limit:
        return N.ERR_CHANNELISFULL
    return None
