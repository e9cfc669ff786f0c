"""IRCv3 draft/message-redaction: REDACT.

The worker checks the syntax (ircproto/redaction.py) and answers a bad command with its FAIL at
once; a good one becomes a request the hub answers (`R_REDACT`), carrying the line every
recipient will see and its origin id (the REDACT's own msgid, the same through a replay). The
hub decides in two steps around the store (hub/policy.py: `redact`, `redact_found`); the
client's later lines wait (`ask_hub`) until the hub says it has answered (`D_ANSWERED`), after
its FAIL or numeric, or after the REDACT itself, which reaches every member with the capability
(the asker too) as a channel message does (workers/delivery.py `on_redact`).
"""
from __future__ import annotations

from ipc import link
from ircproto.chathistory import Fail
from ircproto.casemap import is_channel_name
from ircproto.message import Message
from ircproto.redaction import parse_redact, redact_line
from workers.session import Session


def redact(s: Session, msg: Message) -> None:
    """REDACT <target> <msgid> [<reason>]."""
    limits = s.server.config.limits
    parsed = parse_redact(msg.params, limits.channellen, limits.nicklen)
    if type(parsed) is Fail:
        s.send("FAIL", parsed.command, parsed.code, *parsed.params)
        return
    target, msgid, reason = parsed
    state = s.server.state
    if is_channel_name(target):
        chan = state.channel(target)
        shown = chan.name if chan is not None else target
    else:
        user = state.user_by_nick(target)
        shown = user.nick if user is not None else target
    line = redact_line(s.prefix, shown, msgid, reason)
    s.ask_hub((link.R_REDACT, s.cid, target, msgid, line, s.server.next_msgid()))


def answered(s: Session) -> None:
    """The hub has sent everything that answers the REDACT: carry on. An answer nothing waits
    for (a replayed request's, after a hub restart) changes nothing."""
    if not s.closed and s.waiting:
        s.resume()
