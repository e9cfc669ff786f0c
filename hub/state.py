"""Global chat state: users, nicks and channels, changed only by applying hub events.

Theory of operation
-------------------
The hub is the only process that decides. It checks a request against its `State`, and if
the request is granted it emits an *event* tuple, applies it to its own `State` and sends the
same tuple to every worker, which applies it to its replica `State`. Because every copy applies
the same events in the hub's order with this same code, each replica equals the hub's state
as of the last event that worker has received. Workers answer read-only queries (NAMES, WHO,
LUSERS) from their replica with no round trip.

Client ids are `wid << 32 | n`: `wid` is the worker's incarnation number (never reused), so
`wid_of(cid)` routes to the worker holding the connection, and a restarted worker's ids can
never alias a dead one's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ircproto.casemap import casefold

# Event opcodes: the hub emits these and every State applies them.
E_USER = "user"  # (cid, nick, user, host, realname, signon): a client finished registration
E_NICK = "nick"  # (cid, new_nick)
E_JOIN = "join"  # (cid, channel_name, ts)
E_PART = "part"  # (cid, channel_key, reason)
E_QUIT = "quit"  # (cid, reason)
E_TOPIC = "topic"  # (cid, channel_key, text, ts)

OP_STATUS = "@"


def wid_of(cid: int) -> int:
    return cid >> 32


@dataclass(slots=True)
class User:
    cid: int
    nick: str
    user: str
    host: str
    realname: str
    signon: float
    channels: set[str] = field(default_factory=set)  # channel keys (casefolded names)

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"


@dataclass(slots=True)
class Channel:
    name: str
    created: float
    members: dict[int, str] = field(default_factory=dict)  # cid -> status prefixes ("@", "")
    by_wid: dict[int, set[int]] = field(default_factory=dict)  # worker -> its member cids
    topic: str = ""
    topic_setter: str = ""
    topic_time: float = 0.0
    modes: str = "nt"


class State:
    """Users, nicks and channels; mutated only through `apply`."""

    def __init__(self) -> None:
        self.users: dict[int, User] = {}
        self.nicks: dict[str, int] = {}  # casefolded nick -> cid
        self.channels: dict[str, Channel] = {}  # casefolded name -> channel
        self._appliers = {
            E_USER: self._add_user, E_NICK: self._rename, E_JOIN: self._join,
            E_PART: self._part, E_QUIT: self._quit, E_TOPIC: self._set_topic,
        }

    def apply(self, event: tuple) -> None:
        self._appliers[event[0]](*event[1:])

    # --- reads ---------------------------------------------------------------------------
    def user_by_nick(self, nick: str) -> User | None:
        cid = self.nicks.get(casefold(nick))
        return None if cid is None else self.users[cid]

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(casefold(name))

    def neighbours(self, cid: int) -> set[int]:
        """The client itself and everyone who shares a channel with it."""
        found = {cid}
        user = self.users.get(cid)
        if user:
            for key in user.channels:
                found.update(self.channels[key].members)
        return found

    # --- appliers ------------------------------------------------------------------------
    def _add_user(self, cid: int, nick: str, user: str, host: str, realname: str, signon: float) -> None:
        self.users[cid] = User(cid, nick, user, host, realname, signon)
        self.nicks[casefold(nick)] = cid

    def _rename(self, cid: int, nick: str) -> None:
        user = self.users[cid]
        del self.nicks[casefold(user.nick)]
        user.nick = nick
        self.nicks[casefold(nick)] = cid

    def _join(self, cid: int, name: str, ts: float, status: str | None = None) -> None:
        key = casefold(name)
        chan = self.channels.get(key)
        if chan is None:
            chan = self.channels[key] = Channel(name, ts)
            status = OP_STATUS if status is None else status  # the founder is the first operator
        chan.members[cid] = status or ""
        chan.by_wid.setdefault(wid_of(cid), set()).add(cid)
        self.users[cid].channels.add(key)

    def _part(self, cid: int, key: str, reason: str = "") -> None:
        chan = self.channels[key]
        del chan.members[cid]
        local = chan.by_wid[wid_of(cid)]
        local.discard(cid)
        if not local:
            del chan.by_wid[wid_of(cid)]
        if not chan.members:
            del self.channels[key]
        self.users[cid].channels.discard(key)

    def _quit(self, cid: int, reason: str = "") -> None:
        user = self.users[cid]
        for key in list(user.channels):
            self._part(cid, key)
        del self.nicks[casefold(user.nick)]
        del self.users[cid]

    def _set_topic(self, cid: int, key: str, text: str, ts: float) -> None:
        chan = self.channels[key]
        chan.topic = text
        chan.topic_setter = self.users[cid].prefix if cid in self.users else ""
        chan.topic_time = ts

    # --- snapshots, for rebuilding after a hub restart -------------------------------------
    def snapshot(self, only_wid: int | None = None) -> dict[str, Any]:
        """Plain data describing the state (or one worker's clients and their channels)."""
        users = [u for u in self.users.values() if only_wid is None or wid_of(u.cid) == only_wid]
        keys = {k for u in users for k in u.channels}
        return {
            "users": [(u.cid, u.nick, u.user, u.host, u.realname, u.signon) for u in users],
            "channels": [(c.name, c.created, c.topic, c.topic_setter, c.topic_time, c.modes,
                          [(cid, st) for cid, st in c.members.items() if only_wid is None or wid_of(cid) == only_wid])
                         for k, c in self.channels.items() if k in keys or only_wid is None],
        }

    def merge(self, snap: dict[str, Any]) -> list[int]:
        """Add what a snapshot knows and this state does not; returns cids refused for a nick clash."""
        refused = []
        for cid, nick, user, host, realname, signon in snap["users"]:
            if cid in self.users:
                continue
            if casefold(nick) in self.nicks:
                refused.append(cid)
                continue
            self._add_user(cid, nick, user, host, realname, signon)
        for name, created, topic, setter, topic_time, modes, members in snap["channels"]:
            key = casefold(name)
            chan = self.channels.get(key)
            for cid, status in members:
                if cid in self.users and (chan is None or cid not in chan.members):
                    self._join(cid, name, created, status)
                    chan = self.channels[key]
            if chan is not None and not chan.topic and topic:
                chan.topic, chan.topic_setter, chan.topic_time = topic, setter, topic_time
        return refused

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any]) -> "State":
        state = cls()
        state.merge(snap)
        return state

    def local_cids(self, wid: int) -> Iterable[int]:
        return [cid for cid in self.users if wid_of(cid) == wid]
