"""Wildcard masks (`nick!user@host` with `*` and `?`), matched under the ascii casemapping.

Used for bans (+b), WHO with a mask and LIST with a mask. A ban given as a bare nick or
`user@host` is completed the way common servers do, so `MODE #c +b bob` bans `bob!*@*`.
"""
from __future__ import annotations

import re
from functools import lru_cache

from ircproto.casemap import casefold


@lru_cache(maxsize=4096)
def _compile(mask: str) -> re.Pattern[str]:
    parts = []
    for ch in casefold(mask):
        parts.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
    return re.compile("".join(parts) + r"\Z", re.DOTALL)


def matches(mask: str, text: str) -> bool:
    return _compile(mask).match(casefold(text)) is not None


def is_wild(mask: str) -> bool:
    return "*" in mask or "?" in mask


def normalize_ban(mask: str) -> str:
    """Complete a ban mask to nick!user@host: 'bob' -> 'bob!*@*', 'u@h' -> '*!u@h', 'n!u' -> 'n!u@*'."""
    if "!" not in mask and "@" not in mask:
        return mask + "!*@*"
    if "!" not in mask:
        return "*!" + mask
    if "@" not in mask:
        return mask + "@*"
    return mask
