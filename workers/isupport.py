"""RPL_ISUPPORT (005): what this server supports, built from the settings and the protocol
constants (ircproto/modes.py, the line limit, the list length), so that nothing is advertised
that the code does not do."""
from __future__ import annotations

from chatstate.state import BAN_LIST_LENGTH
from ircproto.chathistory import MSGREFTYPES
from ircproto.casemap import CHANTYPES
from ircproto.message import MAX_LINE
from ircproto.modes import (BOT_MODE, EXCEPT_MODE, EXTBANS, FLAG_MODES, INVEX_MODE, KEY_MODE, LIMIT_MODE, LIST_MODES,
                            MODES_PER_COMMAND, STATUS_MODES, STATUS_RANK)

# Fixed lengths, advertised here and applied by the handlers.
KICKLEN = 255
AWAYLEN = 200
NAMELEN = 100  # realname, for SETNAME
USERLEN = 10
MONITOR_LIMIT = 100  # targets in one client's MONITOR list


def history_limit(config) -> int:
    """The most messages one CHATHISTORY or SEARCH may ask for (ISUPPORT CHATHISTORY): a larger
    limit is clamped to it."""
    return config.history.max_query


def isupport_tokens(config) -> list[str]:
    """The 005 tokens for this configuration, in the order they are sent."""
    lim = config.limits
    return [
        "CASEMAPPING=ascii", f"CHANTYPES={CHANTYPES}", f"CHANMODES={LIST_MODES},{KEY_MODE},{LIMIT_MODE},{FLAG_MODES}",
        f"PREFIX=({STATUS_MODES}){STATUS_RANK}", f"MODES={MODES_PER_COMMAND}",
        "MAXLIST=" + ",".join(f"{mode}:{BAN_LIST_LENGTH}" for mode in LIST_MODES), "ELIST=CMNTU", "WHOX", "UTF8ONLY", "SAFELIST",
        f"NICKLEN={lim.nicklen}", f"CHANNELLEN={lim.channellen}", f"TOPICLEN={lim.topiclen}",
        f"KICKLEN={KICKLEN}", f"AWAYLEN={AWAYLEN}", f"NAMELEN={NAMELEN}", f"USERLEN={USERLEN}",
        f"CHANLIMIT={CHANTYPES}:{lim.chanlimit}",
        f"TARGMAX=PRIVMSG:{lim.maxtargets},NOTICE:{lim.maxtargets},TAGMSG:{lim.maxtargets},JOIN:,PART:,KICK:,"
        f"NAMES:,LIST:,WHOIS:1",
        f"MAXTARGETS={lim.maxtargets}", f"NETWORK={config.server.network}", f"LINELEN={MAX_LINE}",
        f"EXCEPTS={EXCEPT_MODE}", f"INVEX={INVEX_MODE}", f"EXTBAN=,{EXTBANS}", f"STATUSMSG={STATUS_RANK}", f"BOT={BOT_MODE}",
        f"MONITOR={MONITOR_LIMIT}",
    ] + ([f"CHATHISTORY={history_limit(config)}", "MSGREFTYPES=" + ",".join(MSGREFTYPES)]
         if config.history.enabled else [])
