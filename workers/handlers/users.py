"""A client's own presence (Modern IRC AWAY; IRCv3 setname): AWAY and SETNAME go through the hub
so every worker shows the same state."""
from __future__ import annotations

from ipc import link
from ircproto.message import Message, truncate_utf8
from workers.isupport import AWAYLEN, NAMELEN
from workers.session import Session


def away(s: Session, msg: Message) -> None:
    text = truncate_utf8(msg.params[0], AWAYLEN) if msg.params else ""
    s.request((link.R_AWAY, s.cid, text))


def setname(s: Session, msg: Message) -> None:
    realname = msg.params[0]
    if not realname.strip() or len(realname.encode("utf-8", "surrogateescape")) > NAMELEN:
        s.send("FAIL", "SETNAME", "INVALID_REALNAME", "Realname is not valid")
        return
    s.request((link.R_SETNAME, s.cid, realname))
