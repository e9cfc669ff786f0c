"""Server queries (Modern IRC "Server Queries and Commands") answered by the worker itself:
MOTD, LUSERS, VERSION, TIME, ADMIN, INFO, HELP."""
from __future__ import annotations

import time

from ircproto import numerics as N
from ircproto.message import Message
from workers import replies
from workers.handlers.common import Reply
from workers.session import Session

INFO = (
    f"{replies.VERSION}: a multi-process IRC server in Python.",
    "A supervisor, one hub that owns the global state and orders every event,",
    "and worker processes that each serve many clients on an event loop.",
)

HELP: dict[str, tuple[str, ...]] = {
    "*": ("hubchat understands these commands:",
          "ADMIN AUTHENTICATE AWAY CAP CHATHISTORY CHGHOST HELP HELPOP INFO INVITE ISON JOIN KICK KILL LIST LUSERS MARKREAD",
          "MODE MONITOR MOTD NAMES NICK NICKSERV NOTICE NS OPER PART PASS PING PONG PRIVMSG QUIT REDACT REGISTER",
          "REHASH RENAME",
          "SEARCH SETNAME TAGMSG TIME TOPIC USER USERHOST VERSION WALLOPS WHO WHOIS WHOWAS", "Use HELP <command> for one of them."),
    "ADMIN": ("ADMIN", "Who runs this server."),
    "AUTHENTICATE": ("AUTHENTICATE <mechanism> | <base64> | *", "Log in to an account with SASL (PLAIN, "
                     "SCRAM-SHA-256, or EXTERNAL with a TLS client certificate), after CAP REQ sasl."),
    "AWAY": ("AWAY [<message>]", "Mark yourself away with a message, or back without one."),
    "CHATHISTORY": ("CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <* | msgid=<id> | timestamp=<time>> <limit>",
                    "CHATHISTORY BETWEEN <target> <ref> <ref> <limit>",
                    "CHATHISTORY TARGETS timestamp=<time> timestamp=<time> <limit>",
                    "Past messages of a channel or a conversation (times as 2019-01-04T14:33:26.123Z);",
                    "TARGETS: the conversations with messages between the two times."),
    "CHGHOST": ("CHGHOST <nick> <user> <host>", "(Operators) Change someone's user name and host."),
    "REGISTER": ("REGISTER <account | *> <email | *> <password>", "Make an account named after your nick, and "
                 "log in to it."),
    "NICKSERV": ("NICKSERV <command> [<args>]", "The same as /msg NickServ <command>: accounts for every client;",
                 "NICKSERV HELP lists its commands."),
    "NS": ("NS <command> [<args>]", "Another name for NICKSERV."),
    "HELP": ("HELP [<command>]", "What the commands do; HELPOP is another name for it."),
    "HELPOP": ("HELPOP [<command>]", "Another name for HELP."),
    "INVITE": ("INVITE [<nick> <channel>]", "Invite someone into a channel (needed to join a +i channel);",
               "INVITE alone lists the channels you are invited to."),
    "ISON": ("ISON <nick> [<nick> ...]", "Which of these nicks are online."),
    "JOIN": ("JOIN <channel>[,<channel>] [<key>[,<key>]]", "Join channels; JOIN 0 leaves them all."),
    "KICK": ("KICK <channel> <nick>[,<nick>] [<reason>]", "(Channel operators) Remove someone from a channel."),
    "KILL": ("KILL <nick> <reason>", "(Operators) Disconnect someone."),
    "LIST": ("LIST [<channel>,... | [!]<mask> | >N | <N | C>N | C<N | T>N | T<N]",
             "List channels, by name, mask (! for names not matching), member count, or minutes since",
             "the channel was created (C) or its topic set (T)."),
    "MARKREAD": ("MARKREAD <target> [timestamp=<time>]",
                 "Show how far you have read a channel or a conversation, or move that mark on (never back)."),
    "MODE": ("MODE <channel> [+-CimnstklbeIov [<args>]]", "MODE <nick> [+-iwB]",
             "Show or change modes (B: you are a bot)."),
    "MONITOR": ("MONITOR + <nick>[,<nick>] | - <nick>[,<nick>] | C | L | S",
                "Be told when nicks come online and go offline: add (+), remove (-), clear (C),",
                "list (L), or show which are online now (S); ISUPPORT MONITOR is the most you may add."),
    "NAMES": ("NAMES [<channel>[,<channel>]]", "Who is in a channel."),
    "NICK": ("NICK <nick>", "Change your nickname."),
    "NOTICE": ("NOTICE <target> <text>", "Like PRIVMSG, but never answered automatically."),
    "OPER": ("OPER <name> <password>", "Become an IRC operator."),
    "PART": ("PART <channel>[,<channel>] [<reason>]", "Leave channels."),
    "PRIVMSG": ("PRIVMSG <target>[,<target>] <text>", "Send a message to a channel or a nick."),
    "QUIT": ("QUIT [<reason>]", "Disconnect."),
    "REDACT": ("REDACT <target> <msgid> [<reason>]",
               "Take back a message: your own, or (channel operators) anyone's in the channel."),
    "REHASH": ("REHASH", "(Operators) Reload the configuration file, like SIGHUP."),
    "RENAME": ("RENAME <channel> <new name> [<reason>]", "(Channel operators) Give a channel a new name."),
    "SEARCH": ("SEARCH <in=<target>;from=<nick>;after=<time>;before=<time>;text=<words>;limit=<n>>",
               "Messages of the history matching every attribute given (soju.im/search)."),
    "SETNAME": ("SETNAME <realname>", "Change your real name."),
    "TOPIC": ("TOPIC <channel> [<topic>]", "Show or set a channel's topic."),
    "WALLOPS": ("WALLOPS <text>", "(Operators) Message everyone with user mode +w."),
    "WHO": ("WHO <channel|nick|mask> [o][%fields[,token]]", "List users; WHOX fields tcuihsnfdlaor."),
    "WHOIS": ("WHOIS <nick>", "Details about someone."),
    "WHOWAS": ("WHOWAS <nick> [<count>]", "Who used a nick that is gone."),
}


def motd(s: Session, msg: Message) -> None:
    replies.motd(s)


def lusers(s: Session, msg: Message) -> None:
    replies.lusers(s)


def version(s: Session, msg: Message) -> None:
    s.numeric(N.RPL_VERSION, replies.VERSION, s.server.server_name)
    replies.isupport(s)


def time_(s: Session, msg: Message) -> None:
    now = time.time()
    s.numeric(N.RPL_TIME, s.server.server_name, str(int(now)), "0",
              time.strftime("%A %B %d %Y -- %H:%M:%S +00:00", time.gmtime(now)))


def admin(s: Session, msg: Message) -> None:
    server = s.server.config.server
    s.numeric(N.RPL_ADMINME, s.server.server_name)
    s.numeric(N.RPL_ADMINLOC1, f"The {server.network} network")
    s.numeric(N.RPL_ADMINLOC2, s.server.server_name)
    s.numeric(N.RPL_ADMINEMAIL, server.admin or f"The {server.network} administrators")


def info(s: Session, msg: Message) -> None:
    for line in INFO:
        s.numeric(N.RPL_INFO, line)
    s.numeric(N.RPL_ENDOFINFO)


def help_(s: Session, msg: Message) -> None:
    subject = msg.params[0].upper() if msg.params else "*"
    text = HELP.get(subject)
    if text is None:
        raise Reply(N.ERR_HELPNOTFOUND, msg.params[0])
    s.numeric(N.RPL_HELPSTART, subject, text[0])
    for line in text[1:]:
        s.numeric(N.RPL_HELPTXT, subject, line)
    s.numeric(N.RPL_ENDOFHELP, subject)
