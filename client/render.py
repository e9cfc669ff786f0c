"""How an Event reads, as segments each front end can colour its own way."""
from __future__ import annotations

import re
import zlib

from client.core import Event
from client.history import clock_text
from ircproto.casemap import casefold

NICK_COLOURS = 8  # front ends map colour index 0..7 to their own palette
NICK_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789[]\\`_^{|}-")
# Bold, colour (with its digits), hex colour, reset, monospace, reverse, italic, strikethrough, underline.
FORMATTING = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9a-fA-F]{6}(?:,[0-9a-fA-F]{6})?)?|[\x02\x0f\x11\x16\x1d\x1e\x1f]")
LINK = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)
LINK_TRAILING = ".,;:!?)]}'\""  # sentence punctuation after a link is not part of it


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
            out += [("text", "* "), (role, event.nick), ("text", " " + strip_formatting(event.text))]
        elif event.kind == "notice":
            out += [(role, f"-{event.nick}-"), ("text", " " + strip_formatting(event.text))]
        else:
            out += [(role, f"<{event.nick}>"), ("text", " " + strip_formatting(event.text))]
        return out
    if show_target and event.target and event.kind not in ("open",):
        out.append(("target", f"{event.target} "))
    out.append(("error" if event.kind == "error" else "info", f"-- {event.text}"))
    return out


def plain(event: Event, me: str) -> str:
    return "".join(text for _, text in segments(event, me))


def mention_spans(text: str, nick: str) -> list[tuple[int, int]]:
    """Where `nick` is said in `text`, as a whole word, whatever the case (the ascii casemapping
    folds length-preservingly, so positions in the folded text are positions in the text).
    A word boundary is any character that cannot be part of a nick: "bob," and "@bob" mention
    bob, "bobby" and "bob_" do not."""
    if not nick:
        return []
    folded, target = casefold(text), casefold(nick)
    spans, start = [], 0
    while (at := folded.find(target, start)) >= 0:
        end = at + len(target)
        if (at == 0 or text[at - 1] not in NICK_CHARS) and (end == len(text) or text[end] not in NICK_CHARS):
            spans.append((at, end))
            start = end
        else:
            start = at + 1
    return spans


def mentions(event: Event, me: str) -> bool:
    """A line someone else said that names us (our own lines, and history, never count)."""
    return (event.kind in ("message", "action", "notice") and not event.own and event.nick is not None
            and event.target is not None  # a server notice naming us is no mention
            and not event.history and bool(mention_spans(event.text, me)))


def strip_formatting(text: str) -> str:
    """IRC bold/italic/colour codes removed, so they never show as stray boxes."""
    return FORMATTING.sub("", text)


def link_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in LINK.finditer(text):
        end = match.end()
        while end > match.start() and text[end - 1] in LINK_TRAILING:
            end -= 1
        spans.append((match.start(), end))
    return spans


def split_text(text: str, me: str) -> list[tuple[str, str]]:
    """A line's text as (role, text) runs: "mention" where we are named, "link" for a URL, "text"."""
    marks = [(a, b, "link") for a, b in link_spans(text)]
    marks += [(a, b, "mention") for a, b in mention_spans(text, me)
              if not any(la <= a < lb for la, lb, _ in marks)]
    out, at = [], 0
    for a, b, role in sorted(marks):
        if a < at:
            continue
        if a > at:
            out.append(("text", text[at:a]))
        out.append((role, text[a:b]))
        at = b
    if at < len(text):
        out.append(("text", text[at:]))
    return out


def member_rank(symbols_held: str, symbols: str = "@+") -> int:
    """Sorting rank of a member: 0 for the highest status (operators), then each lower one, then
    everyone without a status."""
    for i, symbol in enumerate(symbols):
        if symbol in symbols_held:
            return i
    return len(symbols)


def member_rows(statuses: dict[str, str], away: set[str] | frozenset[str] = frozenset(),
                symbols: str = "@+") -> list[tuple[str, str, bool]]:
    """The people list: (label, nick, away) sorted operators, voiced, then the rest, each group
    alphabetical by the casemapping. The label carries the highest status symbol; `away` holds
    casefolded nicks."""
    order = sorted(statuses, key=lambda n: (member_rank(statuses[n], symbols), casefold(n), n))
    rows = []
    for nick in order:
        rank = member_rank(statuses[nick], symbols)
        prefix = symbols[rank] if rank < len(symbols) else ""
        rows.append((prefix + nick, nick, casefold(nick) in away))
    return rows
