"""A real hub process driven over its link by plain multiprocessing Connections standing in for
workers: the hello gate, acknowledgements, and replays after a restart."""
import multiprocessing
import pickle

import pytest

import config
from ipc import control, link
from hub.hub import Hub
from chatstate.state import E_JOIN, E_USER

W1, W2 = 1, 2
A = W1 << 32 | 1


class FakeWorker:
    def __init__(self, ctl, wid):
        hub_end, self.conn = multiprocessing.Pipe()
        control.send(ctl, (control.LINK, wid), [hub_end.fileno()])
        hub_end.close()
        self.received = []

    def send(self, *items):
        self.conn.send_bytes(pickle.dumps(list(items)))

    def next(self, timeout=10):
        while not self.received:
            assert self.conn.poll(timeout), "the hub sent nothing"
            self.received.extend(pickle.loads(self.conn.recv_bytes()))
        return self.received.pop(0)

    def until(self, opcode):
        skipped = []
        while (item := self.next())[0] != opcode:
            skipped.append(item)
        return item, skipped

    def silent(self, timeout=0.3):
        """Nothing but acknowledgements arrives (a bounded wait: absence cannot be awaited)."""
        while self.conn.poll(timeout):
            self.received.extend(pickle.loads(self.conn.recv_bytes()))
        return all(item[0] in (link.D_ACK, link.D_HANDLED) for item in self.received)


@pytest.fixture
def hub():
    ours, theirs = control.pair()
    process = multiprocessing.get_context("fork").Process(
        # History off: these are about the worker links (tests/integration/test_history.py has the store's).
        target=lambda: Hub(config.load(env={"HUBCHAT_HISTORY_ENABLED": "false"}), theirs).run(), daemon=True)
    process.start()
    theirs.close()
    yield ours
    process.kill()
    process.join(5)


def hello(users=(), channels=(), connections=()):
    return (link.R_HELLO, {"users": list(users), "channels": list(channels), "connections": list(connections)})


def test_nothing_is_handled_until_every_linked_worker_has_said_hello(hub):
    first, second = FakeWorker(hub, W1), FakeWorker(hub, W2)
    first.send(hello(), (link.R_CONNECT, A, "127.0.0.1"), (link.R_REGISTER, A, "alice", "~a", "h", "A"))
    # The positive control: the hub is awake and has read the frame, handled its hello (one
    # request acknowledged, nothing else sent) and held the rest, which an ungated hub would
    # have handled with the hello, in one go (its first ack would be 3).
    ack, before = first.until(link.D_ACK)
    assert ack == (link.D_ACK, 1) and before == []
    assert first.silent()
    second.send(hello())
    event, _ = first.until(E_USER)
    assert event[1:3] == (A, "alice")
    assert second.until(E_USER)[0][1] == A
    ack, _ = first.until(link.D_ACK)
    assert ack == (link.D_ACK, 3)  # hello, connect, register


def test_replayed_requests_are_idempotent_and_get_no_error_replies(hub):
    worker = FakeWorker(hub, W1)
    worker.send(hello(), (link.R_CONNECT, A, "127.0.0.1"), (link.R_REGISTER, A, "alice", "~a", "h", "A"),
                (link.R_JOIN, A, "#room", ""))
    worker.until(E_JOIN)
    worker.until(link.D_ACK)
    worker.send((link.R_REPLAY, True),
                (link.R_CONNECT, A, "127.0.0.1"),
                (link.R_REGISTER, A, "alice", "~a", "h", "A"),  # already registered: no second E_USER
                (link.R_JOIN, A, "#room", ""),  # already a member: nothing
                (link.R_PART, A, "#nowhere", ""),  # would be 403: not while replaying
                (link.R_REPLAY, False))
    ack, before = worker.until(link.D_ACK)
    assert before == [] and ack == (link.D_ACK, 10)
    worker.send((link.R_PART, A, "#nowhere", ""))  # a live request is answered again
    refusal, _ = worker.until(link.D_NUMERIC)
    assert refusal[1:3] == (A, "403")


def test_a_replayed_message_keeps_its_id_so_workers_can_drop_the_copy(hub):
    worker = FakeWorker(hub, W1)
    worker.send(hello(), (link.R_CONNECT, A, "127.0.0.1"), (link.R_REGISTER, A, "alice", "~a", "h", "A"),
                (link.R_JOIN, A, "#room", ""))
    worker.until(link.D_ACK)
    message = (link.R_CHANMSG, A, "#room", b":alice!~a@h PRIVMSG #room :hi\r\n", "boot1-7", 0, "")
    worker.send(message, (link.R_REPLAY, True), message, (link.R_REPLAY, False))
    deliveries = [worker.until(link.D_CHANMSG)[0] for _ in range(2)]
    assert [d[4] for d in deliveries] == ["boot1-7", "boot1-7"]  # the msgid is the origin id
    assert deliveries[0][5] < deliveries[1][5]  # each copy has the hub's time, strictly increasing


def test_a_new_hub_stamps_times_after_the_latest_its_workers_saw(hub):
    worker = FakeWorker(hub, W1)
    later = 4_000_000_000.0  # 2096: far past this hub's clock, as if the dead hub's had run ahead
    worker.send((link.R_HELLO, {"users": [], "channels": [], "connections": [], "hub_time": later}),
                (link.R_CONNECT, A, "127.0.0.1"), (link.R_REGISTER, A, "alice", "~a", "h", "A"),
                (link.R_JOIN, A, "#room", ""),
                (link.R_CHANMSG, A, "#room", b":alice!~a@h PRIVMSG #room :hi\r\n", "boot1-8", 0, ""))
    delivery, _ = worker.until(link.D_CHANMSG)
    assert delivery[5] > later


def test_the_worker_delivers_each_message_id_once():
    from workers.worker import RecentIds
    recent = RecentIds(1000)
    assert recent.add_new(["m1", "m2"]) == ["m1", "m2"]
    assert recent.add_new(["m0", "m2", "m3", "m1"]) == ["m0", "m3"]  # order kept, repeats dropped
    assert recent.add_new(["m3"]) == []
    for i in range(996):  # "m1" is now the oldest of the last 1,000 ids: still remembered
        recent.add_new([f"x{i}"])
    assert recent.add_new(["m1"]) == []
    for i in range(2000):
        recent.add_new([f"y{i}"])
    assert len(recent.current) + len(recent.previous) <= 2000  # bounded
    assert recent.add_new(["m1"]) == ["m1"]  # long forgotten


def test_an_ack_waits_until_what_its_requests_caused_is_in_every_link(hub):
    """A worker forgets what the hub acks. So while bob's worker is not reading (its link backed
    up, frames waiting in the hub), alice's worker gets no ack for her messages to bob."""
    first, second = FakeWorker(hub, W1), FakeWorker(hub, W2)
    B = W2 << 32 | 1
    first.send(hello(), (link.R_CONNECT, A, "127.0.0.1"), (link.R_REGISTER, A, "alice", "~a", "h", "A"),
               (link.R_JOIN, A, "#room", ""))
    second.send(hello(), (link.R_CONNECT, B, "127.0.0.1"), (link.R_REGISTER, B, "bob", "~b", "h", "B"),
                (link.R_JOIN, B, "#room", ""))
    while second.until(E_JOIN)[0][1] != B:
        pass
    line = b":alice!~a@h PRIVMSG #room :" + b"x" * 4000 + b"\r\n"
    count = 400  # 1.6 MB: far more than a socketpair holds
    for n in range(count):
        first.send((link.R_CHANMSG, A, "#room", line, f"m{n}", 0, ""))
    total = 4 + count
    acked = 0
    while first.conn.poll(1.0):  # a bounded wait: the last ack must not come
        for item in pickle.loads(first.conn.recv_bytes()):
            if item[0] == link.D_ACK:
                acked = item[1]
    assert acked < total
    delivered = 0
    while delivered < count:
        item = second.next()
        delivered += item[0] == link.D_CHANMSG
    while acked < total:
        item = first.next()
        if item[0] == link.D_ACK:
            acked = item[1]
    assert acked == total
