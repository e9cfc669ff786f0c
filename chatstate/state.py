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

from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

from ircproto.casemap import casefold
from ircproto.masks import matches_user, split_extban
from ircproto.modes import (ACTING_EXTBANS, BAN_MODE, EXCEPT_MODE, FLAG_MODES, INVEX_MODE, KEY_MODE, LIMIT_MODE,
                            MUTE_EXTBAN, OP_STATUS, STATUS_OF_MODE, STATUS_RANK)

# Event opcodes: the hub emits these and every State applies them.
E_USER = "user"  # (cid, nick, user, host, realname, signon): a client finished registration
E_NICK = "nick"  # (cid, new_nick)
E_JOIN = "join"  # (cid, channel_name, ts)
E_PART = "part"  # (cid, channel_key, reason)
E_QUIT = "quit"  # (cid, reason)
E_TOPIC = "topic"  # (cid, channel_key, text, ts)
E_MODE = "mode"  # (cid, channel_key, ((sign, letter, arg), ...), ts): only changes that took effect
E_UMODE = "umode"  # (cid, "+i-w"): user modes that changed
E_KICK = "kick"  # (cid, channel_key, target_cid, reason)
E_INVITE = "invite"  # (cid, channel_key, target_cid)
E_AWAY = "away"  # (cid, text): "" means back
E_SETNAME = "setname"  # (cid, realname)
E_CHGHOST = "chghost"  # (cid, user, host)
E_RENAME = "rename"  # (cid, channel_key, new_name, reason): the channel, all it holds, under a new name
E_RESTORE = "restore"  # (channel_key, settings): a channel kept from before a restart comes back, with no
#   members yet (its first joiner follows in the same decision), as `Channel.settings` described it
E_CONNECTIONS = "connections"  # (count,): connections the hub holds, registered or not (for LUSERS)
E_ACCOUNT = "account"  # (key, record or None): an account made, changed or dropped (record: accounts/store.py)
E_LOGIN = "login"  # (cid, account): a registered user logged in ("" logged out); account is the display name

# The Channel field holding each list mode's entries.
LIST_FIELDS = {BAN_MODE: "bans", EXCEPT_MODE: "excepts", INVEX_MODE: "invexes"}
WHOWAS_LENGTH = 1000  # nicks remembered for WHOWAS
BAN_LIST_LENGTH = 100  # MAXLIST: entries in each list (b, e and I)


def _folded(name: str) -> str:
    """casefold(name), reusing the name itself when it is already folded (one string, not two)."""
    folded = casefold(name)
    return name if folded == name else folded


def wid_of(cid: int) -> int:
    return cid >> 32


# With several hosts (cluster/), a worker's incarnation number carries its host's number in its
# high bits, `host << HOST_SHIFT | n`, so ids stay unique across hosts and every host routes them
# the same way: a host has links only to its own workers' wids.
HOST_SHIFT = 16


def host_of_wid(wid: int) -> int:
    return wid >> HOST_SHIFT


def identity(user: "User") -> str:
    """Who a user is, for what must not pass to the next holder of a nick (private history,
    redaction rights, read markers): the account when logged in (`a:` and its key), else this
    connection."""
    if user.account:
        return "a:" + casefold(user.account)
    return f"~{user.cid:x}.{round(user.signon * 1000):x}"


def has_status(status: str, prefix: str) -> bool:
    """Whether a member's prefixes rank at least this one (an operator has voice's rights)."""
    return bool(status) and STATUS_RANK.index(status[0]) <= STATUS_RANK.index(prefix)


def with_status(status: str, prefix: str, add: bool) -> str:
    """A member's prefixes with one added or removed, kept in rank order ("@+")."""
    have = set(status) | {prefix} if add else set(status) - {prefix}
    return "".join(p for p in STATUS_RANK if p in have)


@dataclass(slots=True)
class User:
    cid: int
    nick: str
    user: str
    host: str
    realname: str
    signon: float
    modes: str = ""  # user modes: i (invisible), o (operator), w (wallops), B (bot)
    away: str = ""
    invited_to: list[str] | tuple = ()  # keys of channels holding an invitation for this user
    # Channel keys (casefolded names), replaced on every join and part. A tuple, not a set or a
    # list: a user is in a handful of channels and every process keeps every user, so 48 bytes
    # instead of 88 (list) or 216 (set) matters at 50,000 users.
    channels: tuple[str, ...] = ()
    account: str = ""  # the account's display name; "" when not logged in

    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"


@dataclass(slots=True)
class Channel:
    name: str
    created: float
    folded: str = ""  # casefold(name), the channel's key in State.channels
    members: dict[int, str] = field(default_factory=dict)  # cid -> status prefixes ("@+", "+", "")
    # worker -> its member cids: every worker's in the hub (it routes by them), only its own in a
    # worker's replica (it delivers to them); the others' would cost each worker ~90 bytes a user
    by_wid: dict[int, set[int]] = field(default_factory=dict)
    topic: str = ""
    topic_setter: str = ""
    topic_time: float = 0.0
    modes: str = "nt"  # flag modes that are set, in FLAG_MODES order
    key: str = ""
    limit: int = 0
    bans: list[tuple[str, str, float]] = field(default_factory=list)  # (mask, setter, ts)
    # +e (let past a ban) and +I (let past +i), entries as in bans. An empty tuple until the first
    # entry: most channels never have one, and every process keeps every channel.
    excepts: list[tuple[str, str, float]] | tuple = ()
    invexes: list[tuple[str, str, float]] | tuple = ()
    invited: set[int] = field(default_factory=set)

    def is_banned(self, user: User) -> bool:
        """A ban matches the user and no ban exception does (a mute is not a ban: see is_muted)."""
        return _listed(self.bans, "", user) and not _listed(self.excepts, "", user)

    def is_muted(self, user: User) -> bool:
        """A mute (+b m:mask) matches the user and no exception from mutes (+e m:mask) does."""
        return _listed(self.bans, MUTE_EXTBAN, user) and not _listed(self.excepts, MUTE_EXTBAN, user)

    def is_invite_excepted(self, user: User) -> bool:
        return _listed(self.invexes, "", user)

    def mask_list(self, letter: str) -> list[tuple[str, str, float]] | tuple:
        """The entries of one list mode (b, e or I)."""
        return getattr(self, LIST_FIELDS[letter])

    def settings(self) -> dict[str, Any]:
        """What survives a restart of the whole server (history keeps it): everything but the members."""
        return {"name": self.name, "created": self.created, "topic": self.topic, "topic_setter": self.topic_setter,
                "topic_time": self.topic_time, "modes": self.modes, "key": self.key, "limit": self.limit,
                "bans": [list(e) for e in self.bans], "excepts": [list(e) for e in self.excepts],
                "invexes": [list(e) for e in self.invexes]}

    @classmethod
    def from_settings(cls, key: str, settings: dict[str, Any]) -> "Channel":
        return cls(settings["name"], settings["created"], folded=key, topic=settings["topic"],
                   topic_setter=settings["topic_setter"], topic_time=settings["topic_time"],
                   modes=settings["modes"], key=settings["key"], limit=settings["limit"],
                   bans=[tuple(e) for e in settings["bans"]],
                   excepts=[tuple(e) for e in settings["excepts"]] or (),
                   invexes=[tuple(e) for e in settings["invexes"]] or ())

    def mode_string(self, with_key: bool = True) -> tuple[str, ...]:
        """The modes as MODE parameters, e.g. ("+klnt", "secret", "10"); the key hidden when asked."""
        letters, args = self.modes, []
        if self.key:
            letters += KEY_MODE
            args.append(self.key if with_key else "*")
        if self.limit:
            letters += LIMIT_MODE
            args.append(str(self.limit))
        return ("+" + "".join(sorted(letters)), *args)


def _listed(entries: Iterable[tuple[str, str, float]], action: str, user: User) -> bool:
    """Whether an entry with this acting extban ("" for a plain entry) matches the user."""
    prefix = user.prefix
    for mask, _, _ in entries:
        kind, target = split_extban(mask)
        if kind not in ACTING_EXTBANS:
            kind, target = "", mask
        if kind == action and matches_user(target, prefix, user.account):
            return True
    return False


class State:
    """Users, nicks and channels; mutated only through `apply`."""

    def __init__(self, wid: int | None = None) -> None:
        self.wid = wid  # a worker's replica: track only this worker's members in Channel.by_wid
        self.users: dict[int, User] = {}
        self.nicks: dict[str, int] = {}  # casefolded nick -> cid
        self.channels: dict[str, Channel] = {}  # casefolded name -> channel
        self.whowas: deque[tuple[str, str, str, str, float]] = deque(maxlen=WHOWAS_LENGTH)
        self.invisible = 0  # users with +i, and with +o: kept as counts so LUSERS costs nothing
        self.operators = 0
        self.connections = 0  # every worker's, as the hub counts them: LUSERS shows the unregistered ones
        self.max_users = 0  # the most users there have been at once, for LUSERS
        self.accounts: dict[str, dict] = {}  # casefolded name -> record (accounts/store.py)
        self._appliers = {
            E_USER: self._add_user, E_NICK: self._rename, E_JOIN: self._join,
            E_PART: self._part, E_QUIT: self._quit, E_TOPIC: self._set_topic,
            E_MODE: self._set_modes, E_UMODE: self._set_user_modes, E_KICK: self._kick,
            E_INVITE: self._invite, E_AWAY: self._set_away, E_SETNAME: self._set_name,
            E_CHGHOST: self._set_host, E_RENAME: self._rename_channel,
            E_CONNECTIONS: self._set_connections, E_RESTORE: self._restore,
            E_ACCOUNT: self._set_account, E_LOGIN: self._login,
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

    def shares_channel(self, a: int, b: int) -> bool:
        ua, ub = self.users.get(a), self.users.get(b)
        return bool(ua and ub and any(key in ub.channels for key in ua.channels))

    def may_see(self, viewer: int, chan: Channel) -> bool:
        """Secret channels (+s) are visible only to their members."""
        return "s" not in chan.modes or viewer in chan.members

    def was(self, nick: str) -> list[tuple[str, str, str, str, float]]:
        """WHOWAS entries for a nick, newest first."""
        folded = casefold(nick)
        return [entry for entry in reversed(self.whowas) if casefold(entry[0]) == folded]

    def account_of_nick(self, nick: str) -> dict | None:
        """The account whose name is this nick (nick ownership), or None."""
        return self.accounts.get(casefold(nick))

    # --- appliers ------------------------------------------------------------------------
    def _add_user(self, cid: int, nick: str, user: str, host: str, realname: str, signon: float,
                  modes: str = "", away: str = "", account: str = "") -> None:
        self.users[cid] = User(cid, nick, user, host, realname, signon, modes, away, account=account)
        self.nicks[_folded(nick)] = cid
        self._count_modes(modes, 1)
        self.max_users = max(self.max_users, len(self.users))

    def _count_modes(self, modes: str, step: int) -> None:
        self.invisible += step * ("i" in modes)
        self.operators += step * ("o" in modes)

    def _remember(self, user: User, ts: float) -> None:
        self.whowas.append((user.nick, user.user, user.host, user.realname, ts))

    def _rename(self, cid: int, nick: str, ts: float = 0.0) -> None:
        user = self.users[cid]
        self._remember(user, ts)
        del self.nicks[casefold(user.nick)]
        user.nick = nick
        self.nicks[_folded(nick)] = cid

    def _join(self, cid: int, name: str, ts: float, status: str | None = None) -> None:
        key = casefold(name)
        chan = self.channels.get(key)
        if chan is None:
            chan = self.channels[key] = Channel(name, ts, folded=key)
        if not chan.members and status is None:
            status = OP_STATUS  # the founder (or the first back in a restored channel) is the first operator
        key = chan.folded  # one string object for the channel, not one per member
        chan.members[cid] = status or ""
        wid = wid_of(cid)
        if self.wid is None or wid == self.wid:
            chan.by_wid.setdefault(wid, set()).add(cid)
        chan.invited.discard(cid)
        user = self.users[cid]
        if key not in user.channels:
            user.channels = (*user.channels, key)

    def _restore(self, key: str, settings: dict[str, Any]) -> None:
        if key not in self.channels:
            self.channels[key] = Channel.from_settings(key, settings)

    def _part(self, cid: int, key: str, reason: str = "") -> None:
        chan = self.channels[key]
        del chan.members[cid]
        local = chan.by_wid.get(wid_of(cid))
        if local is not None:
            local.discard(cid)
            if not local:
                del chan.by_wid[wid_of(cid)]
        if not chan.members:
            del self.channels[key]
        user = self.users[cid]
        if key in user.channels:
            user.channels = tuple(k for k in user.channels if k != key)

    def _quit(self, cid: int, reason: str = "", ts: float = 0.0) -> None:
        user = self.users[cid]
        for key in list(user.channels):
            self._part(cid, key)
        for key in user.invited_to:  # not every channel: a dying worker quits thousands of users
            chan = self.channels.get(key)
            if chan is not None:
                chan.invited.discard(cid)
        self._remember(user, ts)
        self._count_modes(user.modes, -1)
        del self.nicks[casefold(user.nick)]
        del self.users[cid]

    def _set_topic(self, cid: int, key: str, text: str, ts: float) -> None:
        chan = self.channels[key]
        chan.topic = text
        chan.topic_setter = self.users[cid].prefix if cid in self.users else ""
        chan.topic_time = ts

    def _set_modes(self, cid: int, key: str, changes: tuple, ts: float) -> None:
        chan = self.channels[key]
        setter = self.users[cid].prefix if cid in self.users else ""
        for sign, letter, arg in changes:
            add = sign == "+"
            if letter in STATUS_OF_MODE:
                target = self.nicks[casefold(arg)]
                chan.members[target] = with_status(chan.members[target], STATUS_OF_MODE[letter], add)
            elif letter in LIST_FIELDS:
                entries = chan.mask_list(letter)
                if add:
                    entries = [*entries, (arg, setter, ts)]
                else:
                    entries = [e for e in entries if casefold(e[0]) != casefold(arg)]
                setattr(chan, LIST_FIELDS[letter], entries)
            elif letter == KEY_MODE:
                chan.key = arg if add else ""
            elif letter == LIMIT_MODE:
                chan.limit = int(arg) if add else 0
            else:
                have = set(chan.modes) | {letter} if add else set(chan.modes) - {letter}
                chan.modes = "".join(m for m in FLAG_MODES if m in have)

    def _set_user_modes(self, cid: int, changes: str) -> None:
        user = self.users[cid]
        have = set(user.modes)
        sign = "+"
        for ch in changes:
            if ch in "+-":
                sign = ch
            elif sign == "+":
                have.add(ch)
            else:
                have.discard(ch)
        self._count_modes(user.modes, -1)
        user.modes = "".join(sorted(have))
        self._count_modes(user.modes, 1)

    def _kick(self, cid: int, key: str, target: int, reason: str) -> None:
        self._part(target, key)

    def _invite(self, cid: int, key: str, target: int) -> None:
        self.channels[key].invited.add(target)
        user = self.users[target]
        if key not in user.invited_to:
            user.invited_to = [*user.invited_to, key]

    def _set_away(self, cid: int, text: str) -> None:
        self.users[cid].away = text

    def _set_name(self, cid: int, realname: str) -> None:
        self.users[cid].realname = realname

    def _set_host(self, cid: int, user: str, host: str) -> None:
        self.users[cid].user, self.users[cid].host = user, host

    def _rename_channel(self, cid: int, key: str, name: str, reason: str = "") -> None:
        """Re-key the channel in one step: members, modes, lists, topic and invitations stay."""
        chan = self.channels.pop(key)
        new_key = _folded(name)
        chan.name, chan.folded = name, new_key
        self.channels[new_key] = chan
        for member in chan.members:
            user = self.users[member]
            user.channels = tuple(new_key if k == key else k for k in user.channels)
        for invited in chan.invited:
            user = self.users[invited]
            user.invited_to = [new_key if k == key else k for k in user.invited_to]

    def _set_connections(self, count: int) -> None:
        self.connections = count

    def _set_account(self, key: str, record: dict | None) -> None:
        if record is None:
            self.accounts.pop(key, None)
        else:
            self.accounts[key] = record

    def _login(self, cid: int, account: str) -> None:
        self.users[cid].account = account

    # --- snapshots, for rebuilding after a hub restart -------------------------------------
    def snapshot(self, only_wid: int | None = None) -> dict[str, Any]:
        """Plain data describing the state (or one worker's clients and their channels)."""
        users = [u for u in self.users.values() if only_wid is None or wid_of(u.cid) == only_wid]
        keys = {k for u in users for k in u.channels}
        return {
            "users": [(u.cid, u.nick, u.user, u.host, u.realname, u.signon, u.modes, u.away, u.account)
                      for u in users],
            "accounts": self.accounts,
            "channels": [(c.name, c.created, c.topic, c.topic_setter, c.topic_time, c.modes, c.key, c.limit,
                          list(c.bans), list(c.excepts), list(c.invexes),
                          [(cid, st) for cid, st in c.members.items() if only_wid is None or wid_of(cid) == only_wid])
                         for k, c in self.channels.items() if k in keys or only_wid is None],
        }

    def merge(self, snap: dict[str, Any]) -> list[int]:
        """Add what a snapshot knows and this state does not; returns cids refused for a nick clash."""
        refused = []
        for key, record in snap.get("accounts", {}).items():
            self.accounts.setdefault(key, record)
        for cid, nick, *rest in snap["users"]:
            if cid in self.users:
                continue
            if casefold(nick) in self.nicks:
                refused.append(cid)
                continue
            self._add_user(cid, nick, *rest)
        for (name, created, topic, setter, topic_time, modes, key_, limit, bans, excepts, invexes,
             members) in snap["channels"]:
            key = casefold(name)
            chan = self.channels.get(key)
            fresh = chan is None
            for cid, status in members:
                if cid in self.users and (chan is None or cid not in chan.members):
                    self._join(cid, name, created, status)
                    chan = self.channels[key]
            if chan is not None and fresh:  # the first report of a channel brings its settings
                chan.modes, chan.key, chan.limit, chan.bans = modes, key_, limit, list(bans)
                chan.excepts, chan.invexes = list(excepts) or (), list(invexes) or ()
            if chan is not None and not chan.topic and topic:
                chan.topic, chan.topic_setter, chan.topic_time = topic, setter, topic_time
        return refused

    @classmethod
    def from_snapshot(cls, snap: dict[str, Any], wid: int | None = None) -> "State":
        state = cls(wid)
        state.merge(snap)
        return state

    def __getstate__(self) -> dict[str, Any]:
        """Pickled whole for a cluster's snapshot (cluster/): everything but the bound appliers."""
        return {k: v for k, v in self.__dict__.items() if k != "_appliers"}

    def __setstate__(self, values: dict[str, Any]) -> None:
        self.__init__(values["wid"])
        self.__dict__.update(values)

    def local_cids(self, wid: int) -> Iterable[int]:
        return [cid for cid in self.users if wid_of(cid) == wid]
