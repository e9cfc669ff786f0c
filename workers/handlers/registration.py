"""Connection registration (Modern IRC "Connection Registration") and keep-alive: CAP, PASS, NICK,
USER, PING, PONG, QUIT."""
from __future__ import annotations

import re

from ipc import link
from ircproto import numerics as N
from accounts import names
from ircproto.caps import ACCOUNT_CAPS, ACCOUNT_REGISTRATION, CAP_NOTIFY, CAPABILITIES, HISTORY_CAPS, SEARCH
from ircproto.casemap import casefold, is_valid_nick
from ircproto.message import Message
from workers import replies
from workers.handlers import accounts
from workers.handlers.common import Reply
from workers.isupport import USERLEN
from workers.session import Session

CAP_LS_LINE = 400  # bytes of capability names per CAP LS line before it continues on another
_USERNAME_JUNK = re.compile(r"[^A-Za-z0-9._-]")
USERNAME_FALLBACK = "user"  # the ident of a username with no allowed character in it (as ergo does)


def cap(s: Session, msg: Message) -> None:
    """CAP LS/LIST/REQ/END (IRCv3 capability negotiation, version 302)."""
    sub = msg.params[0].upper()
    if sub in ("LS", "REQ") and not s.registered:
        s.cap_began()  # registration now waits for CAP END
    if sub == "LS":
        version = msg.params[1] if len(msg.params) > 1 and msg.params[1].isdigit() else "0"
        if int(version) >= 302:
            s.set_caps(s.caps | {CAP_NOTIFY})  # implied by 302
        _cap_list(s, "LS", [f"{name}={value}" if value and int(version) >= 302 else name
                            for name, value in offered(s).items()])
    elif sub == "LIST":
        _cap_list(s, "LIST", sorted(s.caps))
    elif sub == "REQ":
        wanted = msg.params[1] if len(msg.params) > 1 else ""
        changes = wanted.split()
        caps_offered = offered(s)
        if changes and all(c.lstrip("-") in caps_offered for c in changes):  # all or nothing
            caps = set(s.caps)
            for change in changes:
                (caps.discard if change[0] == "-" else caps.add)(change.lstrip("-"))
            s.set_caps(caps)
            s.send("CAP", s.display_nick, "ACK", wanted)
        else:
            s.send("CAP", s.display_nick, "NAK", wanted)
    elif sub == "END":
        if s.cap_negotiating:
            s.cap_ended()
            try_register(s)
    else:
        raise Reply(N.ERR_INVALIDCAPCMD, msg.params[0])


def offered(s: Session) -> dict[str, str]:
    """The capabilities this server offers, with their values: the history and account ones only
    with history on (accounts are kept in its database), soju.im/search only with history.search on,
    draft/account-registration only when REGISTER is allowed."""
    config = s.server.config
    accounts = config.history.enabled
    found = {}
    for name, capability in CAPABILITIES.items():
        if (name in ACCOUNT_CAPS or name in HISTORY_CAPS) and not accounts:
            continue
        if name == SEARCH and not config.history.search:
            continue
        if name == ACCOUNT_REGISTRATION:
            if not config.accounts.registration_enabled:
                continue
            found[name] = names.capability_value(before_connect=config.accounts.registration_before_connect,
                                                 email_required=config.accounts.registration_requires_email)
            continue
        found[name] = capability.value
    return found


def _cap_list(s: Session, sub: str, names: list[str]) -> None:
    lines: list[list[str]] = [[]]
    for name in names:
        if lines[-1] and sum(len(n) + 1 for n in lines[-1]) + len(name) > CAP_LS_LINE:
            lines.append([])
        lines[-1].append(name)
    for i, line in enumerate(lines):
        more = ["*"] if i < len(lines) - 1 else []
        s.send("CAP", s.display_nick, sub, *more, " ".join(line))


def pass_(s: Session, msg: Message) -> None:
    if s.registered:
        raise Reply(N.ERR_ALREADYREGISTERED)
    s.password = msg.params[0]


def nick(s: Session, msg: Message) -> None:
    if not msg.params or not msg.params[0]:
        raise Reply(N.ERR_NONICKNAMEGIVEN)
    new = msg.params[0]
    if not is_valid_nick(new, s.server.config.limits.nicklen):
        raise Reply(N.ERR_ERRONEUSNICKNAME, new)
    if not s.registered:
        s.nick = new
        try_register(s)
        return
    if new == s.nick:
        return
    holder = s.server.state.nicks.get(casefold(new))
    if holder is not None and holder != s.cid:
        raise Reply(N.ERR_NICKNAMEINUSE, new)
    # The hub has the final word (another worker may be claiming it right now).
    s.ask_hub((link.R_NICK, s.cid, new))


def user(s: Session, msg: Message) -> None:
    if s.registered:
        raise Reply(N.ERR_ALREADYREGISTERED)
    username, realname = msg.params[0], msg.params[3]
    if not realname:  # Modern IRC: an empty realname is a missing parameter
        raise Reply(N.ERR_NEEDMOREPARAMS, "USER")
    # A username is a hint we cannot check: unusable characters are dropped, never refused.
    username = _USERNAME_JUNK.sub("", username)[:USERLEN] or USERNAME_FALLBACK
    s.user = "~" + username  # '~': the username was not verified by ident
    s.realname = realname
    try_register(s)


def try_register(s: Session) -> None:
    """Ask the hub for the nick once NICK, USER and any CAP negotiation are done."""
    if s.registered or s.waiting or s.cap_negotiating or not s.nick or not s.user:
        return
    password = s.server.config.server.password
    if password and s.password != password:
        s.numeric(N.ERR_PASSWDMISMATCH)
        s.close("Bad password")
        return
    if accounts.pass_login_pending(s):
        accounts.login_with_pass(s, try_register)  # registration goes on once the hub has answered
        return
    accounts.abort_on_registration(s)
    s.ask_to_register((link.R_REGISTER, s.cid, s.nick, s.user, s.host, s.realname, accounts.account_key(s)))


def registered(s: Session) -> None:
    """The hub granted the nick: the client is now registered."""
    if s.closed:
        return
    s.registration_granted()
    replies.welcome(s)


def ping(s: Session, msg: Message) -> None:
    s.send("PONG", s.server.server_name, msg.params[0])


def pong(s: Session, msg: Message) -> None:
    """Any input already counts as activity; nothing else to do."""


def quit(s: Session, msg: Message) -> None:
    reason = msg.params[0] if msg.params and msg.params[0] else ""
    reason = f"Quit: {reason}" if reason else "Quit"
    if not s.registered:
        s.close(reason)
        return
    # Through the hub like every other request, so the answers to what the client sent
    # before QUIT (a 401, say) reach it before the connection closes (replica_events.on_quit).
    s.ask_hub((link.R_QUIT, s.cid, reason))
