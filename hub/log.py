"""The hub's one publish path: every event the policy decides is numbered, given a msgid and the
hub's time here, in the order the hub decided it, and handed to every reader in that order.

What the log holds
------------------
State events (`E_*` from `chatstate.state`, already applied to the hub's state by the policy)
and the messages below, which change no state. Readers receive `(seq, msgid, time, event)`:

- `seq` counts the events of this hub process, from 1.
- `time` is the hub's clock to the microsecond, strictly increasing in `seq` order: when the
  clock has not moved on since the last event (or went back), the event takes the last time
  plus 1 us. Clients see it to the millisecond (server-time), so events of one millisecond
  share a stamp there and `seq` (and history's order) tells them apart. A step of 1 ms would
  allow only 1,000 events a second before the stamps ran ahead of the clock: at soak row 2's
  30,000 messages a second, by nearly ten minutes over a 20 s run. After a restart the new hub
  starts past the latest time its workers had seen (`resume_after`, from their hellos), so
  clients' server-time tags never go backwards.
- `msgid` of a message is its origin id: the id its worker gave the request, which a replay
  after a hub restart carries unchanged. So every copy of one message has one msgid, whichever
  hub delivered it, and a worker drops a second copy by it. Any other event's msgid is minted
  here from this hub's prefix and `seq`.

A reader is anything with `publish(seq, msgid, time, event)`: the worker links
(`hub.routing.LinkRouter`) are one; tests add a recording one. A reader must not block: a slow
one is backpressure, as a slow worker link is.
"""
from __future__ import annotations

from typing import Protocol

# Messages in the log, besides the state events (each carries its origin id at index 4, the
# position `Log.publish` reads it from).
M_CHANMSG = "cmsg"  # (route_key, sender_cid, line, origin_id, flags, client_tags): route_key is the
#   channel's key, or a STATUSMSG's "@" + key
M_USERMSG = "umsg"  # (target_cid, sender_cid, line, origin_id, flags, client_tags)
M_WALLOPS = "wallops"  # (line,): for every client with user mode +w
M_REDACT = "redact"  # (channel_key or "", sender_cid, line, origin_id, redacted_msgid, peer_cids): REDACT of
#   a channel's message (to its members), or a private one ("": to the sender and peer_cids); history
#   removes the redacted message
MESSAGES_WITH_ORIGIN = frozenset((M_CHANMSG, M_USERMSG, M_REDACT))


class Reader(Protocol):
    def publish(self, seq: int, msgid: str, time: float, event: tuple) -> None: ...


class Log:
    def __init__(self, prefix: str, readers: list[Reader] | None = None) -> None:
        self.prefix = prefix  # this hub's own, so the msgids it mints are unique to it
        self.readers: list[Reader] = []
        self._deliver: list = []  # each reader's bound publish
        for reader in readers or ():
            self.add_reader(reader)
        self.seq = 0
        self.last_us = 0  # the last event's time, in integer microseconds

    def add_reader(self, reader: Reader) -> None:
        self.readers.append(reader)
        self._deliver.append(reader.publish)

    def resume_after(self, time: float) -> None:
        """Stamp every later event after `time` (the latest a worker saw from an earlier hub)."""
        self.last_us = max(self.last_us, round(time * 1_000_000))

    def publish(self, event: tuple, now: float) -> None:
        """Number and stamp one event, and hand it to every reader. `now` is the clock when the
        hub decided it; the event's time is that to the microsecond, or 1 us past the last
        event's when the clock has not moved on (or went back)."""
        us = int(now * 1_000_000)
        if us <= self.last_us:
            us = self.last_us + 1
        self.last_us = us
        self.seq = seq = self.seq + 1
        msgid = event[4] if event[0] in MESSAGES_WITH_ORIGIN else f"{self.prefix}{seq:x}"
        time = us / 1_000_000
        for deliver in self._deliver:
            deliver(seq, msgid, time, event)
