"""Multi-line replies that several commands and events share: welcome burst, ISUPPORT, LUSERS, MOTD,
NAMES, topic."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatstate.state import Channel
from ircproto import numerics as N
from ircproto.caps import MULTI_PREFIX, USERHOST_IN_NAMES
from ircproto.message import MAX_LINE, format_line, wire_length
from ircproto.modes import CHANNEL_MODES, CHANNEL_MODES_WITH_PARAMS, USER_MODES
from workers.isupport import isupport_tokens

if TYPE_CHECKING:
    from workers.server_view import ServerView
    from workers.session import Session

VERSION = "hubchat-0.2"


def isupport(s: "Session") -> None:
    tokens = isupport_tokens(s.server.config)
    for i in range(0, len(tokens), 12):  # at most 13 middle parameters per line
        s.numeric(N.RPL_ISUPPORT, *tokens[i:i + 12])


def welcome(s: "Session") -> None:
    """The registration burst. Everything but 001 and LUSERS is the same for every client except
    the nick, so it is rendered once per worker (and configuration) with a stand-in for the nick:
    a registration storm then costs two byte replacements here, not twenty formatted lines."""
    w = s.server
    s.numeric(N.RPL_WELCOME, f"Welcome to the {w.config.server.network} Network, {s.prefix}")
    before_lusers, after_lusers = _welcome_templates(w)
    nick = s.display_nick.encode()
    _write_lines(s, before_lusers.replace(NICK_SLOT, nick))
    lusers(s)
    _write_lines(s, after_lusers.replace(NICK_SLOT, nick))


NICK_SLOT = b"\x01nick\x01"  # no nick can contain \x01, and no server text does


class _Recorder:
    """Stands in for a session to render replies once, with NICK_SLOT where the nick goes."""

    def __init__(self, server: "ServerView") -> None:
        self.server = server
        self.display_nick = NICK_SLOT.decode()
        self.lines: list[bytes] = []

    def numeric(self, code: str, *params: str) -> None:
        self.lines.append(format_line(self.server.server_name, code, self.display_nick, *N.with_text(code, params)))


def _welcome_templates(w: "ServerView") -> tuple[bytes, bytes]:
    cached = w.welcome_cache
    if cached is not None and cached[0] is w.config:
        return cached[1], cached[2]
    head = _Recorder(w)
    head.numeric(N.RPL_YOURHOST, f"Your host is {w.server_name}, running version {VERSION}")
    head.numeric(N.RPL_CREATED, "This server was created " + time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                             time.gmtime(w.started_at)))
    head.numeric(N.RPL_MYINFO, w.server_name, VERSION, USER_MODES, CHANNEL_MODES, CHANNEL_MODES_WITH_PARAMS)
    isupport(head)  # type: ignore[arg-type]
    tail = _Recorder(w)
    motd(tail)  # type: ignore[arg-type]
    w.welcome_cache = (w.config, b"".join(head.lines), b"".join(tail.lines))
    return w.welcome_cache[1], w.welcome_cache[2]


def _write_lines(s: "Session", blob: bytes) -> None:
    if s.label is None:
        s.write(blob)
    else:  # a labelled command's replies are captured line by line
        for line in blob.split(b"\r\n")[:-1]:
            s.reply(line + b"\r\n")


def lusers(s: "Session") -> None:
    state = s.server.state
    users = len(state.users)
    invisible, opers = state.invisible, state.operators
    s.numeric(N.RPL_LUSERCLIENT, f"There are {users - invisible} users and {invisible} invisible on 1 servers")
    if opers:
        s.numeric(N.RPL_LUSEROP, str(opers))
    unknown = state.connections - users  # the hub's count, so every worker's clients are in it
    if unknown:
        s.numeric(N.RPL_LUSERUNKNOWN, str(unknown))
    s.numeric(N.RPL_LUSERCHANNELS, str(len(state.channels)))
    s.numeric(N.RPL_LUSERME, f"I have {users} clients and 0 servers")
    most = state.max_users
    s.numeric(N.RPL_LOCALUSERS, str(users), str(most), f"Current local users {users}, max {most}")
    s.numeric(N.RPL_GLOBALUSERS, str(users), str(most), f"Current global users {users}, max {most}")


def motd(s: "Session") -> None:
    text = s.server.config.server.motd
    if not text:
        s.numeric(N.ERR_NOMOTD)
        return
    s.numeric(N.RPL_MOTDSTART, f"- {s.server.server_name} Message of the day - ")
    for line in text.splitlines():
        s.numeric(N.RPL_MOTD, "- " + line)
    s.numeric(N.RPL_ENDOFMOTD)


def shown_status(s: "Session", status: str) -> str:
    """A member's prefixes as this client asked to see them: all with multi-prefix, else the highest."""
    return status if MULTI_PREFIX in s.caps else status[:1]


def names(s: "Session", chan: Channel, end: bool = True, told: bool = False) -> None:
    """353 lines filled up to the line limit, then 366 (unless end=False, for NAMES of many).
    `told`: not an answer to this client's own command (see Session.tell)."""
    numeric = s.tell if told else s.numeric
    users = s.server.state.users
    kind = "@" if "s" in chan.modes else "="
    head = f":{s.server.server_name} {N.RPL_NAMREPLY} {s.display_nick} {kind} {chan.name} :"
    budget = MAX_LINE - 2 - wire_length(head)
    full_mask = USERHOST_IN_NAMES in s.caps
    member = s.cid in chan.members  # invisible users are listed only to fellow members
    batch: list[str] = []
    size = 0
    for cid, status in chan.members.items():
        user = users[cid]
        if not member and "i" in user.modes:
            continue
        entry = shown_status(s, status) + (user.prefix if full_mask else user.nick)
        length = wire_length(entry)
        if batch and size + length + 1 > budget:
            numeric(N.RPL_NAMREPLY, kind, chan.name, " ".join(batch))
            batch, size = [], 0
        batch.append(entry)
        size += length + 1
    if batch:
        numeric(N.RPL_NAMREPLY, kind, chan.name, " ".join(batch))
    if end:
        numeric(N.RPL_ENDOFNAMES, chan.name)


def topic(s: "Session", chan: Channel, *, on_join: bool = False, told: bool = False) -> None:
    numeric = s.tell if told else s.numeric
    if chan.topic:
        numeric(N.RPL_TOPIC, chan.name, chan.topic)
        numeric(N.RPL_TOPICWHOTIME, chan.name, chan.topic_setter or s.server.server_name, str(int(chan.topic_time)))
    elif not on_join:
        numeric(N.RPL_NOTOPIC, chan.name)
