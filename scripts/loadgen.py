"""The soak run's load generator: IRC clients spread over several processes.

Client i is nick `<prefix><i>` in channel `#soak<i % channels>`; clients 0..senders-1 also send,
together `rate` messages a second, each line about 100 bytes: `<seq> <monotonic send time> x...`.
CLOCK_MONOTONIC is shared by every process on the machine, so a receiver's latency is simply
its clock minus the send time in the line. Each process reports once a second (sent,
delivered, a latency histogram, connected) and, at the end, its clients' ledgers.
It speaks plain IRC, so it can drive any server. With `websocket_share`, that share of the
clients (spread evenly over the numbers) speak IRC over WebSocket instead (the IRCv3 websocket
spec, subprotocol text.ircv3.net, wsproto), to the server's HTTP port; the checks are the same.
"""
from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

from ledger import Ledger

LINE_BYTES = 100
SEND_TICK = 0.005  # seconds between a sender's writes (each sends what has come due since)
READ_BUFFER = 256 * 1024  # one per generator process, shared by its clients' reads
BUCKET_MS = 0.1  # latency histogram resolution
BUCKETS = 20_000  # up to 2 s; slower deliveries land in the last bucket
PORTS_PER_SOURCE = 20_000
# While messages are sent, a counted member's socket wakes its reader only once this much has
# arrived (SO_RCVLOWAT): fewer, larger reads for members whose latency nobody measures. The probe's
# members read every line as it comes. Set back to 1 byte before the run drains.
COUNTED_LOW_WATER = 16 * 1024
CONNECTING = 200  # clients being set up at once, per generator process
JOIN_TIMEOUT = 300.0  # seconds for all of a process's clients to register and join
# What makes _lines look at a read line by line; a read holding none of these (most of a client's
# registration) only needs its end of NAMES found.
LOOKED_AT = (b" PRIVMSG #", b"PING", b"ERROR", b" 433 ")
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)  # Linux


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    clients: int
    channels: int
    senders: int
    rate: float
    duration: float
    procs: int  # generator processes holding the clients (besides the probe, below)
    prefix: str = "soak"
    drain: float = 10.0
    # Members per channel verified in full (0: all); the others count their deliveries. The
    # verified ones are the channel's last members (so, with few senders, ones that only listen)
    # and live in a process of their own, the probe: what they measure is the server's latency,
    # not the wait for a generator process to get round to them among thousands of sockets.
    sample: int = 0
    web_port: int = 0  # the server's HTTP port, for WebSocket clients
    websocket_share: float = 0.0  # the fraction of clients that connect over WebSocket
    # With several hosts of one cluster (soak --cluster N): every host's (address, port). A channel's
    # members (i % channels) are dealt over the hosts in turn, so every channel has members on every
    # host, and a delivery's sender's host is known from its nick.
    targets: tuple[tuple[str, int], ...] = ()

    def host_of(self, i: int) -> int:
        return i // self.channels % len(self.targets) if self.targets else 0

    def target(self, i: int) -> tuple[str, int]:
        return self.targets[self.host_of(i)] if self.targets else (self.host, self.port)

    @property
    def hosts(self) -> int:
        return len(self.targets) or 1

    def websocket(self, i: int) -> bool:
        """Whether client i speaks IRC over WebSocket: every 1/share-th client, evenly spread."""
        share = self.websocket_share
        return share > 0 and int((i + 1) * share + 1e-9) > int(i * share + 1e-9)

    def channel_of(self, i: int) -> str:
        return f"#soak{i % self.channels}"

    def nick(self, i: int) -> str:
        return f"{self.prefix}{i}"

    def source_address(self, i: int) -> tuple[str, int] | None:
        """On loopback, a new source address every PORTS_PER_SOURCE clients: one address has only
        about 28,000 ephemeral ports towards one server port."""
        if not self.host.startswith("127.") or self.clients <= PORTS_PER_SOURCE:
            return None
        return (f"127.0.{i // PORTS_PER_SOURCE // 250}.{1 + i // PORTS_PER_SOURCE % 250}", 0)

    def fully_verified(self, i: int) -> bool:
        members = (self.clients - 1 - i % self.channels) // self.channels + 1
        return not self.sample or i // self.channels >= members - self.sample

    @property
    def total_procs(self) -> int:
        return self.procs + (1 if self.sample else 0)

    def proc_of(self, i: int) -> int:
        """The generator process of client i: the probe (the last one) for verified members."""
        if self.sample and self.fully_verified(i):
            return self.procs
        return i % self.procs


class SoakClient(asyncio.BufferedProtocol):
    """One client. Its socket is read straight into its generator's one shared buffer
    (`recv_into`: no new bytes object per read), and a counted member's deliveries are counted
    there, without copying them out; a verified member's lines are copied out and parsed."""

    def __init__(self, gen: "Generator", i: int) -> None:
        self.gen = gen
        self.host = gen.plan.host_of(i)
        self.nick = gen.plan.nick(i)
        self.channel = gen.plan.channel_of(i)
        self.ledger = Ledger(self.channel, self.nick, sends=i < gen.plan.senders,
                             counted_only=not gen.plan.fully_verified(i))
        self.buffer = b""  # the start of a line whose end has not arrived yet
        self.transport: asyncio.Transport | None = None
        self.joined = asyncio.get_running_loop().create_future()
        self.closed = False
        self.quitting = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send(f"NICK {self.nick}\r\nUSER soak 0 * :soak\r\nJOIN {self.channel}\r\n".encode())

    def send(self, data: bytes) -> None:
        """IRC lines to the server."""
        self.transport.write(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.gen.read_view  # safe to share: callbacks run one at a time

    def buffer_updated(self, nbytes: int) -> None:
        if self.ledger.counted_only and self.joined.done():
            self._count(nbytes)
        else:
            self._lines(bytes(self.gen.read_view[:nbytes]))

    def _lines(self, data: bytes) -> None:
        data = self.buffer + data
        if not any(word in data for word in LOOKED_AT):  # only replies, as in a welcome burst
            end = data.rfind(b"\r\n")
            if end < 0:
                self.buffer = data
                return
            if data.find(b" 366 ", 0, end) >= 0 and not self.joined.done():
                self.joined.set_result(None)
            self.buffer = data[end + 2:]
            return
        *lines, self.buffer = data.split(b"\r\n")
        gen = self.gen
        now = time.monotonic()
        for line in lines:
            marker = line.find(b" PRIVMSG #")
            if marker > 0:
                sender = line[1:line.index(b"!")].decode()
                text = line[line.index(b" :", marker) + 2:]
                seq, sent_at, _ = text.split(b" ", 2)
                self.ledger.record(sender, int(seq))
                gen.delivered += 1
                bucket = int((now - float(sent_at)) * 1000 / BUCKET_MS)
                gen.histogram[bucket if bucket < BUCKETS else BUCKETS - 1] += 1
                if gen.hosts > 1 and gen.plan.host_of(int(sender[gen.prefix_length:])) != self.host:
                    gen.cross[bucket if bucket < BUCKETS else BUCKETS - 1] += 1
            elif line.startswith(b"PING"):
                self.send(b"PONG" + line[4:] + b"\r\n")
            elif b" 366 " in line and not self.joined.done():
                self.joined.set_result(None)
            elif line.startswith(b"ERROR") or line.split(b" ", 2)[1:2] == [b"433"]:
                gen.errors.append(f"{self.nick}: {line.decode(errors='replace')}")

    def _count(self, nbytes: int) -> None:
        """Count deliveries where they were read (C-speed scans, no copies); only a read holding
        some other line (PING, ERROR) is split into lines and looked at one by one."""
        buf = self.gen.read_buffer
        last = buf.rfind(b"\n", 0, nbytes)
        if last < 0:
            self.buffer += bytes(self.gen.read_view[:nbytes])
            return
        first = buf.find(b"\n", 0, nbytes)
        # The first complete line began in an earlier read: count it on its joined bytes.
        head = self.buffer + bytes(self.gen.read_view[:first + 1])
        n = head.count(b" PRIVMSG #") + buf.count(b" PRIVMSG #", first + 1, last + 1)
        if buf.count(b"\n", first + 1, last + 1) + 1 != n:  # something else is in there: the slow path
            complete = head + bytes(self.gen.read_view[first + 1:last + 1])
            for line in complete.split(b"\r\n"):
                if line.startswith(b"PING"):
                    self.send(b"PONG" + line[4:] + b"\r\n")
                elif line.startswith(b"ERROR"):
                    self.gen.errors.append(f"{self.nick}: {line.decode(errors='replace')}")
        self.buffer = bytes(self.gen.read_view[last + 1:nbytes])
        self.ledger.received += n
        self.gen.delivered += n

    def connection_lost(self, exc) -> None:
        self.closed = True
        if not self.quitting:
            self.gen.disconnected.append(self.nick)
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(f"{self.nick} was closed before joining"))


class WebSocketSoakClient(SoakClient):
    """A soak client speaking IRC over WebSocket: the frames are turned back into the byte stream
    of lines a TCP client reads, and the same bookkeeping follows."""

    def __init__(self, gen: "Generator", i: int) -> None:
        super().__init__(gen, i)
        from wsproto import ConnectionType, WSConnection  # only runs with WebSocket clients need it
        self.ws = WSConnection(ConnectionType.CLIENT)

    def connection_made(self, transport) -> None:
        from wsproto.events import Request
        self.transport = transport
        transport.write(self.ws.send(Request(host=f"{self.gen.plan.host}:{self.gen.plan.web_port}", target="/",
                                             subprotocols=["text.ircv3.net"])))

    def send(self, data: bytes) -> None:
        from wsproto.events import TextMessage
        ws = self.ws
        self.transport.write(b"".join(ws.send(TextMessage(data=line.decode()))
                                      for line in data.split(b"\r\n") if line))

    def buffer_updated(self, nbytes: int) -> None:
        from wsproto.events import AcceptConnection, CloseConnection, Ping, RejectConnection, TextMessage
        self.ws.receive_data(bytes(self.gen.read_view[:nbytes]))
        lines = []
        for event in self.ws.events():
            if isinstance(event, TextMessage):
                lines.append(event.data.encode() + b"\r\n")  # one line per message (the spec)
            elif isinstance(event, Ping):
                self.transport.write(self.ws.send(event.response()))
            elif isinstance(event, AcceptConnection):
                super().connection_made(self.transport)
            elif isinstance(event, (RejectConnection, CloseConnection)):
                self.gen.errors.append(f"{self.nick}: WebSocket {type(event).__name__}")
                self.transport.close()
        if not lines:
            return
        data = b"".join(lines)
        if self.ledger.counted_only and self.joined.done() and b"PING" not in data and b"ERROR" not in data:
            n = data.count(b" PRIVMSG #")
            self.ledger.received += n
            self.gen.delivered += n
        else:
            self._lines(data)


class Generator:
    def __init__(self, plan: Plan, index: int, report) -> None:
        self.plan = plan
        self.index = index
        self.report = report  # a multiprocessing queue
        self.clients: list[SoakClient] = []
        self.sent: dict[str, int] = {}
        self.delivered = 0
        self.sent_total = 0
        self.histogram = [0] * BUCKETS
        self.cross = [0] * BUCKETS  # the deliveries from a sender on another host of the cluster
        self.hosts = plan.hosts
        self.prefix_length = len(plan.prefix)
        self.errors: list[str] = []
        self.disconnected: list[str] = []
        self.read_buffer = bytearray(READ_BUFFER)
        self.read_view = memoryview(self.read_buffer)

    async def connect_all(self) -> None:
        """Connect and register this process's clients, at most CONNECTING at a time.

        The generator shares the machine with the server, so its cost per client is kept down: a
        fixed set of lanes each sets up one client after another (no task, semaphore wait or
        timer per client), and a client that needs no source address of its own is connected by
        the event loop from host and port (uvloop does that in C; a socket of our own costs a
        Python round trip). Together with reading a registration's replies a read at a time,
        this halved the generator's CPU per registration."""
        loop = asyncio.get_running_loop()
        mine = iter([i for i in range(self.plan.clients) if self.plan.proc_of(i) == self.index])

        async def lane() -> None:
            for i in mine:
                if self.plan.websocket(i):
                    client = WebSocketSoakClient(self, i)
                    await loop.create_connection(lambda: client, self.plan.host, self.plan.web_port)
                    self.clients.append(client)
                    await client.joined
                    continue
                client = SoakClient(self, i)
                source = self.plan.source_address(i)
                host, port = self.plan.target(i)
                if source is None:
                    await loop.create_connection(lambda: client, host, port)
                else:
                    await loop.create_connection(lambda: client, sock=await self._socket_from(source, host, port))
                self.clients.append(client)
                await client.joined

        async with asyncio.timeout(JOIN_TIMEOUT):
            await asyncio.gather(*(lane() for _ in range(CONNECTING)))

    async def _socket_from(self, source: tuple[str, int], host: str, port: int) -> socket.socket:
        """A socket connected from a source address on 127/8. The port is chosen at connect time
        (IP_BIND_ADDRESS_NO_PORT), so it only has to be unique per destination: a plain bind to
        port 0 takes a port from the whole range and runs out next to a previous run's TIME_WAITs."""
        sock = socket.socket(socket.AF_INET)
        sock.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind(source)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
        except OSError:
            sock.close()
            raise
        return sock

    async def send_until(self, start: float, stop: float) -> None:
        senders = [c for c in self.clients if c.ledger.sends]
        if not senders:
            return
        per_sender = self.plan.rate / self.plan.senders
        pad = b"x" * LINE_BYTES
        while time.monotonic() < start:
            await asyncio.sleep(start - time.monotonic())
        # Each sender's schedule is offset by a fraction of its period, so that 10,000 senders at
        # one message every 10 s send 1,000 a second, not 10,000 at once every 10 s.
        phase = {c.nick: (int(c.nick[len(self.plan.prefix):]) / self.plan.senders) for c in senders}
        while (now := time.monotonic()) < stop:
            elapsed = (now - start) * per_sender
            for client in senders:
                due = int(elapsed + phase[client.nick])
                seq = self.sent.get(client.nick, 0)
                if seq < due and not client.closed:
                    head = f"PRIVMSG {client.channel} :".encode()
                    lines = []
                    for n in range(seq, due):
                        body = f"{n} {time.monotonic():.6f} ".encode()
                        lines.append(head + body + pad[:max(0, LINE_BYTES - len(head) - len(body) - 2)] + b"\r\n")
                    client.send(b"".join(lines))
                    self.sent_total += due - seq
                    self.sent[client.nick] = due
            await asyncio.sleep(SEND_TICK)

    def all_arrived(self, totals: dict[str, int]) -> bool:
        """Whether every open client has received all that the others in its channel sent."""
        plan = self.plan
        sent_to: dict[str, list[tuple[str, int]]] = {}  # channel -> (sender, messages)
        for sender, count in totals.items():
            sent_to.setdefault(plan.channel_of(int(sender[len(plan.prefix):])), []).append((sender, count))
        channel_total = {channel: sum(count for _, count in sent) for channel, sent in sent_to.items()}
        for client in self.clients:
            if client.closed:
                continue
            if client.ledger.counted_only:
                expected = channel_total.get(client.channel, 0) - totals.get(client.nick, 0)
                if client.ledger.received < expected:
                    return False
                continue
            for sender, count in sent_to.get(client.channel, ()):
                if sender != client.nick and client.ledger.next_seq.get(sender, 0) < count:
                    return False
        return True

    async def tick(self, stop_event: asyncio.Event) -> None:
        last = (0, 0)
        while not stop_event.is_set():
            await asyncio.sleep(1.0)
            histogram, self.histogram = self.histogram, [0] * BUCKETS
            cross, self.cross = self.cross, [0] * BUCKETS
            self.report.put(("tick", self.index, self.sent_total - last[0], self.delivered - last[1],
                             {b: n for b, n in enumerate(histogram) if n},
                             sum(1 for c in self.clients if not c.closed),
                             {b: n for b, n in enumerate(cross) if n}))
            last = (self.sent_total, self.delivered)

    def set_counted_low_water(self, nbytes: int) -> None:
        for client in self.clients:
            if client.ledger.counted_only and not client.closed:
                client.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, nbytes)

    async def run(self, ready, go) -> None:
        await self.connect_all()
        ready.put(("ready", self.index))
        start = await asyncio.get_running_loop().run_in_executor(None, go.get)
        ticking = asyncio.Event()
        ticker = asyncio.create_task(self.tick(ticking))
        self.set_counted_low_water(COUNTED_LOW_WATER)
        await self.send_until(start, start + self.plan.duration)
        self.set_counted_low_water(1)  # the last bytes of every stream must wake their reader
        self.report.put(("sent", self.index, dict(self.sent)))
        totals = await asyncio.get_running_loop().run_in_executor(None, go.get)  # what everyone sent
        deadline = time.monotonic() + self.plan.drain
        while not self.all_arrived(totals) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        ticking.set()
        await ticker
        for client in self.clients:
            client.quitting = True
            if client.transport is not None:
                client.transport.close()
        self.report.put(("done", self.index, [c.ledger.summary() for c in self.clients],
                         self.disconnected, self.errors[:20]))


def generator_main(plan: Plan, index: int, report, ready, go) -> None:
    # uvloop when the server has it: the generator's own CPU is taken from the server's cores.
    run = asyncio.run
    try:
        import uvloop
        run = uvloop.run
    except ImportError:
        pass
    run(Generator(plan, index, report).run(ready, go))
