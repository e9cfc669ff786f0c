"""A real hub process with a fake worker and a fake history store on its links: a REDACT's two
steps cross the store and come back into the policy; the redaction is filed in a batch after
the lookup; the worker's REDACT is not acknowledged until the store is done with that batch (so
a hub that dies first has it replayed); MARKREAD's answer is the store's, passed on."""
from __future__ import annotations

import multiprocessing

import pytest

import config
from chatstate.state import E_JOIN, E_USER
from history.feed import REDACT_ENTRY, S_DONE, S_FOUND, S_HELLO, S_LOOKUP, S_MARKERS, S_MARKREAD, S_WRITE, unpack
from hub.hub import Hub
from ipc import control, link
from tests.test_hub_link_protocol import A, W1, FakeWorker, hello

LINE = b":alice!~a@h REDACT #room m-1\r\n"


class FakeStore(FakeWorker):
    """The store's end of its link: what the hub sends it, and what it answers."""

    def __init__(self, ctl) -> None:
        hub_end, self.conn = multiprocessing.Pipe()
        control.send(ctl, (control.STORE,), [hub_end.fileno()])
        hub_end.close()
        self.received = []

    def done_with_writes(self, skipped: list) -> None:
        for item in skipped:
            if item[0] == S_WRITE:
                self.send((S_DONE, item[1]))


@pytest.fixture
def hub():
    ours, theirs = control.pair()
    process = multiprocessing.get_context("fork").Process(target=lambda: Hub(config.load(env={}), theirs).run(),
                                                          daemon=True)
    process.start()
    theirs.close()
    yield ours
    process.kill()
    process.join(5)


def acks(items: list) -> list[int]:
    return [item[1] for item in items if item[0] == link.D_ACK]


def test_a_redact_crosses_the_store_twice_and_is_acked_only_once_the_redaction_is_stored(hub):
    store, worker = FakeStore(hub), FakeWorker(hub, W1)
    store.send((S_HELLO, {}, {}))  # no channels kept, no accounts
    worker.send(hello(), (link.R_CONNECT, A, "127.0.0.1"), (link.R_REGISTER, A, "alice", "~a", "h", "A"),
                (link.R_JOIN, A, "#room", ""))
    worker.until(E_JOIN)
    worker.send((link.R_REDACT, A, "#room", "m-1", LINE, "o-1"))  # the link's 5th item
    lookup, skipped = store.until(S_LOOKUP)
    store.done_with_writes(skipped)
    fseq, msgid, place, peer, context = lookup[1:]
    assert (msgid, place, peer) == ("m-1", ("", "#room"), "")
    worker.send((link.R_BARRIER, A, 1))  # the 6th: handled while the REDACT waits for the store
    barrier, before = worker.until(link.D_BARRIER)
    assert max(acks(before), default=0) <= 4
    store.send((S_FOUND, fseq, context, (("m-1", 5, "#room", "", "PRIVMSG", "alice", "~other", "x", ""), None)),
               (S_DONE, fseq))  # someone else's message: alice is the channel's operator
    redact, _ = worker.until(link.D_REDACT)
    assert redact[1:5] == ("#room", A, LINE, "o-1")  # its msgid is the origin id
    assert worker.until(link.D_ANSWERED)[0] == (link.D_ANSWERED, A, "REDACT")
    batch, _ = store.until(S_WRITE)
    assert (REDACT_ENTRY, "m-1") in unpack(batch[2])
    assert worker.silent() and max(acks(worker.received), default=0) <= 4  # not before the store has it
    worker.received.clear()
    store.send((S_DONE, batch[1]))
    ack, _ = worker.until(link.D_ACK)
    assert ack == (link.D_ACK, 6)


def test_markread_is_the_stores_answer_passed_on(hub):
    store, worker = FakeStore(hub), FakeWorker(hub, W1)
    store.send((S_HELLO, {}, {}))  # no channels kept, no accounts
    worker.send(hello(), (link.R_CONNECT, A, "127.0.0.1"), (link.R_REGISTER, A, "alice", "~a", "h", "A"))
    event, _ = worker.until(E_USER)
    worker.send((link.R_MARKREAD, A, ("#Room",), 5_000_000, None))
    asked, skipped = store.until(S_MARKREAD)
    store.done_with_writes(skipped)
    fseq, cid, owner, keys, targets, time_us, joins = asked[1:]
    assert (cid, keys, targets, time_us, joins) == (A, ("#room",), ("#Room",), 5_000_000, None) and owner
    store.send((S_MARKERS, A, ("#Room",), [7_000_000], None), (S_DONE, fseq))
    assert worker.until(link.D_MARKREAD)[0] == (link.D_MARKREAD, A, ("#Room",), [7_000_000], None)
