"""A host's seat in the cluster, taken by the supervisor before it forks anything: its host
number (the high bits of every wid it hands out) and its lease (the key that says it is alive).

The number is kept in Redis by host_id (`HSETNX` of an `INCR`), so a host that restarts keeps
it. The lease is `SET NX` with this boot's random id and a TTL of `cluster.lease`; the hub
renews it from then on. A lease held by another boot id is either the previous run of this host,
which died (it lapses within one lease), or another live host with the same host_id (it is
renewed): so a start waits up to one lease and a little for it, and then stops with a message.
"""
from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from chatstate.state import HOST_SHIFT

log = logging.getLogger("hubchat.cluster")

PREFIX = "hubchat:"
STREAM = PREFIX + "log"
HOST_NUMBERS = PREFIX + "hosts"  # hash: host_id -> host number
HOST_COUNTER = PREFIX + "hostseq"
SNAPSHOT_IDS = PREFIX + "snapids"  # hash: host number -> the stream id its snapshot covers
MAX_HOSTS = (1 << (31 - HOST_SHIFT)) - 1  # wid << 32 | n stays within a signed 64-bit integer
CONNECT_WAIT = 30.0  # seconds a start waits for Redis before it gives up


RENEWALS = 4  # renewals per lease


def lease_ms(lease: float) -> int:
    """The lease key's TTL: two renewal intervals more than the lease. A host that dies just
    before a renewal is still kept for the whole lease even when that renewal was due late (a
    busy loop, a slow round trip: one interval plus 20 ms was seen on a loaded machine, and
    the host was quit before its lease was out), and one that dies right after for at most
    two intervals more."""
    return int(lease * 1000 * (1 + 2 / RENEWALS))


def lease_key(host_id: str) -> str:
    return f"{PREFIX}lease:{host_id}"


def snapshot_key(host: int) -> str:
    return f"{PREFIX}snap:{host}"


class SeatError(Exception):
    pass


@dataclass(frozen=True)
class Seat:
    url: str
    host_id: str
    number: int
    boot: str
    lease: float

    @property
    def first_wid(self) -> int:
        """The wids this host hands out come after this one."""
        return self.number << HOST_SHIFT


def take(url: str, host_id: str, lease: float) -> Seat:
    import redis
    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0)
    try:
        deadline = time.monotonic() + CONNECT_WAIT
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError as exc:
                if time.monotonic() > deadline:
                    raise SeatError(f"cluster.redis_url: cannot reach Redis at {url}: {exc}") from None
                time.sleep(0.5)  # a start with Redis not up yet: wait for it, not a race
        number = client.hget(HOST_NUMBERS, host_id)
        if number is None:
            client.hsetnx(HOST_NUMBERS, host_id, client.incr(HOST_COUNTER))
            number = client.hget(HOST_NUMBERS, host_id)
        number = int(number)
        if number > MAX_HOSTS:
            raise SeatError(f"cluster: {number} hosts have joined this Redis; at most {MAX_HOSTS} fit in a client id")
        boot = secrets.token_hex(6)
        key, ms = lease_key(host_id), lease_ms(lease)
        deadline = time.monotonic() + lease + 1.0
        waited = False
        while not client.set(key, boot, nx=True, px=ms):
            if time.monotonic() > deadline:
                raise SeatError(f"cluster.host_id: {host_id!r} is in use by another live host (its lease in Redis "
                                f"is being renewed); give every host its own host_id")
            if not waited:
                log.info("cluster: the lease of %r is still held; waiting up to %.0fs for it to lapse", host_id, lease)
                waited = True
            time.sleep(0.1)  # polling a TTL that Redis does not announce
        log.info("cluster: joined %s as host %r, number %d (boot %s)", url, host_id, number, boot)
        return Seat(url, host_id, number, boot, lease)
    finally:
        client.close()
