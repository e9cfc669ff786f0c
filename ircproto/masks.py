"""Wildcard masks (`nick!user@host` with `*` and `?`), matched under the ascii casemapping.

Used for bans (+b), WHO with a mask and LIST with a mask. A ban given as a bare nick or
`user@host` is completed the way common servers do, so `MODE #c +b bob` bans `bob!*@*`.

Extended bans are `<letter>:<mask>`, advertised as ergo and InspIRCd do (an empty prefix, then
the letters: `EXTBAN=,am`). `m:<mask>` is an acting one, ergo's and InspIRCd's mute: in +b the
matching users may join but not speak, in +e they are exempt from mutes. `a:<account mask>` is a
matching one, for accounts (solanum's `$a`; InspIRCd says `R:`). No nick contains ':', so no
plain ban is mistaken for one.
"""
from __future__ import annotations

import re
import string
from functools import lru_cache

from ircproto.casemap import casefold
from ircproto.modes import ACCOUNT_EXTBAN, ACTING_EXTBANS, EXTBANS


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


def split_extban(mask: str) -> tuple[str, str]:
    """('m', 'bob!*@*') for the extended ban 'm:bob!*@*'; ('', mask) for a plain mask."""
    if mask[1:2] == ":" and mask[:1] in string.ascii_letters:
        return mask[0], mask[2:]
    return "", mask


def normalize_list_mask(mask: str, acting: bool = True) -> str | None:
    """A list mode's mask as it is stored, or None when it cannot be one: an unknown extended
    ban, an empty one, or an acting one where it means nothing (acting=False, as in +I).
    Plain masks are completed like bans, also inside an acting extban (m:bob -> m:bob!*@*)."""
    kind, rest = split_extban(mask)
    if not kind:
        return normalize_ban(mask)
    if not rest or kind not in EXTBANS or (kind in ACTING_EXTBANS and not acting):
        return None
    if kind in ACTING_EXTBANS:
        inner = normalize_list_mask(rest, acting=False)
        return None if inner is None else f"{kind}:{inner}"
    return mask


def matches_user(mask: str, prefix: str, account: str = "") -> bool:
    """A matching mask (plain, or a:) against a user's nick!user@host and account name.

    hubchat has no accounts yet, so every caller passes none and an a: mask matches nobody,
    which is what it means: nobody is logged in to a matching account. Once accounts exist,
    passing the user's account is all a: needs."""
    kind, rest = split_extban(mask)
    if kind == ACCOUNT_EXTBAN:
        return bool(account) and matches(rest, account)
    return matches(mask, prefix)
