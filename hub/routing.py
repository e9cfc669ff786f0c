"""The log's reader that is the worker links: each published event goes to the workers that have
someone to show it to, as the item they apply (shapes in `ipc/link.py`), and each reply goes to
the worker holding the client it answers.

State events go to every worker (each keeps a replica). A channel message goes to each worker
with members in the channel, the origin included (so every member sees one order), as one
item shared by every link; an outsider's echo rides alone. A private message goes to the
target's worker, and its echo to the sender's. A REDACT goes where the message it redacts
went: to each worker with members of the channel, or to the workers of the sender and the other
party. The links only queue here: the hub writes one frame per link per loop iteration.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from chatstate.state import State, wid_of
from hub.log import M_CHANMSG, M_REDACT, M_USERMSG, M_WALLOPS
from ipc import link

if TYPE_CHECKING:
    from ipc.link import LinkProtocol


class LinkRouter:
    def __init__(self, state: State, links: dict[int, "LinkProtocol"]) -> None:
        self.state = state  # the hub's: whose members are where
        self.links = links  # wid -> link, kept up to date by the hub
        self._routes = {M_USERMSG: self._user_message, M_WALLOPS: self._wallops, M_REDACT: self._redact}

    def publish(self, seq: int, msgid: str, time: float, event: tuple) -> None:
        op = event[0]
        if op == M_CHANMSG:  # the hot path, inlined: one item queued on each link with members
            _, key, sender, line, _, flags, tags = event
            chan = self.state.channels.get(key)
            if chan is None:  # STATUSMSG: routed under "@#chan"; the workers pick the recipients
                chan = self.state.channels[key[1:]]
            item = (link.D_CHANMSG, key, sender, line, msgid, time, flags, tags)
            links = self.links
            for member_wid in chan.by_wid:
                protocol = links.get(member_wid)
                if protocol is not None:
                    protocol.send(item)
            if flags & link.MSG_ECHO and sender not in chan.members:  # no member to ride with
                self.reply(sender, (link.D_ECHO, sender, line, msgid, time, flags, tags))
            return
        route = self._routes.get(op)
        if route is not None:
            route(msgid, time, event)
        else:  # a state event: every replica applies it
            for protocol in self.links.values():
                protocol.send(event)

    def reply(self, cid: int, item: tuple) -> None:
        protocol = self.links.get(wid_of(cid))
        if protocol is not None:
            protocol.send(item)

    def _user_message(self, msgid: str, time: float, event: tuple) -> None:
        _, target, sender, line, _, flags, tags = event
        self.reply(target, (link.D_USERMSG, target, sender, line, msgid, time, flags, tags))
        if flags & link.MSG_ECHO:
            self.reply(sender, (link.D_ECHO, sender, line, msgid, time, flags, tags))

    def _redact(self, msgid: str, time: float, event: tuple) -> None:
        _, key, sender, line, _, _, peers = event
        item = (link.D_REDACT, key, sender, line, msgid, time, peers)
        if key:
            chan = self.state.channels.get(key)
            wids = chan.by_wid if chan is not None else ()
        else:
            wids = dict.fromkeys(map(wid_of, (sender, *peers)))
        for wid in wids:
            protocol = self.links.get(wid)
            if protocol is not None:
                protocol.send(item)

    def _wallops(self, msgid: str, time: float, event: tuple) -> None:
        item = (link.D_WALLOPS, event[1])
        for protocol in self.links.values():
            protocol.send(item)
