"""Multi-line replies that several commands and events share: welcome burst, LUSERS, MOTD, NAMES, topic."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from hub.state import Channel
from ircproto import numerics as N
from ircproto.message import MAX_LINE, wire_length

if TYPE_CHECKING:
    from workers.session import Session

VERSION = "hubchat-0.1"
USER_MODES = "i"
CHANNEL_MODES = "nt"


def isupport_tokens(config) -> list[str]:
    lim = config.limits
    return [
        "CASEMAPPING=ascii", "CHANTYPES=#", "CHANMODES=,,,nt", "PREFIX=(o)@",
        f"NICKLEN={lim.nicklen}", f"CHANNELLEN={lim.channellen}", f"TOPICLEN={lim.topiclen}",
        f"CHANLIMIT=#:{lim.chanlimit}", f"TARGMAX=PRIVMSG:{lim.maxtargets},NOTICE:{lim.maxtargets},JOIN:,PART:",
        f"MAXTARGETS={lim.maxtargets}", f"NETWORK={config.server.network}", f"LINELEN={MAX_LINE}",
        "SAFELIST",
    ]


def welcome(s: "Session") -> None:
    w = s.worker
    cfg = w.config
    s.numeric(N.RPL_WELCOME, f"Welcome to the {cfg.server.network} Network, {s.prefix}")
    s.numeric(N.RPL_YOURHOST, f"Your host is {w.server_name}, running version {VERSION}")
    s.numeric(N.RPL_CREATED, "This server was created " + time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                          time.gmtime(w.started_at)))
    s.numeric(N.RPL_MYINFO, w.server_name, VERSION, USER_MODES, CHANNEL_MODES)
    tokens = isupport_tokens(cfg)
    for i in range(0, len(tokens), 12):  # at most 13 middle parameters per line
        s.numeric(N.RPL_ISUPPORT, *tokens[i:i + 12], "are supported by this server")
    lusers(s)
    motd(s)


def lusers(s: "Session") -> None:
    state = s.worker.state
    users = len(state.users)
    s.numeric(N.RPL_LUSERCLIENT, f"There are {users} users and 0 invisible on 1 servers")
    unknown = s.worker.unregistered_count()
    if unknown:
        s.numeric(N.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
    s.numeric(N.RPL_LUSERCHANNELS, str(len(state.channels)), "channels formed")
    s.numeric(N.RPL_LUSERME, f"I have {users} clients and 0 servers")
    s.numeric(N.RPL_LOCALUSERS, str(users), str(users), f"Current local users {users}, max {users}")
    s.numeric(N.RPL_GLOBALUSERS, str(users), str(users), f"Current global users {users}, max {users}")


def motd(s: "Session") -> None:
    text = s.worker.config.server.motd
    if not text:
        s.numeric(N.ERR_NOMOTD, "MOTD File is missing")
        return
    s.numeric(N.RPL_MOTDSTART, f"- {s.worker.server_name} Message of the day - ")
    for line in text.splitlines():
        s.numeric(N.RPL_MOTD, "- " + line)
    s.numeric(N.RPL_ENDOFMOTD, "End of /MOTD command.")


def names(s: "Session", chan: Channel) -> None:
    users = s.worker.state.users
    head = f":{s.worker.server_name} {N.RPL_NAMREPLY} {s.display_nick} = {chan.name} :"
    budget = MAX_LINE - 2 - wire_length(head)
    batch: list[str] = []
    size = 0
    for cid, status in chan.members.items():
        entry = status[:1] + users[cid].nick  # nicks are ASCII: characters are bytes
        if batch and size + len(entry) + 1 > budget:
            s.numeric(N.RPL_NAMREPLY, "=", chan.name, " ".join(batch))
            batch, size = [], 0
        batch.append(entry)
        size += len(entry) + 1
    if batch:
        s.numeric(N.RPL_NAMREPLY, "=", chan.name, " ".join(batch))
    s.numeric(N.RPL_ENDOFNAMES, chan.name, "End of /NAMES list.")


def topic(s: "Session", chan: Channel, *, on_join: bool = False) -> None:
    if chan.topic:
        s.numeric(N.RPL_TOPIC, chan.name, chan.topic)
        s.numeric(N.RPL_TOPICWHOTIME, chan.name, chan.topic_setter or s.worker.server_name, str(int(chan.topic_time)))
    elif not on_join:
        s.numeric(N.RPL_NOTOPIC, chan.name, "No topic is set")
