"""The constants modules produce exactly what the server advertised before they existed (the
whole 005 token list, the 004 mode letters and the CAP LS order are pinned here), and a fixed
reply text stays written once, beside its numeric."""
from pathlib import Path

import config
from ircproto.caps import CAPABILITIES
from ircproto.numerics import TEXTS
from ircproto.modes import CHANNEL_MODES, CHANNEL_MODES_WITH_PARAMS, USER_MODES
from workers.isupport import isupport_tokens


def test_isupport_tokens_for_the_default_config():
    assert isupport_tokens(config.Config()) == [
        "CASEMAPPING=ascii", "CHANTYPES=#", "CHANMODES=beI,k,l,Cimnst", "PREFIX=(ov)@+", "MODES=4",
        "MAXLIST=b:100,e:100,I:100", "ELIST=CMNTU", "WHOX", "UTF8ONLY", "SAFELIST", "NICKLEN=30",
        "CHANNELLEN=64", "TOPICLEN=390", "KICKLEN=255", "AWAYLEN=200", "NAMELEN=100", "USERLEN=10",
        "CHANLIMIT=#:50", "TARGMAX=PRIVMSG:4,NOTICE:4,TAGMSG:4,JOIN:,PART:,KICK:,NAMES:,LIST:,WHOIS:1",
        "MAXTARGETS=4", "NETWORK=hubchat", "LINELEN=512", "EXCEPTS=e", "INVEX=I", "EXTBAN=,am",
        "STATUSMSG=@+", "BOT=B", "MONITOR=100", "CHATHISTORY=100", "MSGREFTYPES=timestamp,msgid",
    ]


def test_myinfo_mode_letters():
    assert (USER_MODES, CHANNEL_MODES, CHANNEL_MODES_WITH_PARAMS) == ("Biow", "CIbeiklmnostv", "Ibeklov")


def test_capabilities_in_cap_ls_order():
    assert list(CAPABILITIES) == [
        "account-notify", "account-tag",
        "away-notify", "batch", "cap-notify", "chghost", "echo-message", "extended-join", "extended-monitor",
        "invite-notify",
        "labeled-response", "message-tags", "multi-prefix", "sasl", "server-time", "setname", "userhost-in-names",
        "draft/account-registration", "draft/channel-rename", "draft/chathistory", "draft/event-playback", "draft/message-redaction",
        "draft/read-marker", "soju.im/search",
    ]
    assert all(cap.description for cap in CAPABILITIES.values())


ROOT = Path(__file__).resolve().parents[1]
# Where a numeric's fixed text must not be spelled again. hub/ joins the list once it takes its
# texts from ircproto.numerics.TEXTS too.
TEXTS_ONLY_FROM_TABLE = ("workers", "ircproto", "chatstate", "hub")


def test_each_fixed_reply_text_is_written_once():
    copies = [f"{path.relative_to(ROOT)}: {text!r}"
              for package in TEXTS_ONLY_FROM_TABLE for path in sorted((ROOT / package).rglob("*.py"))
              if path != ROOT / "ircproto" / "numerics.py"
              for source in [path.read_text()]
              for text in TEXTS.values() if f'"{text}"' in source or f"'{text}'" in source]
    assert not copies, "give the numeric without its text; ircproto.numerics.TEXTS has it: " + ", ".join(copies)
