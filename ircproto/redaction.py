"""IRCv3 draft/message-redaction: `REDACT <target> <msgid> [<reason>]`. Sans-I/O: the command's
parameters in, a request (or the FAIL that refuses it) out; the line members are sent, rendered
once; the FAIL replies the hub decides, with the spec's parameters and texts.

Theory of operation
-------------------
The worker checks the syntax (`parse_redact`) and renders the line every recipient will see
(`redact_line`, `:<prefix> REDACT <target> <msgid> [:<reason>]`, within the line limit). The hub
decides in two steps: whether the asker may name the target at all (a member of the channel;
anyone, for their own private messages), then, once the store has said who wrote the message
and what it is, whether they may redact it (its author, or an operator of its channel). The
refusals are standard replies (`refusal`):

    FAIL REDACT INVALID_TARGET <target> :You cannot delete messages from <target>
    FAIL REDACT REDACT_FORBIDDEN <target> <msgid> :You are not authorised to delete this message
    FAIL REDACT UNKNOWN_MSGID <target> <msgid> :This message does not exist or is too old

(REDACT_WINDOW_EXPIRED is never sent: hubchat has no redaction window.)
"""
from __future__ import annotations

from ircproto.casemap import is_channel_name, is_valid_channel, is_valid_nick
from ircproto.chathistory import NAME_MAX, Fail, echo_param
from ircproto.message import MAX_LINE, format_line, truncate_utf8, wire_length

REDACT = "REDACT"
INVALID_TARGET = "INVALID_TARGET"
REDACT_FORBIDDEN = "REDACT_FORBIDDEN"
UNKNOWN_MSGID = "UNKNOWN_MSGID"

REDACTABLE_KINDS = frozenset({"PRIVMSG", "NOTICE", "TAGMSG"})  # what the spec lets a REDACT name
MSGID_MAX = 100  # bytes: a longer msgid is none of this server's (they are about 20)

_TEXTS = {
    REDACT_FORBIDDEN: "You are not authorised to delete this message",
    UNKNOWN_MSGID: "This message does not exist or is too old",
}


def refusal(code: str, target: str, msgid: str = "", text: str | None = None) -> tuple[str, str, tuple[str, ...]]:
    """`(command, code, params)` of the FAIL refusing a REDACT: INVALID_TARGET names the target;
    REDACT_FORBIDDEN and UNKNOWN_MSGID the target and the msgid. `text` replaces the spec's
    sample description."""
    if code == INVALID_TARGET:
        return (REDACT, code, (echo_param(target), text or f"You cannot delete messages from {echo_param(target)}"))
    return (REDACT, code, (echo_param(target), echo_param(msgid), text or _TEXTS[code]))


def _fail(code: str, target: str, msgid: str = "") -> Fail:
    return Fail(*refusal(code, target, msgid))


def parse_redact(params: list[str], channellen: int = NAME_MAX, nicklen: int = NAME_MAX) -> tuple | Fail:
    """The parameters after `REDACT` (at least two: the command table asks 461 for fewer) to
    `(target, msgid, reason)`, reason "" for none, or the Fail that answers it. Never raises."""
    target, msgid = params[0], params[1]
    if is_channel_name(target):
        valid = is_valid_channel(target, channellen)
    else:
        valid = is_valid_nick(target, nicklen)
    if not valid:
        return _fail(INVALID_TARGET, target)
    if not msgid or wire_length(msgid) > MSGID_MAX or echo_param(msgid) != msgid:
        return _fail(UNKNOWN_MSGID, target, msgid)  # no message of this server has such an id
    reason = params[2] if len(params) > 2 else ""
    return (target, msgid, reason)


def redact_line(prefix: str, target: str, msgid: str, reason: str = "") -> bytes:
    """`:<prefix> REDACT <target> <msgid> [:<reason>]`, CRLF-terminated, the reason cut (on a
    character boundary) so that the line is within MAX_LINE."""
    bare = format_line(prefix, REDACT, target, msgid)
    if not reason:
        return bare
    room = MAX_LINE - len(bare) - 2  # " :" before the reason
    reason = truncate_utf8(reason, max(room, 0))
    return format_line(prefix, REDACT, target, msgid, reason) if reason else bare
