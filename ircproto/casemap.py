"""The `ascii` casemapping (advertised as CASEMAPPING=ascii) and name validation.

Every nick and channel key in the server goes through `casefold`, so two spellings that
differ only in A-Z case can never be two different names.
"""
import re

from ircproto.message import wire_length

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")

# RFC 2812 section 2.3.1: a letter or special first, then letters, digits, specials, '-'.
_NICK = re.compile(r"[A-Za-z\[\]\\`_^{|}][A-Za-z0-9\[\]\\`_^{|}-]*\Z")
# RFC 2812 chanstring: any octet except NUL, BELL, CR, LF, space, comma and colon.
_CHANNEL = re.compile(r"#[^\x00\x07\r\n ,:]+\Z")

CHANTYPES = "#"


def casefold(name: str) -> str:
    """Fold A-Z to a-z and nothing else (ascii casemapping)."""
    # For pure ASCII, str.lower() does exactly that, several times faster than translate();
    # this runs for every message a worker parses and the hub routes.
    return name.lower() if name.isascii() else name.translate(_ASCII_LOWER)


def is_valid_nick(nick: str, maxlen: int) -> bool:
    return 0 < len(nick) <= maxlen and _NICK.match(nick) is not None


def is_channel_name(target: str) -> bool:
    """True when the target is addressed as a channel (by its prefix), valid or not."""
    return target[:1] in CHANTYPES


def is_valid_channel(name: str, maxlen: int) -> bool:
    return wire_length(name) <= maxlen and _CHANNEL.match(name) is not None
