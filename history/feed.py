"""The history store's reader of the hub's log, in the hub process: what each event leaves in
history, handed to the store process over its link, and kept until the store says it is done.

Theory of operation
-------------------
`publish` sees every event once, in the hub's order (hub/log.py). A channel message becomes one
entry, at the cost of a tuple: the store process decodes and files it. A private message becomes
one entry filed under each party (once for a message to oneself). JOIN, PART, QUIT, KICK,
NICK, TOPIC and MODE are rendered here as the line their channels saw, which needs the state
*before* the event (a QUIT's channels, a NICK's old prefix): the hub's own state has already
moved on when the log publishes, so the feed keeps a replica of its own (`chatstate.State`,
applying the same events, like a worker's) and reads it before applying each event.

The channels an event touched are marked; at the next flush their settings (topic, modes, key,
limit, lists, creation time) are saved with the same batch, and a channel that has been empty
for DROP_DELAY is dropped, so the store holds the channels that had members when the server
stopped (whose clients all quit as it stops).

Delivery to the store, like a worker link's: every batch (`S_WRITE`) and query (`S_QUERY`) gets
a number (`fseq`), in the order sent; the store answers `S_DONE(fseq)` once everything up to it is
committed or answered. Until then the item stays in `unsent`: a store that dies and comes back is
sent all of it again (it ignores a row it already has, by msgid), so SIGKILL of the store loses
nothing. The hub holds the workers' acks until the store is done with what their requests caused
(`done`), so that a hub that dies loses nothing either: the workers replay those requests.

Questions other than history queries travel the same way (`ask`): read markers (S_MARKREAD, read
and moved forward by the store, which answers S_MARKERS), and a REDACT's first step (S_LOOKUP:
the row, and the other party's copy; answered S_FOUND, which the hub hands back to its policy).
A REDACT the policy grants is a message in the log (M_REDACT); the feed files it as one more
entry (REDACT_ENTRY), so the message leaves history in the write order, durably, like any other.
"""
from __future__ import annotations

import logging
import marshal
from collections import deque
from typing import TYPE_CHECKING, Callable

from chatstate.state import (E_ACCOUNT, E_JOIN, E_KICK, E_LOGIN, E_MODE, E_NICK, E_PART, E_QUIT, E_RENAME, E_RESTORE,
                             E_TOPIC, State, identity)
from hub.log import M_CHANMSG, M_REDACT, M_USERMSG, M_WALLOPS
from ircproto.casemap import casefold
from ircproto.message import format_line
from ircproto.modes import change_params

if TYPE_CHECKING:
    from ipc.link import LinkProtocol

log = logging.getLogger("hubchat.history")

# Items, hub -> store
S_WRITE = "write"  # (fseq, packed, count, keys, channels, accounts): packed is `pack(entries)`, entries as
#   below, count of them; keys the (owner, target) they write to, or None when one may touch any (a
#   redaction); channels {key: settings, or None: drop it}; accounts {key: record, or None: drop it}
#   (accounts/store.py), made or changed since the last batch
S_QUERY = "query"  # (fseq, cid, owner, scope, channels, query): see hub.policy.Ask
S_LOOKUP = "lookup"  # (fseq, msgid, (owner, target), peer_owner, context): a REDACT's first step; the
#   store answers S_FOUND with the row and, when peer_owner is given, that owner's copy of it
S_MARKREAD = "markread"  # (fseq, cid, owner, keys, targets, time_us | None, joins | None): read markers of
#   (owner, key) for each key, or with time_us move the one of keys[0] forward; answered S_MARKERS
# Items, store -> hub
S_HELLO = "hello"  # (channels, accounts): the store is up; the channels it keeps ({key: settings}) and the
#   accounts ({key: record})
S_DONE = "done"  # (fseq,): every item up to fseq is committed or answered
S_ANSWER = "answer"  # (cid, query, rows): rows are history.store Records, or (target, time_us) for TARGETS
S_FAIL = "fail"  # (cid, command, code, params): a query the store could not answer (an unknown msgid)
S_FOUND = "found"  # (fseq, context, found): found is (row, peer_row), either None when missing, or None
#   when the store failed; rows are history.store Records as plain tuples. The hub hands it to the
#   policy (hub.policy.REDACT_FOUND), which decides the REDACT
S_MARKERS = "markers"  # (cid, targets, times | None, joins): the markers as stored (time_us, or None for
#   none), in the order asked; times None when a set or a get failed

# Entries in S_WRITE, as cheap as possible for the hub to make:
CHANNEL_ENTRY = "c"  # (msgid, time, channel_key, author, line_bytes, flags, tags)
PRIVATE_ENTRY = "p"  # (msgid, time, ((owner, peer_key), ...), author, line_bytes, flags, tags)
EVENT_ENTRY = "e"  # (msgid, time, kind, channel_keys, author, line)
REDACT_ENTRY = "r"  # (msgid,): the message leaves history, every copy of it

def pack(entries: list[tuple]) -> bytes:
    """A batch's entries as one bytes object: the link's frame then copies it instead of pickling
    each entry again, and the store's loop passes it on untouched to the writing jobs (`unpack`).
    marshal, not pickle: entries are plain tuples of str, bytes and numbers, and marshal packs them
    in two thirds of pickle's time (112 against 172 ns an entry, measured); both ends run the
    same interpreter, as marshal's format requires."""
    return marshal.dumps(entries, 4) if entries else b""


def unpack(packed: bytes) -> list[tuple]:
    return marshal.loads(packed) if packed else []


DROP_DELAY = 10.0  # seconds a channel stays saved after it empties, so a stopping server keeps its channels
MAX_UNSENT = 1_000_000  # items the store may be behind before the hub stops reading requests


class HistoryFeed:
    def __init__(self, on_backlog: Callable[[bool], None] | None = None) -> None:
        self.replica = State(wid=-1)  # members tracked per worker for none: the feed routes nothing
        self.link: "LinkProtocol | None" = None
        self.entries: list[tuple] = []  # since the last flush
        self.touched: set[str] = set()  # channel keys whose settings to save (or drop) at the next flush
        self.accounts: dict[str, dict | None] = {}  # accounts made, changed (record) or dropped (None) since
        self.emptied: dict[str, float] = {}  # channel key -> when it was last seen without members
        self.fseq = 0  # the last item numbered
        self.done = 0  # the store has finished every item up to this one
        self.unsent: deque[tuple] = deque()  # items not yet done, in order: each (kind, fseq, ...)
        self.backlogged = False
        self._on_backlog = on_backlog
        self._authors: dict[int, str] = {}  # cid -> identity, made once per client
        # What the entries since the last flush write to (S_WRITE's keys), kept as they come: the
        # hot path adds a channel key to a set instead of walking the batch again at the flush.
        self.channel_keys: set[str] = set()
        self.private_keys: set[tuple[str, str]] = set()
        self.redacting = False

    # --- the log's reader ------------------------------------------------------------------------
    def publish(self, seq: int, msgid: str, time: float, event: tuple) -> None:
        op = event[0]
        if op == M_CHANMSG:  # the hot path: one tuple
            key = event[1]
            if key[0] != "@":  # a STATUSMSG is for some members only: not for history
                author = self._authors.get(event[2]) or self._author(event[2])
                self.entries.append((CHANNEL_ENTRY, msgid, time, key, author, event[3], event[5], event[6]))
                self.channel_keys.add(key)
            return
        if op == M_USERMSG:
            self._private(msgid, time, event)
            return
        if op == M_WALLOPS:
            return  # nobody's history
        if op == M_REDACT:  # the message goes, with every later batch: ordered and durable like a message
            self.entries.append((REDACT_ENTRY, event[5]))
            self.redacting = True
            return
        render = _RENDER.get(op)
        if render is not None:
            try:  # history's trouble must not cost the event its other readers (the worker links)
                render(self, msgid, time, event)
            except Exception:
                log.exception("history: could not file %r", event[:3])
        elif op == E_ACCOUNT:
            self.accounts[event[1]] = event[2]
        self.replica.apply(event)
        if op == E_QUIT or op == E_LOGIN:  # a login changes whose history the client's messages are
            self._authors.pop(event[1], None)

    def _author(self, cid: int) -> str:
        """The client's identity, made once (the hot path reads `_authors` first itself)."""
        author = self._authors.get(cid)
        if author is not None:
            return author
        user = self.replica.users.get(cid)
        if user is None:
            return ""
        self._authors[cid] = author = identity(user)
        return author

    def _private(self, msgid: str, time: float, event: tuple) -> None:
        _, target, sender, line, _, flags, tags = event
        users = self.replica.users
        to, by = users.get(target), users.get(sender)
        if to is None or by is None:
            return
        author = self._author(sender)
        parties = ((author, casefold(to.nick)),)
        if target != sender:
            parties += ((self._author(target), casefold(by.nick)),)
        self.entries.append((PRIVATE_ENTRY, msgid, time, parties, author, line, flags, tags))
        self.private_keys.update(parties)

    def _event(self, msgid: str, time: float, kind: str, cid: int, keys, *params: str) -> None:
        user = self.replica.users.get(cid)
        if user is None or not keys:
            return
        line = format_line(user.prefix, kind, *params)[:-2].decode()
        self.entries.append((EVENT_ENTRY, msgid, time, kind, tuple(keys), self._author(cid), line))
        self.channel_keys.update(keys)

    def _name(self, key: str) -> str:
        chan = self.replica.channels.get(key)
        return chan.name if chan is not None else key

    # --- channel settings and the store's side of the restart -------------------------------------
    def adopt(self, state: State) -> None:
        """Start from the hub's state as it is now (a new hub, after the workers' hellos)."""
        self.replica = State.from_snapshot(state.snapshot(), wid=-1)
        self._authors.clear()
        self.touched.update(self.replica.channels)

    # --- the store's link -----------------------------------------------------------------------------
    def attach(self, link: "LinkProtocol") -> None:
        """A store (new, or back after dying): send it everything it has not finished."""
        self.link = link
        for item in self.unsent:
            link.send(item)

    def detach(self) -> None:
        self.link = None

    def flush(self, now: float = 0.0) -> None:
        """What was published since the last flush, and channel settings, as one numbered batch. A channel
        that emptied is dropped only after DROP_DELAY: when a stopping server's clients all quit
        (or its workers go first), the channels stay for the next start as they were."""
        sends = self.pending()  # what `pending` promised: a batch, if only an empty one
        channels = {}
        for key in self.touched:
            chan = self.replica.channels.get(key)
            if chan is not None:
                channels[key] = chan.settings()
                self.emptied.pop(key, None)
            else:
                self.emptied.setdefault(key, now)
        self.touched.clear()
        if self.emptied:
            for key in [k for k, since in self.emptied.items() if now - since >= DROP_DELAY]:
                del self.emptied[key]
                channels[key] = None
        if not (sends or channels):
            return
        entries, self.entries = self.entries, []
        accounts, self.accounts = self.accounts, {}
        keys = None if self.redacting else {("", key) for key in self.channel_keys} | self.private_keys
        self.channel_keys, self.private_keys, self.redacting = set(), set(), False
        self._send((S_WRITE, self._next(), pack(entries), len(entries), keys, channels, accounts))

    def pending(self) -> bool:
        """Whether the next flush sends a batch (numbered fseq + 1)."""
        return bool(self.entries or self.touched or self.accounts)

    def ask(self, kind: str, item: tuple, now: float = 0.0) -> int:
        """Any question for the store (S_QUERY, S_LOOKUP, S_MARKREAD), after every batch published
        before it (so a query's answer misses nothing its asker was already sent), numbered like a
        batch; returns its number."""
        self.flush(now)
        fseq = self._next()
        self._send((kind, fseq, *item))
        return fseq

    def finished(self, fseq: int) -> None:
        """S_DONE from the store."""
        self.done = max(self.done, fseq)
        unsent = self.unsent
        while unsent and unsent[0][1] <= fseq:
            unsent.popleft()
        if self.backlogged and len(unsent) < MAX_UNSENT // 2:
            self._backlog(False)

    def _next(self) -> int:
        self.fseq += 1
        return self.fseq

    def _send(self, item: tuple) -> None:
        self.unsent.append(item)
        if self.link is not None and not self.link.closed:
            self.link.send(item)
        if not self.backlogged and len(self.unsent) >= MAX_UNSENT:
            self._backlog(True)

    def _backlog(self, on: bool) -> None:
        self.backlogged = on
        if self._on_backlog is not None:
            self._on_backlog(on)


# --- what each state event leaves in history, rendered from the state before it ----------------------
def _join(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    cid, name = event[1], event[2]
    feed._event(msgid, time, "JOIN", cid, (casefold(name),), name)
    feed.touched.add(casefold(name))


def _part(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    cid, key, reason = event[1], event[2], event[3]
    feed._event(msgid, time, "PART", cid, (key,), feed._name(key), *((reason,) if reason else ()))
    feed.touched.add(key)


def _kick(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    cid, key, target, reason = event[1:5]
    victim = feed.replica.users.get(target)
    if victim is not None:
        feed._event(msgid, time, "KICK", cid, (key,), feed._name(key), victim.nick, reason)
    feed.touched.add(key)


def _quit(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    cid, reason = event[1], event[2]
    user = feed.replica.users.get(cid)
    if user is not None:
        feed._event(msgid, time, "QUIT", cid, user.channels, reason)
        feed.touched.update(user.channels)


def _nick(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    cid, new_nick = event[1], event[2]
    user = feed.replica.users.get(cid)
    if user is not None:
        feed._event(msgid, time, "NICK", cid, user.channels, new_nick)


def _topic(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    cid, key, text = event[1:4]
    feed._event(msgid, time, "TOPIC", cid, (key,), feed._name(key), text)
    feed.touched.add(key)


def _mode(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    cid, key, changes = event[1:4]
    feed._event(msgid, time, "MODE", cid, (key,), feed._name(key), *change_params(changes))
    feed.touched.add(key)


def _rename(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    key, new_name = event[2], event[3]
    feed.touched.update((key, casefold(new_name)))


def _restore(feed: HistoryFeed, msgid: str, time: float, event: tuple) -> None:
    feed.touched.add(event[1])


_RENDER: dict[str, Callable[[HistoryFeed, str, float, tuple], None]] = {
    E_JOIN: _join, E_PART: _part, E_KICK: _kick, E_QUIT: _quit, E_NICK: _nick, E_TOPIC: _topic,
    E_MODE: _mode, E_RENAME: _rename, E_RESTORE: _restore,
}
