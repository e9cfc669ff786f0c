"""The IRCv3 capabilities hubchat supports: one table, read by CAP LS and CAP REQ, with a name
for each capability that the code checks a client's capabilities against (as ergo's gencapdefs.py
generates them).

Only what is implemented is listed. The set never changes while the server runs, so cap-notify
(implied by CAP LS 302) never has NEW or DEL to send.
"""
from typing import NamedTuple


class Capability(NamedTuple):
    value: str  # shown after '=' in CAP LS 302; "" for none
    description: str


ACCOUNT_NOTIFY = "account-notify"
ACCOUNT_TAG = "account-tag"
AWAY_NOTIFY = "away-notify"
BATCH = "batch"
CAP_NOTIFY = "cap-notify"
CHGHOST = "chghost"
ECHO_MESSAGE = "echo-message"
EXTENDED_JOIN = "extended-join"
EXTENDED_MONITOR = "extended-monitor"
INVITE_NOTIFY = "invite-notify"
LABELED_RESPONSE = "labeled-response"
MESSAGE_TAGS = "message-tags"
MULTI_PREFIX = "multi-prefix"
SERVER_TIME = "server-time"
SASL = "sasl"
SETNAME = "setname"
USERHOST_IN_NAMES = "userhost-in-names"
ACCOUNT_REGISTRATION = "draft/account-registration"
CHANNEL_RENAME = "draft/channel-rename"
CHATHISTORY = "draft/chathistory"
EVENT_PLAYBACK = "draft/event-playback"
MESSAGE_REDACTION = "draft/message-redaction"
READ_MARKER = "draft/read-marker"
SEARCH = "soju.im/search"

# Offered only where accounts are (history on): see `ACCOUNT_CAPS`.
ACCOUNT_CAPS = frozenset((ACCOUNT_NOTIFY, ACCOUNT_TAG, SASL, ACCOUNT_REGISTRATION))
# Offered only with history on: what the store answers.
HISTORY_CAPS = frozenset((CHATHISTORY, EVENT_PLAYBACK, MESSAGE_REDACTION, READ_MARKER, SEARCH))

# In CAP LS order.
CAPABILITIES: dict[str, Capability] = {
    ACCOUNT_NOTIFY: Capability("", "ACCOUNT when a fellow member (or a monitored nick) logs in or out"),
    ACCOUNT_TAG: Capability("", "the account= tag on messages from logged-in users"),
    AWAY_NOTIFY: Capability("", "AWAY of fellow channel members, as it changes"),
    BATCH: Capability("", "replies grouped in BATCH (labeled-response uses it)"),
    CAP_NOTIFY: Capability("", "CAP NEW and DEL; implied by CAP LS 302, and hubchat never sends either"),
    CHGHOST: Capability("", "CHGHOST when a fellow member's user@host changes, instead of a quit and rejoin"),
    ECHO_MESSAGE: Capability("", "the client's own PRIVMSG, NOTICE and TAGMSG, echoed back to it"),
    EXTENDED_JOIN: Capability("", "JOIN with the account and realname of who joined"),
    EXTENDED_MONITOR: Capability("", "AWAY, CHGHOST and SETNAME of monitored nicks too, shared channel or not"),
    INVITE_NOTIFY: Capability("", "INVITEs to a channel, shown to its operators"),
    LABELED_RESPONSE: Capability("", "a command's answer tagged with the label the client gave it"),
    MESSAGE_TAGS: Capability("", "client tags (+name) relayed, msgid on every message, TAGMSG"),
    MULTI_PREFIX: Capability("", "every status prefix of a member in NAMES and WHO, not only the highest"),
    SASL: Capability("PLAIN,SCRAM-SHA-256,EXTERNAL", "AUTHENTICATE: log in to an account (sasl 3.1 and 3.2); "
                     "EXTERNAL with a TLS client certificate"),
    SERVER_TIME: Capability("", "the time each message was sent, as a tag"),
    SETNAME: Capability("", "SETNAME: change one's realname, seen by fellow members"),
    USERHOST_IN_NAMES: Capability("", "nick!user@host in NAMES, not the nick alone"),
    ACCOUNT_REGISTRATION: Capability("", "REGISTER: make an account (its value says the server's rules)"),
    CHANNEL_RENAME: Capability("", "RENAME: a channel moves to a new name with all it holds"),
    CHATHISTORY: Capability("", "CHATHISTORY: the messages of a channel or a conversation, from the server's history"),
    EVENT_PLAYBACK: Capability("", "history batches with JOIN, PART, QUIT, KICK, NICK, TOPIC, MODE and TAGMSG too"),
    MESSAGE_REDACTION: Capability("", "REDACT: a message taken back, by its author or a channel operator, and "
                                      "removed from history"),
    READ_MARKER: Capability("", "MARKREAD: how far you have read each conversation, kept by the server; "
                                "sent after each JOIN"),
    SEARCH: Capability("", "SEARCH: the messages of the history matching a sender, a text, a time range"),
}
