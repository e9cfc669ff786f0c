"""Sending messages (Modern IRC "Sending Messages"): PRIVMSG, NOTICE, and IRCv3 TAGMSG.

The line every recipient will see is rendered once, here, and travels through the hub as
bytes, with an origin id that the hub makes the message's msgid (a replay after a hub restart
keeps it, so a copy is dropped by it); the hub stamps the time. The hub checks that the target
exists (and that the sender may speak in a channel) in the same order as every other event, so a PRIVMSG right after a JOIN always follows the JOIN.
NOTICE never provokes an error reply (Modern IRC: automatic replies must not be sent to it).
Client-only tags (`+name=value`, IRCv3 message-tags) travel with the message as one escaped
string and reach only recipients with message-tags; TAGMSG carries nothing else. A bot's
(user mode +B) messages carry the `bot` tag in that same string, so marking them costs the
delivery nothing. A message to `@#chan` or `+#chan` (STATUSMSG) reaches only the members with
at least that status.
"""
from __future__ import annotations

import time

from ipc import link
from accounts.names import is_service_nick
from ircproto import numerics as N
from ircproto.caps import ECHO_MESSAGE
from ircproto.casemap import is_channel_name, is_valid_channel, is_valid_nick
from ircproto.message import Message, escape_tag_value, format_line
from ircproto.modes import BOT_MODE, STATUS_RANK
from workers.handlers import nickserv
from workers.handlers.common import Reply, split_targets
from workers.session import Session


def _refusal(s: Session, msg: Message, targets: list[str]) -> Reply | None:
    if not targets:
        return Reply(N.ERR_NORECIPIENT, f"No recipient given ({msg.command})")
    if msg.command != "TAGMSG" and (len(msg.params) < 2 or not msg.params[1]):
        return Reply(N.ERR_NOTEXTTOSEND)
    if len(targets) > s.server.config.limits.maxtargets:
        return Reply(N.ERR_TOOMANYTARGETS, msg.params[0])
    return None


def _client_tags(msg: Message) -> str:
    return ";".join(k + "=" + escape_tag_value(v) if v else k for k, v in msg.tags.items() if k[:1] == "+")


def _send(s: Session, msg: Message, quiet: bool) -> None:
    targets = split_targets(msg.params[0]) if msg.params else []
    refusal = _refusal(s, msg, targets)
    if refusal is not None:
        if quiet:
            return
        raise refusal
    text = msg.params[1:2]  # none for TAGMSG
    worker = s.server  # ServerView
    state = worker.state
    limits = worker.config.limits
    flags = (link.MSG_QUIET if quiet else 0) | (link.MSG_ECHO if ECHO_MESSAGE in s.caps else 0)
    if msg.command == "TAGMSG":
        flags |= link.MSG_TAGMSG
    elif is_restricted_ctcp(msg.params[1]):
        flags |= link.MSG_CTCP
    tags = _client_tags(msg) if msg.tags else ""
    if BOT_MODE in state.users[s.cid].modes:  # IRCv3 bot-mode: with the client tags, it reaches message-tags clients
        tags = "bot;" + tags if tags else "bot"
    s.idle_since = time.time()
    for target in targets:
        to_status = ""
        if target[0] in STATUS_RANK:
            to_status, target = split_status_prefix(target)
        is_channel = is_channel_name(target)
        if not (is_valid_channel(target, limits.channellen) if is_channel else is_valid_nick(target, limits.nicklen)):
            if not quiet:  # a name that cannot exist does not
                s.numeric(N.ERR_NOSUCHCHANNEL if is_channel else N.ERR_NOSUCHNICK, target)
            continue
        if not is_channel and not to_status and is_service_nick(target):
            if msg.command == "PRIVMSG":  # answered here, never relayed: it may carry a password
                nickserv.message(s, msg.params[1])
            continue
        origin = worker.next_msgid()  # the hub makes it the message's msgid, and stamps the time
        if is_channel:
            chan = state.channel(target)
            line = format_line(s.prefix, msg.command, to_status + (chan.name if chan else target), *text)
            s.request((link.R_CHANMSG, s.cid, to_status + target, line, origin, flags, tags))
        else:
            user = state.user_by_nick(target)
            line = format_line(s.prefix, msg.command, user.nick if user else target, *text)
            s.request((link.R_USERMSG, s.cid, target, line, origin, flags, tags))


def split_status_prefix(target: str) -> tuple[str, str]:
    """('@', '#chan') for the STATUSMSG target '@#chan', ('', target) for any other. Of several
    prefixes ('@+#chan') the lowest counts, as in ergo: the message reaches everyone it names."""
    bare = target.lstrip(STATUS_RANK)
    if len(bare) == len(target) or not is_channel_name(bare):
        return "", target
    return max(target[:len(target) - len(bare)], key=STATUS_RANK.index), bare


def is_restricted_ctcp(text: str) -> bool:
    """A CTCP other than ACTION: what +C refuses (ACTION is ordinary speech, as ergo treats it)."""
    return text[:1] == "\x01" and not text.startswith("\x01ACTION")


def privmsg(s: Session, msg: Message) -> None:
    _send(s, msg, quiet=False)


def notice(s: Session, msg: Message) -> None:
    _send(s, msg, quiet=True)


def tagmsg(s: Session, msg: Message) -> None:
    _send(s, msg, quiet=False)
