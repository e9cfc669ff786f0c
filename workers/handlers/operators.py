"""IRC operators (Modern IRC "Operator Messages"): OPER, KILL, WALLOPS, REHASH, and CHGHOST
(the IRCv3 chghost event's command, as InspIRCd and UnrealIRCd spell it).

Operators are named in the configuration's [operators] table, where only password hashes are
stored. The hub checks operator status (user mode +o) for every power, so no worker's view can
be out of date; the worker checks it too, to answer 481 without a round trip.
"""
from __future__ import annotations

import logging
import re

from config.passwords import verify
from ipc import link
from ircproto import numerics as N
from ircproto.message import Message, format_line
from workers.handlers.common import Reply
from workers.session import Session

log = logging.getLogger("hubchat.operators")
_HOSTNAME = re.compile(r"[A-Za-z0-9.:-]{1,63}\Z")
_USERNAME = re.compile(r"[A-Za-z0-9._~-]{1,10}\Z")


def oper(s: Session, msg: Message) -> None:
    name, password = msg.params[0], msg.params[1]
    hashed = s.server.config.operators.get(name)
    if hashed is None:
        raise Reply(N.ERR_NOOPERHOST)
    # scrypt takes tens of milliseconds: check it on a thread, holding this client's later
    # lines meanwhile, so guessing passwords cannot stall everyone else on the worker.
    s.await_answer()
    s.server.run_blocking(lambda ok: _answer(s, name, ok), verify, password, hashed)


def _answer(s: Session, name: str, ok: bool) -> None:
    if s.closed:
        return
    if ok:
        log.info("%s is now an IRC operator (as %s)", s.prefix, name)
        s.numeric(N.RPL_YOUREOPER)
        s.request((link.R_OPER, s.cid))  # the MODE +o echo comes with the hub's event
    else:
        log.warning("failed OPER attempt as %s by %s", name, s.prefix)
        s.numeric(N.ERR_PASSWDMISMATCH)
    s.resume()


def _require_operator(s: Session) -> None:
    user = s.server.state.users.get(s.cid)
    if user is None or "o" not in user.modes:
        raise Reply(N.ERR_NOPRIVILEGES)


def kill(s: Session, msg: Message) -> None:
    _require_operator(s)
    s.request((link.R_KILL, s.cid, msg.params[0], msg.params[1]))


def wallops(s: Session, msg: Message) -> None:
    _require_operator(s)
    s.request((link.R_WALLOPS, s.cid, format_line(s.prefix, "WALLOPS", msg.params[0])))


def rehash(s: Session, msg: Message) -> None:
    """Reload the configuration exactly as SIGHUP does: the supervisor re-reads it for everyone."""
    _require_operator(s)
    s.numeric(N.RPL_REHASHING, "configuration")
    log.info("%s asked for a rehash", s.prefix)
    s.server.rehash()


def chghost(s: Session, msg: Message) -> None:
    _require_operator(s)
    nick, user, host = msg.params[0], msg.params[1], msg.params[2]
    if not _USERNAME.match(user) or not _HOSTNAME.match(host) or host[0] == ":":
        s.send("FAIL", "CHGHOST", "INVALID_PARAMS", "Invalid user name or host name")
        return
    s.request((link.R_CHGHOST, s.cid, nick, user, host))
    s.wait_for_hub()  # an operator may change their own host: their next lines must carry the new one
