"""Fakelag: a token bucket that slows a client's input instead of dropping the client.

`burst` lines may arrive at once; after that, lines are handled at `rate` per second. The
caller asks `delay(now)` before handling each line: 0 means go ahead (a token is spent), a
positive number is how long to hold the line. The clock is passed in, so tests never sleep.
"""
from __future__ import annotations


class FakeLag:
    __slots__ = ("burst", "rate", "tokens", "stamp")

    def __init__(self, burst: int, rate: float, now: float) -> None:
        self.burst = burst
        self.rate = rate
        self.tokens = float(burst)
        self.stamp = now

    def delay(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate
