"""The hub's answers to one local client: numerics, FAIL, a barrier back, a refused nick, a
refusal that closes the connection, history (CHATHISTORY and SEARCH), read markers (MARKREAD),
the end of a REDACT's answer, and another worker's question or answer about idle time (WHOIS)."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ipc import link
from ircproto import numerics as N
from workers.handlers import history, read_marker, redaction

if TYPE_CHECKING:
    from workers.item_target import HubItemTarget


def on_nick_refused(w: "HubItemTarget", cid: int, nick: str, text: str = "") -> None:
    """The nick is taken, or (with text) reserved for the account of that name."""
    s = w.sessions.get(cid)
    if s is None:
        return
    if not s.registered:  # the client is still nameless: the reply goes to "*"
        s.registration_refused()
    if text:
        s.numeric_as_given(N.ERR_NICKNAMEINUSE, nick, text)
    else:
        s.numeric(N.ERR_NICKNAMEINUSE, nick)
    s.resume()


def on_numeric(w: "HubItemTarget", cid: int, numeric: str, params: tuple) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.numeric_as_given(numeric, *params)  # the hub sends the text too


def on_fail(w: "HubItemTarget", cid: int, command: str, code: str, params: tuple) -> None:
    s = w.sessions.get(cid)
    if s is None:
        return
    if command in history.COMMANDS:  # the answer a CHATHISTORY or SEARCH waits for
        if s.waiting:  # else a copy replayed after a hub restart: the first was written
            s.send("FAIL", command, code, *params)
            history.failed(s)
        return
    s.send("FAIL", command, code, *params)


def on_history(w: "HubItemTarget", cid: int, query: tuple, rows: list) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        history.answered(s, query, rows)


def on_markread(w: "HubItemTarget", cid: int, targets: tuple, times, joins) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        read_marker.answered(s, targets, times, joins)


def on_answered(w: "HubItemTarget", cid: int, command: str) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        redaction.answered(s)


def on_barrier(w: "HubItemTarget", cid: int, token: int) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.barrier_came_back(token)


def on_refuse(w: "HubItemTarget", cid: int, reason: str) -> None:
    s = w.sessions.get(cid)
    if s is not None:
        s.close_forgotten(reason)


def on_idle_ask(w: "HubItemTarget", asker: int, target: int) -> None:
    s = w.sessions.get(target)
    idle = int(time.time() - s.idle_since) if s is not None else None
    w.request((link.R_FORWARD, asker, (link.F_IDLE_TELL, asker, target, idle)))


def on_idle_tell(w: "HubItemTarget", asker: int, target: int, idle: int | None) -> None:
    w.outbox.hub_turn = False  # another worker's answer, not the hub's: the WHOIS reply is a local answer
    try:
        w.idle_told(asker, target, idle)
    finally:
        w.outbox.hub_turn = True


