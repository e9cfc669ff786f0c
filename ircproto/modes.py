"""Mode letters: the only place a channel mode, user mode or extended-ban letter is spelled out
as a set. The replica and the hub apply them (chatstate), the workers parse them (handlers/modes.py)
and ISUPPORT and 004 advertise them (workers/isupport.py), all from these names.
"""
from __future__ import annotations

from typing import Iterable

# Channel modes holding a list of masks (CHANMODES type A).
BAN_MODE = "b"
EXCEPT_MODE = "e"  # lets a user past a ban (ISUPPORT EXCEPTS)
INVEX_MODE = "I"  # lets a user past +i (ISUPPORT INVEX)
LIST_MODES = BAN_MODE + EXCEPT_MODE + INVEX_MODE
ACTING_LIST_MODES = BAN_MODE + EXCEPT_MODE  # where an acting extban (m:) means something: a mute, an exception from one
KEY_MODE = "k"  # CHANMODES type B: a parameter to set and to unset
LIMIT_MODE = "l"  # CHANMODES type C: a parameter to set only
FLAG_MODES = "Cimnst"  # channel modes without a parameter (CHANMODES type D); +C: no CTCP but ACTION

# Membership status: the mode letters and the prefixes they give, highest first (PREFIX=(ov)@+).
OP_STATUS = "@"
VOICE_STATUS = "+"
STATUS_OF_MODE = {"o": OP_STATUS, "v": VOICE_STATUS}
STATUS_MODES = "".join(STATUS_OF_MODE)
STATUS_RANK = "".join(STATUS_OF_MODE.values())  # also STATUSMSG: @#chan and +#chan

CHANNEL_MODES = "".join(sorted(LIST_MODES + KEY_MODE + LIMIT_MODE + FLAG_MODES + STATUS_MODES))  # for 004
CHANNEL_MODES_WITH_PARAMS = "".join(sorted(LIST_MODES + KEY_MODE + LIMIT_MODE + STATUS_MODES))  # for 004
MODES_PER_COMMAND = 4  # ISUPPORT MODES: changes with a parameter in one MODE command

BOT_MODE = "B"  # IRCv3 bot-mode: the user mode (ISUPPORT BOT), also the WHO flag
# +i invisible, +o operator (set only by OPER; a client may drop it), +w wallops
USER_MODES = "".join(sorted(BOT_MODE + "iow"))

# Extended bans, `<letter>:<mask>` (see ircproto/masks.py; ISUPPORT EXTBAN=,am).
ACCOUNT_EXTBAN = "a"  # matching: users logged in to an account that matches
MUTE_EXTBAN = "m"  # acting: in +b the matching users may join but not speak
EXTBANS = ACCOUNT_EXTBAN + MUTE_EXTBAN
ACTING_EXTBANS = MUTE_EXTBAN


def change_params(changes: Iterable[tuple[str, str, str]]) -> list[str]:
    """((sign, letter, arg), ...) as MODE parameters: [("+", "o", "bob"), ("+", "t", "")] -> ["+ot", "bob"]."""
    letters, args, sign = [], [], ""
    for change_sign, letter, arg in changes:
        if change_sign != sign:
            sign = change_sign
            letters.append(sign)
        letters.append(letter)
        if arg:
            args.append(arg)
    return ["".join(letters), *args]
