"""IRCv3 MONITOR (online/offline notification of nicks) and `extended-monitor`.

Theory of operation
-------------------
No hub work: every worker's replica holds every user (`State.users`, `State.nicks`), updated
from the hub's events in hub order. So each worker keeps, for its own clients only, the
monitor lists (`Monitors.lists`: cid -> folded nick -> the target as the client wrote it) and
an index from each folded nick to the local clients watching it (`Monitors.watchers`). The
functions applying the hub's events (workers/replica_events.py) call the hooks below:

- `came_online` after E_USER, `nick_changed` after E_NICK (offline for the old nick, online
  for the new one; nothing for a change of case), `user_quit` after E_QUIT (offline, and the
  quitting client's own list is dropped: a disconnected client leaves nothing behind);
- `extended_watchers` when AWAY, CHGHOST or SETNAME (and, later, ACCOUNT) is written to a
  user's neighbours: the local clients with `extended-monitor` that monitor the user and are
  not neighbours already, so nobody gets a line twice.

Every worker applies the same events in the same order, so every watcher, on any worker, sees
one order, and a notification is never out of step with the lines around it. A query
(`MONITOR +` and `S` answer from the replica) is a `reads_state` command: it runs once a
barrier is back from the hub, like WHO, so its answer reflects everything the client was
already sent and everything its own earlier commands caused; the watch is installed in the
same step as the replica is read, so every later event notifies it.

Nothing here runs per message: channel delivery never looks at monitors. Memory is bounded
by `MONITOR_LIMIT` entries per local client, and the index holds only nicks somebody local
watches (an emptied entry is deleted).

The state is kept per worker in `_BY_WORKER` (a worker's field once the module is merged).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable
from weakref import WeakKeyDictionary

from ircproto import numerics as N
from ircproto.caps import EXTENDED_MONITOR
from ircproto.casemap import casefold, is_valid_nick
from ircproto.message import MAX_LINE, Message, wire_length
from workers.handlers.common import Reply, split_targets
from workers.isupport import MONITOR_LIMIT

if TYPE_CHECKING:
    from chatstate.state import User
    from workers.item_target import HubItemTarget
    from workers.session import Session

NOBODY: frozenset[int] = frozenset()


class Monitors:
    """One worker's monitor lists, with plain data only (no sessions, no replica)."""

    __slots__ = ("lists", "watchers")

    def __init__(self) -> None:
        self.lists: dict[int, dict[str, str]] = {}  # cid -> folded nick -> the target as given, in order
        self.watchers: dict[str, set[int]] = {}  # folded nick -> the cids monitoring it

    def add(self, cid: int, targets: Iterable[str], limit: int, nicklen: int) -> tuple[list[str], list[str]]:
        """Add targets to a client's list. Invalid nicks are ignored and targets already in the
        list are not added again (the spec). Returns the targets added, as given, and, when the
        list filled up, the targets that could not be added: the first that did not fit and
        every one after it, as the client sent them (ERR_MONLISTFULL's <targets>)."""
        targets = list(targets)
        mine = self.lists.get(cid)
        added: list[str] = []
        for i, target in enumerate(targets):
            if not is_valid_nick(target, nicklen):
                continue
            folded = casefold(target)
            if mine is not None and folded in mine:
                continue
            if (len(mine) if mine is not None else 0) >= limit:
                return added, targets[i:]
            if mine is None:
                mine = self.lists[cid] = {}
            mine[folded] = target
            self.watchers.setdefault(folded, set()).add(cid)
            added.append(target)
        return added, []

    def remove(self, cid: int, targets: Iterable[str]) -> None:
        mine = self.lists.get(cid)
        if mine is None:
            return
        for target in targets:
            folded = casefold(target)
            if mine.pop(folded, None) is not None:
                self._unwatch(folded, cid)
        if not mine:
            del self.lists[cid]

    def clear(self, cid: int) -> None:
        """Empty a client's list (MONITOR C, or the client is gone)."""
        for folded in self.lists.pop(cid, {}):
            self._unwatch(folded, cid)

    def _unwatch(self, folded: str, cid: int) -> None:
        cids = self.watchers.get(folded)
        if cids is not None:
            cids.discard(cid)
            if not cids:
                del self.watchers[folded]

    def targets(self, cid: int) -> list[str]:
        """The client's list, as it wrote each target, in the order they were added."""
        return list(self.lists.get(cid, {}).values())

    def watching(self, folded: str) -> set[int] | frozenset[int]:
        """The cids monitoring this (folded) nick."""
        return self.watchers.get(folded, NOBODY)


def packed(items: Iterable[str], budget: int) -> list[str]:
    """Comma-joined lists of items, each at most `budget` bytes on the wire (an item longer
    than that alone goes on a line of its own)."""
    lines: list[str] = []
    batch: list[str] = []
    size = 0
    for item in items:
        length = wire_length(item)
        if batch and size + 1 + length > budget:
            lines.append(",".join(batch))
            batch, size = [], 0
        size += length + (1 if batch else 0)
        batch.append(item)
    if batch:
        lines.append(",".join(batch))
    return lines


# --- per worker ---------------------------------------------------------------------------
_BY_WORKER: "WeakKeyDictionary[object, Monitors]" = WeakKeyDictionary()


def monitors_of(worker: object) -> Monitors:
    """The worker's monitor lists, made on first use."""
    found = _BY_WORKER.get(worker)
    if found is None:
        found = _BY_WORKER[worker] = Monitors()
    return found


def _watched(worker: object) -> Monitors | None:
    """The worker's monitor lists when somebody watches anything (the hooks' quick exit)."""
    found = _BY_WORKER.get(worker)
    return found if found is not None and found.watchers else None


# --- the command ---------------------------------------------------------------------------
def _send_list(s: "Session", code: str, items: list[str], told: bool = False) -> None:
    """One numeric per line-full of comma-joined items."""
    numeric = s.tell if told else s.numeric
    # ":<server> 730 <nick> :" and CRLF: what is left of the line for the list
    head = wire_length(f":{s.server.server_name} {code} {s.display_nick} :")
    for line in packed(items, MAX_LINE - 2 - head):
        numeric(code, line)


def monitor(s: "Session", msg: Message) -> None:
    """MONITOR + targets, - targets, C, L, S."""
    modifier = msg.params[0]
    op = modifier.upper()
    monitors = monitors_of(s.server)
    if op in ("+", "-"):
        if len(msg.params) < 2:
            raise Reply(N.ERR_NEEDMOREPARAMS, "MONITOR")
        targets = split_targets(msg.params[1])
        if op == "-":
            monitors.remove(s.cid, targets)
            return
        added, full = monitors.add(s.cid, targets, MONITOR_LIMIT, s.server.config.limits.nicklen)
        _status(s, added)
        if full:
            s.numeric(N.ERR_MONLISTFULL, str(MONITOR_LIMIT), ",".join(full))
    elif op == "C":
        monitors.clear(s.cid)
    elif op == "L":
        _send_list(s, N.RPL_MONLIST, monitors.targets(s.cid))
        s.numeric(N.RPL_ENDOFMONLIST)
    elif op == "S":
        _status(s, monitors.targets(s.cid))
    else:
        raise Reply(N.ERR_UNKNOWNERROR, "MONITOR", modifier, "Unknown MONITOR modifier")


def _status(s: "Session", targets: list[str]) -> None:
    """730 for the targets online (nick!user@host), then 731 for the others (as given)."""
    state = s.server.state
    online, offline = [], []
    for target in targets:
        user = state.user_by_nick(target)
        if user is None:
            offline.append(target)
        else:
            online.append(user.prefix)
    _send_list(s, N.RPL_MONONLINE, online)
    _send_list(s, N.RPL_MONOFFLINE, offline)


# --- the hooks of workers/replica_events.py (after the event is applied) --------------------
def _notify(w: "HubItemTarget", cids: Iterable[int], code: str, item: str, skip: int | None = None) -> None:
    sessions = w.sessions
    for cid in cids:
        if cid == skip:
            continue
        s = sessions.get(cid)
        if s is not None:  # a client gone from the worker, whose QUIT is still on its way
            s.tell(code, item)


def came_online(w: "HubItemTarget", user: "User") -> None:
    """E_USER: a user registered."""
    monitors = _watched(w)
    if monitors is not None:
        _notify(w, monitors.watching(casefold(user.nick)), N.RPL_MONONLINE, user.prefix)


def nick_changed(w: "HubItemTarget", old: str, user: "User") -> None:
    """E_NICK: the old nick went offline and the new one came online (a change of case: neither)."""
    monitors = _watched(w)
    if monitors is None:
        return
    before, after = casefold(old), casefold(user.nick)
    if before != after:
        _notify(w, monitors.watching(before), N.RPL_MONOFFLINE, old)
        _notify(w, monitors.watching(after), N.RPL_MONONLINE, user.prefix)


def user_quit(w: "HubItemTarget", cid: int, nick: str | None) -> None:
    """E_QUIT: the nick went offline (None: the replica did not know the user); a local
    client's own list goes with it."""
    monitors = _BY_WORKER.get(w)
    if monitors is None:
        return
    if cid in monitors.lists:
        monitors.clear(cid)
    if nick is not None and monitors.watchers:
        _notify(w, monitors.watching(casefold(nick)), N.RPL_MONOFFLINE, nick, skip=cid)


def extended_watchers(w: "HubItemTarget", nick: str, already: list[int]) -> list[int]:
    """The local clients with extended-monitor monitoring `nick` that are not in `already`
    (the user's local neighbours, who get the line anyway): add them to the recipients of an
    AWAY, CHGHOST, SETNAME or ACCOUNT line. The line's own capability is checked by the caller."""
    monitors = _watched(w)
    if monitors is None:
        return []
    cids = monitors.watching(casefold(nick))
    if not cids:
        return []
    sessions = w.sessions
    seen = set(already)
    return [cid for cid in cids if cid not in seen and cid in sessions and EXTENDED_MONITOR in sessions[cid].caps]
