"""The order of one client's answers: everything caused by its command N goes out before
anything caused by its command N+1.

Theory of operation
-------------------
A command is answered either by the worker itself (PING, MOTD, a syntax error) or by the hub
(JOIN, MODE, a channel message's echo or error). The hub's answers come back on the worker's
link in the order the requests went out, so they are already in order among themselves. What
can overtake them is a local answer to a *later* command, written while an earlier request is
still at the hub.

So a local answer goes out at once only when no request of this client is still in flight.
Otherwise it is held behind a *gate*: a barrier request, sent after those requests, that the
hub answers only once it has handled them (and so after everything they caused is on the
link). When that barrier comes back, the answers held behind it follow. Answers from the hub
never wait: every gate still out was sent after the requests they answer.

One gate serves every local answer until the client sends the hub something new, so a client
that mixes requests and local commands costs one barrier per switch, and one that only talks
(channel messages) or only asks local things costs none. Barriers carry a token that grows
with every barrier this session sends; after a hub restart a replayed barrier may come back
twice, and a token already passed releases nothing.

`ReplyOrder` is pure: it never touches a socket or the link. `Session` inherits it (no second
object per connection) and does the writing and the sending.
"""
from __future__ import annotations

from collections import deque

NO_GATES: tuple = ()  # shared stand-in: most sessions never hold an answer


class ReplyOrder:
    __slots__ = ("in_flight", "gates", "last_barrier")

    def __init__(self) -> None:
        self.in_flight = False  # requests sent to the hub since the last barrier
        self.gates: deque[tuple[int, list[bytes]]] | tuple = NO_GATES  # (barrier token, held answers)
        self.last_barrier = 0  # token of the last barrier sent

    def sent_request(self) -> None:
        """A request went to the hub: local answers from now on wait until it is handled."""
        self.in_flight = True

    @property
    def may_answer_now(self) -> bool:
        """A local answer written now cannot overtake anything the hub still owes this client."""
        return not self.in_flight and not self.gates

    def new_barrier(self) -> int:
        """The token of a barrier that covers every request sent so far (send it to the hub).
        While it is out, local answers wait for it."""
        self.last_barrier += 1
        if self.in_flight:
            self.in_flight = False
            if self.gates is NO_GATES:
                self.gates = deque()
            self.gates.append((self.last_barrier, []))  # type: ignore[union-attr]
        return self.last_barrier

    def hold(self, line: bytes) -> int:
        """Hold a local answer until what went before it is answered. Returns the token of a
        barrier to send, or 0 when the answer waits behind a gate that is already out."""
        token = self.new_barrier() if self.in_flight else 0
        self.gates[-1][1].append(line)  # type: ignore[index]
        return token

    def barrier_back(self, token: int) -> list[bytes]:
        """A barrier came back: the answers it released, in order (none for a stale token)."""
        gates = self.gates
        if not gates or gates[0][0] > token:
            return []
        released: list[bytes] = []
        while gates and gates[0][0] <= token:
            released.extend(gates.popleft()[1])  # type: ignore[union-attr]
        if not gates:
            self.gates = NO_GATES
        return released
