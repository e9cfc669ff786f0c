"""The transport glue: a `Session` as the protocol of its connection.

A transport (a `SocketStream` from workers/streams.py, or asyncio's SSL transport for TLS)
calls `connection_made`, `data_received` and `connection_lost`; these only hand the call to
the session's driver (the worker), which reads the clock, feeds the session and drains its
outbox. The class is made once per driver (`protocol_class`) and adds no slot: a connection
costs exactly a `Session`.
"""
from __future__ import annotations

import asyncio
from typing import Any, Protocol

from config.client_certs import fingerprint_of
from workers.session import Session


class Driver(Protocol):
    def opened(self, s: Session, transport: Any) -> None: ...

    def received(self, s: Session, data: bytes) -> None: ...

    def lost(self, s: Session, exc: Exception | None) -> None: ...

    registrations: int


class ClientProtocol(Session, asyncio.Protocol):
    __slots__ = ()
    driver: Driver  # set on the class by protocol_class

    def connection_made(self, transport: Any) -> None:
        if self.tls:
            self.certfp = fingerprint_of(transport)  # SASL EXTERNAL's identity
        self.driver.opened(self, transport)

    def data_received(self, data: bytes) -> None:
        self.driver.received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.driver.lost(self, exc)

    def registration_granted(self) -> None:
        Session.registration_granted(self)
        self.driver.registrations += 1  # counted here, where every registration passes, for /metrics


def protocol_class(driver: Driver) -> type[ClientProtocol]:
    """Sessions whose transport calls reach `driver`."""
    return type("ClientProtocol", (ClientProtocol,), {"__slots__": (), "driver": driver})
