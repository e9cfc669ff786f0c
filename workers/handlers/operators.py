"""OPER (Modern IRC "OPER message"): become an IRC operator with a name and password from the
configuration's [operators] table, where only password hashes are stored."""
from __future__ import annotations

import asyncio

from config.passwords import verify
from ircproto import numerics as N
from ircproto.message import Message
from workers.handlers.common import Reply
from workers.session import Session


def oper(s: Session, msg: Message) -> None:
    name, password = msg.params[0], msg.params[1]
    hashed = s.worker.config.operators.get(name)
    if hashed is None:
        raise Reply(N.ERR_NOOPERHOST, "No O-lines for your host")
    # scrypt takes tens of milliseconds: check it on a thread, holding this client's later
    # lines meanwhile, so guessing passwords cannot stall everyone else on the worker.
    s.waiting = True
    check = asyncio.get_running_loop().run_in_executor(None, verify, password, hashed)
    check.add_done_callback(lambda done: _answer(s, done.result()))


def _answer(s: Session, ok: bool) -> None:
    if s.closed:
        return
    if ok:
        s.oper = True
        s.numeric(N.RPL_YOUREOPER, "You are now an IRC operator")
        s.send("MODE", s.display_nick, "+o", source=s.display_nick)
    else:
        s.numeric(N.ERR_PASSWDMISMATCH, "Password incorrect")
    s.resume()
