"""Connection registration (Modern IRC "Connection Registration") and keep-alive: CAP, PASS, NICK,
USER, PING, PONG, QUIT."""
from __future__ import annotations

import re

from hub import link
from ircproto import numerics as N
from ircproto.casemap import casefold, is_valid_nick
from ircproto.message import Message
from workers import replies
from workers.handlers.common import Reply
from workers.session import Session

SUPPORTED_CAPS: dict[str, str] = {}  # name -> CAP LS 302 value; only what is implemented is listed
USERLEN = 10
_USERNAME_JUNK = re.compile(r"[^A-Za-z0-9._-]")


def cap(s: Session, msg: Message) -> None:
    sub = msg.params[0].upper()
    if sub == "LS":
        if not s.registered:
            s.cap_negotiating = True  # registration now waits for CAP END
        s.send("CAP", s.display_nick, "LS", " ".join(SUPPORTED_CAPS))
    elif sub == "REQ":
        if not s.registered:
            s.cap_negotiating = True
        wanted = msg.params[1] if len(msg.params) > 1 else ""
        names = [c.lstrip("-") for c in wanted.split()]
        verdict = "ACK" if names and all(n in SUPPORTED_CAPS for n in names) else "NAK"
        s.send("CAP", s.display_nick, verdict, wanted)
    elif sub == "LIST":
        s.send("CAP", s.display_nick, "LIST", "")
    elif sub == "END":
        if s.cap_negotiating:
            s.cap_negotiating = False
            try_register(s)
    else:
        raise Reply(N.ERR_INVALIDCAPCMD, msg.params[0], "Invalid CAP command")


def pass_(s: Session, msg: Message) -> None:
    if s.registered:
        raise Reply(N.ERR_ALREADYREGISTERED, "You may not reregister")
    s.password = msg.params[0]


def nick(s: Session, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        raise Reply(N.ERR_NONICKNAMEGIVEN, "No nickname given")
    new = msg.params[0]
    if not is_valid_nick(new, s.worker.config.limits.nicklen):
        raise Reply(N.ERR_ERRONEUSNICKNAME, new, "Erroneous nickname")
    if not s.registered:
        s.nick = new
        try_register(s)
        return
    if new == s.nick:
        return
    holder = s.worker.state.nicks.get(casefold(new))
    if holder is not None and holder != s.cid:
        raise Reply(N.ERR_NICKNAMEINUSE, new, "Nickname is already in use")
    # The hub has the final word (another worker may be claiming it right now).
    s.ask_hub((link.R_NICK, s.cid, new))


def user(s: Session, msg: Message) -> None:
    if s.registered:
        raise Reply(N.ERR_ALREADYREGISTERED, "You may not reregister")
    username, realname = msg.params[0], msg.params[3]
    username = _USERNAME_JUNK.sub("", username)[:USERLEN]
    if not username:
        raise Reply(N.ERR_NEEDMOREPARAMS, "USER", "Not enough parameters")
    s.user = "~" + username  # '~': the username was not verified by ident
    s.realname = realname
    try_register(s)


def try_register(s: Session) -> None:
    """Ask the hub for the nick once NICK, USER and any CAP negotiation are done."""
    if s.registered or s.waiting or s.cap_negotiating or not s.nick or not s.user:
        return
    password = s.worker.config.server.password
    if password and s.password != password:
        s.numeric(N.ERR_PASSWDMISMATCH, "Password incorrect")
        s.close("Bad password")
        return
    s.ask_hub((link.R_REGISTER, s.cid, s.nick, s.user, s.host, s.realname))


def registered(s: Session) -> None:
    """The hub granted the nick: the client is now registered."""
    s.registered = True
    replies.welcome(s)


def ping(s: Session, msg: Message) -> None:
    s.send("PONG", s.worker.server_name, msg.params[0])


def pong(s: Session, msg: Message) -> None:
    """Any input already counts as activity; nothing else to do."""


def quit(s: Session, msg: Message) -> None:
    reason = msg.params[0] if msg.params and msg.params[0] else ""
    reason = f"Quit: {reason}" if reason else "Quit"
    if not s.registered:
        s.close(reason)
        return
    # Through the hub like every other request, so the answers to what the client sent
    # before QUIT (a 401, say) reach it before the connection closes (events.on_quit).
    s.ask_hub((link.R_QUIT, s.cid, reason))
