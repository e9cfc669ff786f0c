"""The per-session answer order (workers/order.py), on plain data: a client, a FIFO link each
way and a hub are simulated step by step, and every interleaving hypothesis finds must put
each command's answers before the next command's."""
from __future__ import annotations

from collections import deque

from hypothesis import given, settings, strategies as st

from workers.order import NO_GATES, ReplyOrder


class Model:
    """A client's commands through one worker: local ones answered at once (or held), hub ones
    sent as requests whose answers come back in link order."""

    def __init__(self) -> None:
        self.order = ReplyOrder()
        self.to_hub: deque[tuple] = deque()
        self.to_worker: deque[tuple] = deque()
        self.out: list[tuple[int, int]] = []
        self.answered_barriers: list[int] = []

    def command(self, index: int, local: bool, lines: int) -> None:
        if local:
            for j in range(lines):
                self.answer((index, j))
        else:
            self.to_hub.append(("request", index, lines))
            self.order.sent_request()

    def answer(self, line: tuple[int, int]) -> None:
        if self.order.may_answer_now:
            self.out.append(line)
            return
        token = self.order.hold(line)  # type: ignore[arg-type]
        if token:
            self.to_hub.append(("barrier", token))

    def sync(self) -> None:
        """A query's barrier: sent whether or not anything is in flight."""
        self.to_hub.append(("barrier", self.order.new_barrier()))

    def hub_step(self) -> None:
        item = self.to_hub.popleft()
        if item[0] == "request":
            self.to_worker.extend(("answer", (item[1], j)) for j in range(item[2]))
        else:
            self.to_worker.append(item)

    def worker_step(self) -> None:
        kind, value = self.to_worker.popleft()
        if kind == "answer":
            self.out.append(value)  # the hub's answers are written as they are applied
        else:
            self.answered_barriers.append(value)
            self.out.extend(self.order.barrier_back(value))

    def replay_a_barrier(self, pick: int) -> None:
        """After a hub restart an answered barrier can come back again."""
        if self.answered_barriers:
            self.to_worker.append(("barrier", self.answered_barriers[pick % len(self.answered_barriers)]))

    def drain(self) -> None:
        while self.to_hub or self.to_worker:
            if self.to_hub:
                self.hub_step()
            while self.to_worker:
                self.worker_step()


commands = st.lists(st.tuples(st.booleans(), st.integers(0, 3)), max_size=30)
steps = st.lists(st.sampled_from(["client", "hub", "worker", "replay", "sync"]), max_size=120)


@settings(max_examples=400, deadline=None)
@given(commands, steps, st.integers(0, 100))
def test_every_interleaving_answers_in_command_order(cmds, schedule, pick):
    model = Model()
    pending = deque(enumerate(cmds))
    for step in schedule:
        if step == "client" and pending:
            index, (local, lines) = pending.popleft()
            model.command(index, local, lines)
        elif step == "hub" and model.to_hub:
            model.hub_step()
        elif step == "worker" and model.to_worker:
            model.worker_step()
        elif step == "replay":
            model.replay_a_barrier(pick)
        elif step == "sync":
            model.sync()
        assert model.out == sorted(model.out), "an answer overtook an earlier command's"
    while pending:
        index, (local, lines) = pending.popleft()
        model.command(index, local, lines)
    model.drain()
    expected = [(i, j) for i, (_, lines) in enumerate(cmds) for j in range(lines)]
    assert model.out == expected
    assert model.order.gates is NO_GATES  # nothing is left held


def test_the_reported_sequence():
    """JOIN, PING, MODE, PING, TOPIC, PING in one write: each PONG after its command's answer."""
    model = Model()
    for index, local in enumerate([False, True, False, True, False, True]):
        model.command(index, local, 1)
    assert model.out == []  # PONG a must wait for the JOIN's answer
    assert [item[0] for item in model.to_hub] == ["request", "barrier"] * 3
    model.drain()
    assert model.out == [(i, 0) for i in range(6)]


def test_local_answers_go_straight_out_when_nothing_is_in_flight():
    model = Model()
    model.command(0, True, 2)
    model.command(1, True, 1)
    assert model.out == [(0, 0), (0, 1), (1, 0)]
    assert not model.to_hub  # no barrier costs a round trip


def test_one_gate_serves_every_local_answer_until_the_next_request():
    model = Model()
    model.command(0, False, 1)
    for index in range(1, 5):
        model.command(index, True, 1)
    assert sum(1 for item in model.to_hub if item[0] == "barrier") == 1
    model.command(5, False, 1)
    model.command(6, True, 1)
    assert sum(1 for item in model.to_hub if item[0] == "barrier") == 2


def test_a_stale_barrier_releases_nothing():
    order = ReplyOrder()
    order.sent_request()
    first = order.hold(b"a")
    assert first and order.barrier_back(first) == [b"a"]
    order.sent_request()
    second = order.hold(b"b")
    assert order.barrier_back(first) == []  # the first barrier again, replayed after a restart
    assert order.barrier_back(second) == [b"b"]


def test_a_query_barrier_holds_later_local_answers():
    order = ReplyOrder()
    order.sent_request()
    token = order.new_barrier()
    assert not order.may_answer_now  # the request it covers has not been answered yet
    assert order.hold(b"x") == 0  # waits behind the query's barrier, no second one
    assert order.barrier_back(token) == [b"x"]
    assert order.may_answer_now


def test_a_barrier_with_nothing_in_flight_holds_nothing():
    order = ReplyOrder()
    order.new_barrier()
    assert order.may_answer_now
