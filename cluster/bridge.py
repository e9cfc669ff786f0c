"""The hub's link to Redis: appends this host's batches to the stream, reads every host's back,
keeps this host's lease, notices other hosts' lapsed leases, writes snapshots and trims.

Theory of operation
-------------------
Everything here is I/O; what the entries mean is `cluster/ledger.py` and the hub's policy.

- **Appending.** `append(items)` queues one entry (numbered `seq` from 1 in this hub process);
  the writer task sends whatever is queued, several entries in one pipeline, and drops them
  from the queue only when Redis has answered. If Redis goes away mid-write, the same entries
  are sent again once it is back: the readers drop the copies by (token, seq).
- **Reading.** The reader task `XREAD BLOCK`s from the last id it handed on and gives each
  batch of entries to the hub, in stream order. Across a reconnect (or a Redis restart with
  AOF) it resumes from that id, once it has seen that the stream still starts at or before it:
  a host reported gone is no longer among those whose snapshots hold back the trimming, so
  after a long enough cut the entries it has not read (its own C_HOST_GONE among them) may be
  gone, and an XREAD would skip them without a word. Then the hub starts over (`on_gap`).
- **Down.** Any failed command marks Redis down: the hub stops reading its workers (so their
  clients' reading is paused and nothing grows without bound) and requests wait in the queue;
  the tasks retry with a short backoff, and the first success marks it up again.
- **Leases.** Every `lease / 4` (on a fixed cadence) the hub renews its own lease (a TTL of
  1.5 leases: `seat.lease_ms`) (a script: only if it is still this boot's, or has lapsed) and
  looks at the leases of the hosts the ledger says are up. A host whose lease is gone is
  reported with `C_HOST_GONE` for its epoch; every hub may report it, the ledger applies it
  once. A hub judges others only after it has itself been connected for a whole lease: right
  after Redis comes back (a restart loses no TTL, but an outage stops every host's renewals),
  every host renews first. A host reported gone takes its lease again (`hold_lease`) before it
  appends the `C_HOST_UP` that rejoins it: in the other order, a judge that reads the rejoin
  before the renewal sees a host that is up with no lease, and reports the new epoch too.
  Whether a lapse is reported is up to the judges' look while the key is gone (a host back
  within a check interval of its lapse may not be); either way the log decides it, once, for
  every host alike.
- **Snapshots.** Every two leases the hub's state (pickled, with the id of the last
  entry it covers) is written under this host's number; a starting hub reads the newest of
  them and the stream after it. The pickling is done by a child forked for it (as Redis's
  BGSAVE): the fork is the state at that instant, copy-on-write, and costs the loop about a
  millisecond where pickling 10,000 users in 2,000 channels took 55 to 70 ms
  (`scripts/measure_snapshot.py`). The child closes what it inherited (a hub that dies must
  not leave its workers' links open), writes with a connection of its own and exits. The stream is trimmed (`XTRIM MINID`) to the oldest snapshot
  of the hosts that are up, so no live host's snapshot is ever behind the stream's start.
"""
from __future__ import annotations

import asyncio
import logging
import os
import pickle
import signal
import time
from typing import Callable

from cluster import ledger
from cluster.seat import RENEWALS, SNAPSHOT_IDS, STREAM, Seat, lease_key, lease_ms, snapshot_key

log = logging.getLogger("hubchat.cluster")

READ_COUNT = 1000  # entries per XREAD
READ_BLOCK_MS = 1000
ENTRY_ITEMS = 2000  # requests at most in one entry
PIPELINE_ENTRIES = 64  # entries at most in one pipelined write
SNAPSHOT_LEASES = 2.0  # a snapshot every two leases (20 s by default): a joining hub reads at most that much stream
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)
RENEW = """
local held = redis.call('GET', KEYS[1])
if held == false or held == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if held == false then return 2 end
  return 1
end
return 0
"""


def _errors() -> tuple[type[BaseException], ...]:
    import redis
    return (redis.RedisError, OSError, asyncio.TimeoutError)


class Bridge:
    def __init__(self, seat: Seat, token: str, on_entries: Callable[[list], None],
                 on_health: Callable[[bool], None], hosts: Callable[[], dict],
                 snapshot: Callable[[], tuple[str, dict] | None],
                 on_drained: Callable[[int], None] = lambda waiting: None,
                 on_gap: Callable[[str, str], None] = lambda last, first: None) -> None:
        self.seat = seat
        self.token = token
        self.on_entries = on_entries  # [(id bytes, entry tuple)], in stream order
        self.on_health = on_health  # False: Redis is unreachable; True: back
        self.hosts = hosts  # the ledger's hosts (host -> (host_id, boot, epoch)), as the hub holds them now
        self.snapshot = snapshot  # (last id, what to pickle) of the hub's state, or None before it has caught up
        self.on_drained = on_drained  # entries still waiting, after each confirmed write
        self.on_gap = on_gap  # (last id read, the stream's first): entries this hub never read were trimmed
        self.seq = 0
        self.queue: list[bytes] = []  # entries not yet confirmed by Redis, in order
        self.pending: list[tuple] = []  # requests for the next entry
        self.last_id = "0-0"
        self.up = True
        self.up_since = time.monotonic()
        self.reported: set[tuple[int, tuple[int, int]]] = set()  # (host, epoch) reported gone by this hub
        self.judging = False  # connected for a whole lease: other hosts' leases are judged
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._lease_task: asyncio.Task | None = None
        self._errors = _errors()
        import redis.asyncio as aioredis
        common = dict(socket_connect_timeout=1.0, health_check_interval=0, retry=None)
        self.reader = aioredis.Redis.from_url(seat.url, socket_timeout=READ_BLOCK_MS / 1000 + 4.0, **common)
        self.writer = aioredis.Redis.from_url(seat.url, socket_timeout=3.0, **common)
        self.renew = self.writer.register_script(RENEW)

    # --- start ---------------------------------------------------------------------------
    async def newest_snapshot(self, at_most: tuple[int, int] | None = None) -> tuple[str, bytes] | None:
        """The newest snapshot any host wrote (its stream id and blob), waiting for Redis; with
        `at_most`, the newest of those at or before that entry that the stream still goes on
        from (a snapshot of a host that was gone may be behind its start), if there is one."""
        while True:
            try:
                ids = await self.writer.hgetall(SNAPSHOT_IDS)
                if not ids:
                    return None
                first = await self.first_id()
                early = {h: e for h, e in ids.items()
                         if (first is None or ledger.entry_id(e) >= first) and ledger.entry_id(e) <= at_most} \
                    if at_most else {}
                host, eid = max((early or ids).items(), key=lambda kv: ledger.entry_id(kv[1]))
                pipe = self.writer.pipeline(transaction=True)  # the id and the blob of one write
                pipe.hget(SNAPSHOT_IDS, host)
                pipe.get(snapshot_key(int(host)))
                now_eid, blob = await pipe.execute()
                if blob is None:
                    return None
                if now_eid != eid:
                    continue  # the host wrote a newer one since: choose again
                return eid.decode(), blob
            except self._errors as exc:
                self._down(exc)
                await asyncio.sleep(RETRY_DELAYS[-1])

    async def first_id(self) -> tuple[int, int] | None:
        first = await self.writer.xrange(STREAM, "-", "+", count=1)
        return ledger.entry_id(first[0][0]) if first else None

    def start_leases(self) -> None:
        """Renew from the start: a hub that waits for its workers' hellos and loads a snapshot
        must not let its lease lapse meanwhile."""
        self._lease_task = asyncio.get_running_loop().create_task(self._leases())

    def start(self, from_id: str) -> None:
        self.last_id = from_id
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read()), loop.create_task(self._write()),
                       loop.create_task(self._snapshots())]

    async def close(self) -> None:
        for task in (*self._tasks, self._lease_task):
            if task is not None:
                task.cancel()
        for client in (self.reader, self.writer):
            try:
                await client.aclose()
            except Exception:
                pass

    # --- health --------------------------------------------------------------------------
    def _down(self, exc: BaseException) -> None:
        self.judging = False
        if self.up:
            self.up = False
            log.warning("cluster: Redis is unreachable (%s); holding requests until it is back", exc or type(exc).__name__)
            self.on_health(False)

    def _up(self) -> None:
        if not self.up:
            self.up = True
            self.up_since = time.monotonic()
            log.info("cluster: Redis is back; %d entries to append", len(self.queue))
            self.on_health(True)

    # --- appending -----------------------------------------------------------------------
    def add(self, item: tuple) -> None:
        """One request for the next entry (sent at the end of this loop iteration)."""
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.seal)
        self.pending.append(item)

    def seal(self) -> None:
        pending, self.pending = self.pending, []
        for start in range(0, len(pending), ENTRY_ITEMS):
            self.seq += 1
            self.queue.append(ledger.encode(self.seat.number, self.token, self.seq, pending[start:start + ENTRY_ITEMS]))
        self._wake.set()

    async def _write(self) -> None:
        delay = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.queue:
                batch = self.queue[:PIPELINE_ENTRIES]
                try:
                    pipe = self.writer.pipeline(transaction=False)
                    for blob in batch:
                        pipe.xadd(STREAM, {b"d": blob})
                    await pipe.execute()
                except self._errors as exc:
                    delay = await self._back_off(exc, delay)
                    continue
                delay = 0
                del self.queue[:len(batch)]
                self._up()
                self.on_drained(len(self.queue))

    async def _back_off(self, exc: Exception, delay: int) -> int:
        """Redis is unreachable: say so once, wait a little longer each time, try again."""
        self._down(exc)
        await asyncio.sleep(RETRY_DELAYS[min(delay, len(RETRY_DELAYS) - 1)])
        return delay + 1

    # --- reading -------------------------------------------------------------------------
    async def _read(self) -> None:
        delay = 0
        check = True  # at the start, and after any failure: is the stream still there from last_id on?
        while True:
            try:
                hosts = self.hosts()
                if (check or hosts and self.seat.number not in hosts) and self.last_id != "0-0":
                    # (and while this host is reported gone: nothing holds the trimming back for it)
                    first = await self.first_id()
                    if first is not None and first > ledger.entry_id(self.last_id):
                        self.on_gap(self.last_id, ledger.id_text(first))
                        return
                check = False
                answer = await self.reader.xread({STREAM: self.last_id}, count=READ_COUNT, block=READ_BLOCK_MS)
            except self._errors as exc:
                check = True
                delay = await self._back_off(exc, delay)
                continue
            delay = 0
            self._up()
            if not answer:
                continue
            entries = answer[0][1]
            self.last_id = entries[-1][0].decode()
            decoded = []
            for eid, fields in entries:
                try:
                    decoded.append((eid.decode(), ledger.decode(fields[b"d"])))
                except (ValueError, KeyError) as exc:
                    log.warning("cluster: skipped stream entry %s: %s", eid.decode(), exc)
            self.on_entries(decoded)

    # --- leases --------------------------------------------------------------------------
    async def hold_lease(self) -> None:
        """Renew this host's lease now, waiting for Redis if need be."""
        delay = 0
        while True:
            try:
                if await self.renew(keys=[lease_key(self.seat.host_id)], args=[self.seat.boot,
                                                                               lease_ms(self.seat.lease)]):
                    return
                log.error("cluster: another host has taken host_id %r; this host's lease is lost", self.seat.host_id)
                return
            except self._errors as exc:
                delay = await self._back_off(exc, delay)

    async def _leases(self) -> None:
        seat = self.seat
        ms = lease_ms(seat.lease)
        interval = seat.lease / RENEWALS
        due = time.monotonic()
        while True:
            due = max(due + interval, time.monotonic())  # a late renewal does not push back the next ones
            await asyncio.sleep(due - time.monotonic())
            try:
                renewed = await self.renew(keys=[lease_key(seat.host_id)], args=[seat.boot, ms])
                if renewed == 0:
                    log.error("cluster: another host has taken host_id %r; this host's lease is lost", seat.host_id)
                elif renewed == 2:
                    log.warning("cluster: this host's lease had lapsed (cut off from Redis); renewed it")
                if time.monotonic() - self.up_since < seat.lease or not self.up:
                    continue  # not connected for a whole lease: the others have not had their chance to renew
                if not self.judging:
                    self.judging = True
                    log.info("cluster: connected to Redis for a whole lease; judging other hosts' leases")
                hosts = {h: v for h, v in self.hosts().items() if h != seat.number}
                if not hosts:
                    continue
                held = await self.writer.mget([lease_key(v[0]) for v in hosts.values()])
                for (host, (host_id, boot, epoch)), value in zip(hosts.items(), held):
                    if value is not None and value.decode() == boot:
                        continue
                    if (host, epoch) not in self.reported:
                        self.reported.add((host, epoch))
                        log.info("cluster: host %r (number %d) let its lease lapse; reporting it gone", host_id, host)
                        self.add((None, 0, False, (ledger.C_HOST_GONE, host, epoch)))
            except self._errors as exc:
                self._down(exc)

    # --- snapshots and trimming ------------------------------------------------------------
    async def _snapshots(self) -> None:
        while True:
            await asyncio.sleep(self.seat.lease * SNAPSHOT_LEASES)
            await self.write_snapshot()

    async def write_snapshot(self) -> None:
        taken = self.snapshot()
        if taken is None:
            return
        eid, data = taken
        try:
            if hasattr(os, "fork"):
                if not await self._write_in_child(eid, data):
                    return
            else:
                pipe = self.writer.pipeline(transaction=True)
                pipe.set(snapshot_key(self.seat.number), pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
                pipe.hset(SNAPSHOT_IDS, str(self.seat.number), eid)
                await pipe.execute()
            log.debug("cluster: wrote a snapshot at %s", eid)
            ids = await self.writer.hgetall(SNAPSHOT_IDS)
            live = [ledger.entry_id(ids[str(h).encode()]) for h in self.hosts() if str(h).encode() in ids]
            if live and len(live) == len(self.hosts()):
                oldest = min(live)
                await self.writer.xtrim(STREAM, minid=ledger.id_text(oldest), approximate=True)
        except self._errors as exc:
            self._down(exc)

    async def _write_in_child(self, eid: str, data: dict) -> bool:
        """Pickle and write the snapshot in a forked child; True once it has been written."""
        pid = os.fork()
        if pid == 0:  # the child: no loop, no logging (their locks may be the parent's), only this
            code = 1
            try:
                signal.set_wakeup_fd(-1)  # a signal to the child must not wake the parent's loop
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.closerange(3, 1 << 16)
                import redis
                blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
                client = redis.Redis.from_url(self.seat.url, socket_connect_timeout=1.0, socket_timeout=5.0)
                pipe = client.pipeline(transaction=True)
                pipe.set(snapshot_key(self.seat.number), blob)
                pipe.hset(SNAPSHOT_IDS, str(self.seat.number), eid)
                pipe.execute()
                code = 0
            finally:
                os._exit(code)
        while True:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped by someone else: whether it wrote is not known
                return False
            if done:
                break
            await asyncio.sleep(0.02)
        if os.waitstatus_to_exitcode(status) != 0:
            log.warning("cluster: the snapshot at %s was not written (its child exited with %d)", eid,
                        os.waitstatus_to_exitcode(status))
            return False
        return True
