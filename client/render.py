"""How an Event reads, as segments each front end can colour its own way."""
from __future__ import annotations

import zlib

from client.core import Event
from client.history import clock_text
from ircproto.casemap import casefold

NICK_COLOURS = 8  # front ends map colour index 0..7 to their own palette


def nick_colour(nick: str) -> int:
    """A stable colour for a nick: the same person always looks the same."""
    return zlib.crc32(casefold(nick).encode("utf-8", "surrogateescape")) % NICK_COLOURS


def segments(event: Event, me: str, show_target: bool = True, now: float | None = None) -> list[tuple[str, str]]:
    """(role, text) pairs; roles: time, target, private, nick:<n>, own, text, info, error, separator.

    The time is the event's own (the server's, for history): the hour, and the date too when it
    is not today. A search result always says where it was said. Front ends dim every segment
    of an event whose `history` is "latest" or "older"."""
    if event.kind == "separator":
        out = [("target", f"{event.target} ")] if show_target and event.target else []
        return out + [("separator", event.text)]
    show_target = show_target or event.history == "search"
    out = [("time", clock_text(event.ts, now) + " ")]
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
