"""Sending messages (Modern IRC "Sending Messages"): PRIVMSG and NOTICE.

The line every recipient will see is rendered once, here, and travels through the hub as
bytes. The hub checks that the target exists (and that the sender may speak in a channel) in
the same order as every other event, so a PRIVMSG right after a JOIN always follows the JOIN.
NOTICE never provokes an error reply (Modern IRC: automatic replies must not be sent to it).
"""
from __future__ import annotations

import time

from hub import link
from ircproto import numerics as N
from ircproto.casemap import is_channel_name
from ircproto.message import Message, format_line
from workers.handlers.common import Reply, split_targets
from workers.session import Session


def _send(s: Session, msg: Message, quiet: bool) -> None:
    targets = split_targets(msg.params[0]) if msg.params else []
    if not targets:
        if quiet:
            return
        raise Reply(N.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
    if len(msg.params) < 2 or not msg.params[1]:
        if quiet:
            return
        raise Reply(N.ERR_NOTEXTTOSEND, "No text to send")
    if len(targets) > s.worker.config.limits.maxtargets:
        if quiet:
            return
        raise Reply(N.ERR_TOOMANYTARGETS, msg.params[0], "Too many targets")
    text = msg.params[1]
    state = s.worker.state
    worker = s.worker
    for target in targets:
        msgid = worker.next_msgid()
        now = time.time()
        if is_channel_name(target):
            chan = state.channel(target)
            line = format_line(s.prefix, msg.command, chan.name if chan else target, text)
            worker.request((link.R_CHANMSG, s.cid, target, line, msgid, now, quiet))
        else:
            user = state.user_by_nick(target)
            line = format_line(s.prefix, msg.command, user.nick if user else target, text)
            worker.request((link.R_USERMSG, s.cid, target, line, msgid, now, quiet))


def privmsg(s: Session, msg: Message) -> None:
    _send(s, msg, quiet=False)


def notice(s: Session, msg: Message) -> None:
    _send(s, msg, quiet=True)
