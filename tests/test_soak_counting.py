"""The load generator's reading on synthetic input: however the server's bytes are split into
reads, a counted member counts exactly its deliveries and answers every PING, and a verified
member records every (sender, number) in order."""
import asyncio
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from loadgen import Generator, Plan, SoakClient  # noqa: E402

pytestmark = pytest.mark.timeout(60)

OTHER_LINES = [b":srv PING x", b"PING :srv", b":bob!~b@h JOIN #soak0", b":srv NOTICE soak9 :hi", b"ERROR :bye"]


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def stream_of(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\r\n" for line in lines)


def privmsg(sender: int, seq: int) -> bytes:
    return b":soak%d!~soak@127.0.0.1 PRIVMSG #soak0 :%d 12.5 %s" % (sender, seq, b"x" * 40)


def feed(client: SoakClient, data: bytes, cuts: list[int]) -> None:
    """Deliver `data` as reads ending at `cuts`, through the buffer the client hands out."""
    start = 0
    for end in sorted(set(cuts)) + [len(data)]:
        chunk = data[start:end]
        if chunk:
            view = client.get_buffer(-1)
            view[:len(chunk)] = chunk
            client.buffer_updated(len(chunk))
        start = end


def client_for(i: int, sample: int) -> tuple[SoakClient, Generator]:
    plan = Plan("127.0.0.1", 1, clients=20, channels=1, senders=10, rate=1, duration=1, procs=1, sample=sample)
    gen = Generator(plan, 0, report=None)
    client = SoakClient(gen, i)
    client.connection_made(Transport())
    client.transport.written.clear()
    client.joined.set_result(None)
    return client, gen


@settings(max_examples=300, deadline=None)
@given(kinds=st.lists(st.integers(0, len(OTHER_LINES) + 3), max_size=60),
       cuts=st.lists(st.integers(0, 6000), max_size=40))
def test_a_counted_member_counts_exactly_its_deliveries_however_the_reads_fall(kinds, cuts):
    async def main():
        client, gen = client_for(15, sample=1)
        assert client.ledger.counted_only
        lines, seq = [], 0
        for k in kinds:
            if k < len(OTHER_LINES):
                lines.append(OTHER_LINES[k])
            else:
                lines.append(privmsg(k, seq))
                seq += 1
        feed(client, stream_of(lines), cuts)
        assert client.ledger.received == gen.delivered == seq
        pings = [line for line in lines if line.startswith(b"PING")]
        assert client.transport.written == [b"PONG" + p[4:] + b"\r\n" for p in pings]
        assert len(gen.errors) == lines.count(b"ERROR :bye")
    asyncio.run(main())


@settings(max_examples=100, deadline=None)
@given(cuts=st.lists(st.integers(0, 3000), max_size=30))
def test_a_verified_member_records_every_message_in_order(cuts):
    async def main():
        client, gen = client_for(11, sample=0)
        assert not client.ledger.counted_only
        lines = [privmsg(3, 0), b"PING :srv", privmsg(4, 0), privmsg(3, 1), privmsg(4, 1), privmsg(3, 2)]
        feed(client, stream_of(lines), cuts)
        assert client.ledger.next_seq == {"soak3": 3, "soak4": 2}
        assert client.ledger.gaps == client.ledger.duplicates == 0
        assert gen.delivered == 5 and sum(gen.histogram) == 5
        assert client.transport.written == [b"PONG :srv\r\n"]
    asyncio.run(main())


def test_each_channel_has_its_sample_of_listeners_in_the_probe_process():
    plan = Plan("127.0.0.1", 1, clients=1003, channels=10, senders=10, rate=1, duration=1, procs=2, sample=3)
    verified = [i for i in range(plan.clients) if plan.fully_verified(i)]
    assert sorted(i % 10 for i in verified) == sorted(list(range(10)) * 3)  # 3 in every channel
    assert not any(i < plan.senders for i in verified)  # listeners: their order hashes are compared
    assert plan.total_procs == 3
    assert {plan.proc_of(i) for i in verified} == {2}
    assert {plan.proc_of(i) for i in range(plan.clients) if i not in verified} == {0, 1}
    everyone = Plan("127.0.0.1", 1, clients=50, channels=5, senders=5, rate=1, duration=1, procs=2)
    assert everyone.total_procs == 2 and all(everyone.fully_verified(i) for i in range(50))


WELCOME = [b":srv 001 soak15 :Welcome", b":srv 005 soak15 CHANTYPES=# :are supported", b":srv 372 soak15 :- hi",
           b":soak15!~soak@127.0.0.1 JOIN #soak0", b":srv 353 soak15 = #soak0 :soak15 soak3"]
END_OF_NAMES = b":srv 366 soak15 #soak0 :End of /NAMES list."


@settings(max_examples=300, deadline=None)
@given(ping_at=st.integers(0, len(WELCOME)), nick_taken=st.booleans(), cuts=st.lists(st.integers(0, 400), max_size=20))
def test_a_registering_member_joins_at_the_end_of_names_and_answers_what_came_before(ping_at, nick_taken, cuts):
    """Before it has joined, a member reads replies a whole read at a time: it must still see the
    end of NAMES only once that line is complete, answer a PING and report a refused nick."""
    async def main():
        plan = Plan("127.0.0.1", 1, clients=20, channels=1, senders=10, rate=1, duration=1, procs=1, sample=1)
        gen = Generator(plan, 0, report=None)
        client = SoakClient(gen, 15)
        client.connection_made(Transport())
        client.transport.written.clear()
        lines = WELCOME[:ping_at] + [b"PING :srv"] + WELCOME[ping_at:]
        if nick_taken:
            lines.insert(0, b":srv 433 * soak15 :Nickname is already in use")
        before = stream_of(lines) + END_OF_NAMES + b"\r"  # all but the last byte of the end of NAMES
        feed(client, before, [c for c in cuts if c < len(before)])
        assert not client.joined.done()
        feed(client, b"\n" + stream_of([privmsg(3, 0)]), [])
        assert client.joined.done()
        assert client.transport.written == [b"PONG :srv\r\n"]
        assert len(gen.errors) == (1 if nick_taken else 0)
        assert client.ledger.received == gen.delivered == 1
    asyncio.run(main())


def test_the_end_of_the_run_waits_for_exactly_what_each_member_is_owed():
    async def main():
        plan = Plan("127.0.0.1", 1, clients=6, channels=2, senders=4, rate=1, duration=1, procs=1, sample=1)
        gen = Generator(plan, 0, report=None)
        gen.clients = [SoakClient(gen, i) for i in range(plan.clients)]
        totals = {"soak0": 3, "soak1": 2, "soak2": 5, "soak3": 1}  # #soak0: soak0, soak2; #soak1: soak1, soak3
        owed = {0: 5, 1: 1, 2: 3, 3: 2, 4: 8, 5: 3}
        for i, client in enumerate(gen.clients):
            for sender, count in totals.items():
                if sender != client.nick and plan.channel_of(int(sender[4:])) == client.channel:
                    for seq in range(count):
                        client.ledger.record(sender, seq)
            assert client.ledger.received == owed[i]
        assert gen.all_arrived(totals)
        for client in gen.clients:  # each one short by one message, in turn
            ledger = client.ledger
            if ledger.counted_only:
                ledger.received -= 1
            else:
                ledger.next_seq[next(iter(ledger.next_seq))] -= 1
            assert not gen.all_arrived(totals), client.nick
            if ledger.counted_only:
                ledger.received += 1
            else:
                ledger.next_seq[next(iter(ledger.next_seq))] += 1
        assert gen.all_arrived(totals)
        gen.clients[4].closed = True  # a closed client is owed nothing
        gen.clients[4].ledger.next_seq.clear()
        assert gen.all_arrived(totals)
    asyncio.run(main())
