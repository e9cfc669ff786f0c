"""How an Event reads, as segments each front end can colour its own way."""
from __future__ import annotations

import time
import zlib

from client.core import Event
from ircproto.casemap import casefold

NICK_COLOURS = 8  # front ends map colour index 0..7 to their own palette


def nick_colour(nick: str) -> int:
    """A stable colour for a nick: the same person always looks the same."""
    return zlib.crc32(casefold(nick).encode("utf-8", "surrogateescape")) % NICK_COLOURS


def segments(event: Event, me: str, show_target: bool = True) -> list[tuple[str, str]]:
    """(role, text) pairs; roles: time, target, private, nick:<n>, own, text, info, error."""
    out = [("time", time.strftime("%H:%M ", time.localtime(event.ts)))]
    if event.kind in ("message", "action", "notice") and event.nick:
        if event.private:
            label = f"[to {event.target}] " if event.own else "[private] "
            out.append(("private", label))
        elif show_target and event.target:
            out.append(("target", f"{event.target} "))
        role = "own" if event.own else f"nick:{nick_colour(event.nick)}"
        if event.kind == "action":
            out += [("text", "* "), (role, event.nick), ("text", " " + event.text)]
        elif event.kind == "notice":
            out += [(role, f"-{event.nick}-"), ("text", " " + event.text)]
        else:
            out += [(role, f"<{event.nick}>"), ("text", " " + event.text)]
        return out
    if show_target and event.target and event.kind not in ("open",):
        out.append(("target", f"{event.target} "))
    out.append(("error" if event.kind == "error" else "info", f"-- {event.text}"))
    return out


def plain(event: Event, me: str) -> str:
    return "".join(text for _, text in segments(event, me))
