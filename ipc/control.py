"""The supervisor <-> child control channel: small pickled messages, optionally carrying fds.

A SOCK_SEQPACKET socketpair keeps message boundaries, so each `send` is one `recv`, and file
descriptors (new hub link ends) travel with the message they belong to. End of file on a
child's end means the supervisor is gone.
"""
from __future__ import annotations

import pickle
import socket

MAX_MESSAGE = 1 << 20

LINK = "link"  # to the hub: (wid,) + the hub's end of a new worker link
STORE = "store"  # to the hub: () + the hub's end of a link to the history store
HUB = "hub"  # to a worker or the store: () + its end of a link to a new hub
CONFIG = "config"  # to any child: (Config,) after SIGHUP


def pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)


def send(sock: socket.socket, message: tuple, fds: list[int] = ()) -> None:  # type: ignore[assignment]
    socket.send_fds(sock, [pickle.dumps(message)], list(fds))


def recv(sock: socket.socket) -> tuple[tuple | None, list[int]]:
    """One message and its fds; (None, []) at end of file."""
    data, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 4)
    if not data:
        for fd in fds:
            socket.close(fd)
        return None, []
    return pickle.loads(data), fds
