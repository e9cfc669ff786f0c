"""The connections every worker holds, and the limits a new one is admitted under.

The hub counts connections, registered or not, so that no worker needs to know the others':
a connection over the server's limit, or over its address's, is refused at the door."""
from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Iterator

from chatstate.state import wid_of


class Connections:
    """cid -> the IP address it came from, counted per address."""

    def __init__(self) -> None:
        self.address: dict[int, str] = {}
        self.per_ip: Counter[str] = Counter()
        self._one_string_per_address: dict[str, str] = {}  # clients behind one address share its string

    def __contains__(self, cid: int) -> bool:
        return cid in self.address

    def __len__(self) -> int:
        return len(self.address)

    def admit(self, cid: int, ip: str) -> None:
        self.address[cid] = self._one_string_per_address.setdefault(ip, ip)
        self.per_ip[ip] += 1

    def forget(self, cid: int) -> None:
        ip = self.address.pop(cid, None)
        if ip is not None:
            self.per_ip[ip] -= 1
            if not self.per_ip[ip]:
                del self.per_ip[ip]
                del self._one_string_per_address[ip]

    def of_worker(self, wid: int) -> Iterator[int]:
        return (cid for cid in list(self.address) if wid_of(cid) == wid)

    def refusal(self, ip: str, limits) -> str | None:
        """Why a new connection from `ip` is refused (the text of its ERROR), or None."""
        if len(self.address) >= limits.max_clients:
            return f"The server is full ({limits.max_clients} connections); try again later"
        if self.per_ip[ip] >= limits.max_clients_per_ip and not (limits.exempt_loopback and is_loopback(ip)):
            return f"Too many connections from your address (the limit is {limits.max_clients_per_ip})"
        return None


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.lstrip("0") if ip.startswith("0:") else ip).is_loopback
    except ValueError:
        return False
