"""A login throttle, pure: failed logins counted per account and per address, at most `limit`
(3, ergo's default) in any `window` (60 s) for each. The clock is passed in.

    wait = throttle.allowed(account, address, now)   # 0.0: go ahead; else seconds to wait
    throttle.began(account, address)                 # a password check is being computed
    throttle.ended(account, address)                 # ... and is over (then failed or succeeded)
    throttle.failed(account, address, now)           # after wrong credentials
    throttle.succeeded(account, address, now)        # after a login

An attempt is allowed when both its account and its address have fewer than `limit` failures
in the last `window` seconds; otherwise `allowed` says how long until the oldest of those
leaves the window. A sliding window, kept exactly: each key holds the times of its last `limit`
failures, no more.

- Checks in flight: a password hash costs the server (argon2id, see accounts/credentials.py),
  so the hub asks `allowed` before a worker computes one, and counts each check that has begun
  and not yet ended as a failure to come: a client opening many connections at once gets at
  most `limit` hashes computed for an account or address, not one per connection. While only
  checks in flight stand in the way, the wait is 1 s (they end within a few milliseconds).
- Addresses: an IPv4 address counts alone; an IPv6 address counts with its whole /64 (one
  host usually has a /64 to pick from); an IPv4-mapped IPv6 address is its IPv4 address.
  Anything that does not parse (a Unix socket's empty name) is a key as it is. No address is
  exempt, loopback included, unless `exempt` lists its network; an exempt address is neither
  counted nor checked, but its accounts still are.
- Accounts are casefolded (`ircproto.casemap.casefold`); `account=None` (not known yet, e.g.
  when a mechanism starts) checks or counts the address alone.
- A success forgets the account's failures (its owner got in) but not the address's: an
  attacker who owns one account must not reset the count of the address it guesses others'
  passwords from.
- Memory: each table (accounts, addresses) keeps at most `max_entries` keys (50,000 by
  default: 13-15 MB per full table, 250-300 bytes a key with 3 failures, as measured by
  tests/test_accounts.py), least recently failed first out. Keys whose failures have all left
  the window are dropped as later failures come in. Past the cap (a spray of 50,000 names or
  /64s within a minute) the oldest keys are forgotten early: such an attacker gets at most
  `limit` more tries at each forgotten key, still bounded per key. (An attacker holding a /48
  has 65,536 /64s: against that it is the account table that holds.)
"""
from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterable

from ircproto.casemap import casefold

LIMIT = 3
WINDOW = 60.0
MAX_ENTRIES = 50_000
PENDING_WAIT = 1.0  # seconds to wait when only checks in flight stand in the way


def address_key(address: str) -> str:
    """The key an address's failures count under (see the module's docstring)."""
    try:
        ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
    except (ValueError, AttributeError):
        return address if isinstance(address, str) else repr(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class _Table:
    """Key -> the times of its last `limit` failures, least recently failed first."""
    __slots__ = ("limit", "window", "max_entries", "entries", "pending")

    def __init__(self, limit: int, window: float, max_entries: int) -> None:
        self.limit = limit
        self.window = window
        self.max_entries = max_entries
        self.entries: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        self.pending: dict[str, int] = {}  # key -> password checks in flight

    def _recent(self, key: str, now: float) -> tuple[float, ...]:
        times = self.entries.get(key, ())
        # A time after `now` (a clock that stepped back) counts as recent.
        return tuple(t for t in times if now - t < self.window)

    def wait(self, key: str, now: float) -> float:
        recent = self._recent(key, now)
        if len(recent) + self.pending.get(key, 0) < self.limit:
            return 0.0
        if len(recent) < self.limit:
            return PENDING_WAIT
        return min(self.window, max(0.0, recent[-self.limit] + self.window - now))

    def begin(self, key: str) -> None:
        self.pending[key] = self.pending.get(key, 0) + 1

    def end(self, key: str) -> None:
        left = self.pending.get(key, 0) - 1
        if left > 0:
            self.pending[key] = left
        else:
            self.pending.pop(key, None)

    def fail(self, key: str, now: float) -> None:
        recent = self._recent(key, now) + (now,)
        self.entries[key] = recent[-self.limit:]
        self.entries.move_to_end(key)
        self._expire(now)

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)

    def _expire(self, now: float) -> None:
        entries = self.entries
        while entries:
            key, times = next(iter(entries.items()))
            if len(entries) > self.max_entries or not any(now - t < self.window for t in times):
                del entries[key]
            else:
                break


class LoginThrottle:
    def __init__(self, *, limit: int = LIMIT, window: float = WINDOW, max_entries: int = MAX_ENTRIES,
                 exempt: Iterable[str] = ()) -> None:
        """`exempt`: networks (e.g. "127.0.0.0/8", "::1/128") whose addresses are not throttled."""
        self.accounts = _Table(limit, window, max_entries)
        self.addresses = _Table(limit, window, max_entries)
        self.exempt = tuple(ipaddress.ip_network(net, strict=False) for net in exempt)

    def _address(self, address: str | None) -> str | None:
        if address is None:
            return None
        if self.exempt:
            try:
                ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
                ip = ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip
            except (ValueError, AttributeError):
                ip = None
            if ip is not None and any(ip.version == net.version and ip in net for net in self.exempt):
                return None
        return address_key(address)

    def allowed(self, account: str | None, address: str | None, now: float) -> float:
        """0.0 when an attempt may go ahead, else the seconds until one may."""
        wait = 0.0
        if account is not None:
            wait = self.accounts.wait(casefold(account), now)
        key = self._address(address)
        if key is not None:
            wait = max(wait, self.addresses.wait(key, now))
        return wait

    def began(self, account: str | None, address: str | None) -> None:
        """A password check for this account and address has been allowed and is being computed."""
        if account is not None:
            self.accounts.begin(casefold(account))
        key = self._address(address)
        if key is not None:
            self.addresses.begin(key)

    def ended(self, account: str | None, address: str | None) -> None:
        """A check `began` is over (call `failed` or `succeeded` too, as it turned out)."""
        if account is not None:
            self.accounts.end(casefold(account))
        key = self._address(address)
        if key is not None:
            self.addresses.end(key)

    def failed(self, account: str | None, address: str | None, now: float) -> None:
        if account is not None:
            self.accounts.fail(casefold(account), now)
        key = self._address(address)
        if key is not None:
            self.addresses.fail(key, now)

    def succeeded(self, account: str | None, address: str | None, now: float) -> None:
        if account is not None:
            self.accounts.forget(casefold(account))

    def __len__(self) -> int:
        return len(self.accounts.entries) + len(self.addresses.entries)
