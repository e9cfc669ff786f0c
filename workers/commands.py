"""The verb table: each IRC command mapped to its handler, minimum parameters and whether it is
allowed before registration. The dispatcher does those generic checks once, so a handler only
implements its own paragraph of the spec. A handler raises `Reply` to answer with an error."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

from ircproto import numerics as N
from ircproto.message import Message
from workers.handlers import (accounts, channels, history, messages, modes, monitor, nickserv, operators, queries,
                              read_marker, redaction, registration, server, users)
from workers.handlers.common import Reply
from workers.session import Session

log = logging.getLogger("hubchat.commands")


@dataclass(frozen=True, slots=True)
class Command:
    handler: Callable[[Session, Message], None]
    min_params: int = 0
    before_registration: bool = False
    # Answered from the replica: only once the client's earlier changes are in it. A function says
    # so of each message (a PRIVMSG to NickServ reads the replica; any other PRIVMSG does not).
    reads_state: bool | Callable[[Message], bool] = False


COMMANDS: dict[str, Command] = {
    # Connection registration
    "CAP": Command(registration.cap, 1, before_registration=True),
    "PASS": Command(registration.pass_, 1, before_registration=True),
    "NICK": Command(registration.nick, 0, before_registration=True),
    "USER": Command(registration.user, 4, before_registration=True),
    "PING": Command(registration.ping, 1, before_registration=True),
    "PONG": Command(registration.pong, 0, before_registration=True),
    "QUIT": Command(registration.quit, 0, before_registration=True),
    # Accounts (sasl 3.1/3.2, draft/account-registration); REGISTER checks before-connect itself
    # AUTHENTICATE reads the accounts from the replica: only once it holds what the hub had (right
    # after a start, before the first sync, it holds none, and a good password would be refused).
    "AUTHENTICATE": Command(accounts.authenticate, 1, before_registration=True, reads_state=True),
    "REGISTER": Command(accounts.register, 0, before_registration=True),
    # NickServ (workers/handlers/nickserv.py), also as /msg NickServ: it reads accounts from the replica
    "NICKSERV": Command(nickserv.command, 0, reads_state=True),
    "NS": Command(nickserv.command, 0, reads_state=True),
    # Channel operations
    "JOIN": Command(channels.join, 1),
    "PART": Command(channels.part, 1),
    "TOPIC": Command(channels.topic, 1, reads_state=True),
    "NAMES": Command(channels.names, 0, reads_state=True),
    "LIST": Command(channels.list_, 0, reads_state=True),
    "KICK": Command(channels.kick, 2),
    "INVITE": Command(channels.invite, 0, reads_state=True),  # alone, it lists the client's invitations
    "RENAME": Command(channels.rename, 2),
    "MODE": Command(modes.mode, 1, reads_state=True),
    # Messages
    "PRIVMSG": Command(messages.privmsg, 0, reads_state=nickserv.addressed),
    "NOTICE": Command(messages.notice, 0),
    "TAGMSG": Command(messages.tagmsg, 0),
    # User queries and presence
    "WHO": Command(queries.who, 1, reads_state=True),
    "WHOIS": Command(queries.whois, 1, reads_state=True),
    "WHOWAS": Command(queries.whowas, 1, reads_state=True),
    "ISON": Command(queries.ison, 1, reads_state=True),
    "USERHOST": Command(queries.userhost, 1, reads_state=True),
    "MONITOR": Command(monitor.monitor, 1, reads_state=True),  # + and S answer from the replica
    "AWAY": Command(users.away, 0),
    "SETNAME": Command(users.setname, 1),
    # Server queries
    "MOTD": Command(server.motd, 0),
    "LUSERS": Command(server.lusers, 0, reads_state=True),
    "VERSION": Command(server.version, 0),
    "TIME": Command(server.time_, 0),
    "ADMIN": Command(server.admin, 0),
    "INFO": Command(server.info, 0),
    "HELP": Command(server.help_, 0),
    "HELPOP": Command(server.help_, 0),  # the name some servers and clients use
    # Operators
    "OPER": Command(operators.oper, 2),
    "KILL": Command(operators.kill, 2, reads_state=True),
    "WALLOPS": Command(operators.wallops, 1, reads_state=True),
    "REHASH": Command(operators.rehash, 0, reads_state=True),
    "CHGHOST": Command(operators.chghost, 3, reads_state=True),
    # History (IRCv3 draft/chathistory, soju.im/search): the hub answers, so no barrier first;
    # no minimum, so a missing parameter gets the spec's FAIL rather than 461
    "CHATHISTORY": Command(history.chathistory, 0),
    "SEARCH": Command(history.search, 0),
    # IRCv3 draft/message-redaction and draft/read-marker: the hub answers, so no barrier first.
    # MARKREAD has no minimum: the spec answers a missing target with FAIL NEED_MORE_PARAMS
    "REDACT": Command(redaction.redact, 2),
    "MARKREAD": Command(read_marker.markread, 0),
}


def reads_state(msg: Message) -> bool:
    found = COMMANDS.get(msg.command)
    if found is None:
        return False
    test = found.reads_state
    return test if test.__class__ is bool else test(msg)  # type: ignore[operator, return-value]


HTTP_METHODS = {"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"}


def dispatch(s: Session, msg: Message) -> None:
    command = COMMANDS.get(msg.command)
    if not s.registered and _refused_before_registration(s, msg):
        return
    if not s.registered and (command is None or not command.before_registration):
        s.numeric(N.ERR_NOTREGISTERED)
        return
    if command is None:
        s.numeric(N.ERR_UNKNOWNCOMMAND, msg.command)
        return
    if len(msg.params) < command.min_params:
        s.numeric(N.ERR_NEEDMOREPARAMS, msg.command)
        return
    try:
        command.handler(s, msg)
    except Reply as reply:
        s.numeric(reply.numeric, *reply.params)
    except Exception:  # a bug must cost one command, never the connection or the worker
        log.exception("%s from %s failed", msg.command, s.display_nick)
        s.numeric(N.ERR_UNKNOWNERROR, msg.command, "Internal error; the command was not completed")


def _refused_before_registration(s: Session, msg: Message) -> bool:
    """A web browser, or a connection that talks a lot without registering, is shown the door."""
    if msg.command in HTTP_METHODS and msg.params and msg.params[-1].startswith("HTTP/"):
        s.close("This is an IRC server, not a web server: connect to it with an IRC client")
        return True
    s.lines_before_registration += 1
    if s.lines_before_registration > s.server.config.limits.max_commands_before_registration:
        s.close("Too many commands before registration")
        return True
    return False
