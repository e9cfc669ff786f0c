"""The chat logic shared by every front end, with no I/O: what the user typed becomes IRC lines,
and IRC messages become display events.

Theory of operation
-------------------
`ChatCore` knows who we are, which conversations are open (channels and private chats), who
is in each channel and which one is current. `handle_input` turns a typed line into the lines
to send plus the events to show at once (our own message is shown once, when sent, because the
server does not echo it). `handle_message` turns one parsed IRC message into events. Front ends
only render `Event`s and feed input; the network driver only moves lines. So everything a user
sees can be tested with strings.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from ircproto import numerics as N
from ircproto.casemap import casefold, is_channel_name, is_valid_nick
from ircproto.message import Message, format_line

DEFAULT_CHANNEL = "#lobby"
ACTION = "\x01ACTION "

HELP = {
    "/msg nick [text]": "send a private message; without text, open that conversation",
    "/join #room": "join a room (or switch to it)",
    "/part [#room] [reason]": "leave a room (the current one by default)",
    "/nick newname": "change your nickname",
    "/me action": "describe an action: /me waves",
    "/names [#room]": "who is in a room",
    "/list": "list the rooms",
    "/topic [text]": "show or set the room's topic",
    "/whois nick": "about someone",
    "/away [message]": "mark yourself away (no message: back)",
    "/quit [reason]": "leave the chat",
    "/help": "this list",
}
COMMANDS = sorted(spec.split()[0] for spec in HELP)
MAX_NICK = 30  # hubchat's default NICKLEN; the server has the final word
NICK_RULES = "Nicknames use letters, digits and -[]\\`^{}|, and don't start with a digit."


def nickname_allowed(nick: str) -> bool:
    return is_valid_nick(nick, MAX_NICK)


def completion(candidate: str, at_start: bool) -> str:
    """What Tab puts in the line: 'nick: ' to address someone at its start, otherwise a space after."""
    return candidate + (": " if at_start and not candidate.startswith("/") else " ")


@dataclass(frozen=True, slots=True)
class Event:
    """Something to show: `kind` says how; `target` is the conversation it belongs to."""

    kind: str  # message, action, notice, join, part, quit, nick, topic, names, info, error, open
    text: str
    target: str | None = None  # channel name or the other person's nick; None: the status view
    nick: str | None = None  # who said or did it
    own: bool = False  # we said it
    ts: float = field(default_factory=time.time)

    @property
    def private(self) -> bool:
        return self.target is not None and not is_channel_name(self.target)


@dataclass
class Outcome:
    send: list[bytes] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    quit: bool = False


class ChatCore:
    def __init__(self, nick: str, channel: str = DEFAULT_CHANNEL) -> None:
        self.nick = nick
        self.home = channel
        self.channels: dict[str, dict] = {}  # casefolded name -> {"name", "members", "topic"}
        self.queries: dict[str, str] = {}  # casefolded nick -> nick as shown
        self.current: str | None = None
        self.registered = False
        self._names_buffer: dict[str, list[str]] = {}

    # --- what is known -------------------------------------------------------------------
    def members(self, channel: str | None = None) -> list[str]:
        chan = self.channels.get(casefold(channel or self.current or ""))
        return sorted(chan["members"], key=str.lower) if chan else []

    def conversations(self) -> list[str]:
        return [c["name"] for c in self.channels.values()] + list(self.queries.values())

    def completions(self, word: str) -> list[str]:
        """Commands for '/...', otherwise nicks seen in any channel."""
        if word.startswith("/"):
            return [c for c in COMMANDS if c.startswith(word.lower())]
        nicks = {n for c in self.channels.values() for n in c["members"]} | set(self.queries.values())
        return sorted((n for n in nicks if casefold(n).startswith(casefold(word))), key=str.lower)

    def rejoin_lines(self) -> list[bytes]:
        """After a reconnect: the rooms we were in (or the home room)."""
        names = [c["name"] for c in self.channels.values()] or [self.home]
        self.channels.clear()
        return [format_line(None, "JOIN", ",".join(names))]

    # --- user input ----------------------------------------------------------------------
    def handle_input(self, text: str) -> Outcome:
        text = text.rstrip("\r\n")
        if not text.strip():
            return Outcome()
        if text.startswith("/") and not text.startswith("//"):
            command, _, rest = text[1:].partition(" ")
            handler = getattr(self, f"_cmd_{command.lower()}", None)
            if handler is None:
                return Outcome(events=[Event("error", f"Unknown command /{command}. Type /help for the list.")])
            try:
                return handler(rest.strip())
            except ValueError as exc:  # text that IRC cannot carry (a NUL, say)
                return Outcome(events=[Event("error", str(exc))])
        if text.startswith("//"):
            text = text[1:]  # '//' sends a line that starts with '/'
        if self.current is None:
            return Outcome(events=[Event("error", "You are not in a room. Try /join #lobby")])
        return self._say(self.current, text)

    def _say(self, target: str, text: str, action: bool = False) -> Outcome:
        body = f"{ACTION}{text}\x01" if action else text
        out = Outcome(send=[format_line(None, "PRIVMSG", target, body)])
        out.events.append(Event("action" if action else "message", text, target, self.nick, own=True))
        if not is_channel_name(target):
            self._open_query(target)
        return out

    def _open_query(self, nick: str) -> None:
        self.queries.setdefault(casefold(nick), nick)

    def _cmd_msg(self, rest: str) -> Outcome:
        nick, _, text = rest.partition(" ")
        if not nick:
            return _usage("/msg nick [text]")
        if not text:
            if is_channel_name(nick):
                return self._cmd_join(nick)
            self._open_query(nick)
            self.current = nick
            return Outcome(events=[Event("open", f"Now talking with {nick}. Type to send; /join a room to go back.",
                                         nick)])
        return self._say(nick, text)

    _cmd_query = _cmd_msg

    def _cmd_me(self, rest: str) -> Outcome:
        if not rest:
            return _usage("/me action")
        if self.current is None:
            return Outcome(events=[Event("error", "You are not in a room. Try /join #lobby")])
        return self._say(self.current, rest, action=True)

    def _cmd_join(self, rest: str) -> Outcome:
        name = rest.split()[0] if rest else ""
        if not name:
            return _usage("/join #room")
        if not is_channel_name(name):
            name = "#" + name
        if casefold(name) in self.channels:
            self.current = self.channels[casefold(name)]["name"]
            return Outcome(events=[Event("open", f"Now in {self.current}.", self.current)])
        return Outcome(send=[format_line(None, "JOIN", name)])

    def _cmd_part(self, rest: str) -> Outcome:
        words = rest.split(" ", 1)
        if words[0] and is_channel_name(words[0]):
            channel, reason = words[0], words[1] if len(words) > 1 else ""
        else:
            channel, reason = self.current, rest
        if not channel or not is_channel_name(channel):
            return _usage("/part [#room] [reason]")
        params = (channel, reason) if reason else (channel,)
        return Outcome(send=[format_line(None, "PART", *params)])

    def _cmd_nick(self, rest: str) -> Outcome:
        if not rest:
            return _usage("/nick newname")
        return Outcome(send=[format_line(None, "NICK", rest.split()[0])])

    def _cmd_names(self, rest: str) -> Outcome:
        channel = rest.split()[0] if rest else self.current
        if not channel or not is_channel_name(channel):
            return _usage("/names #room")
        return Outcome(send=[format_line(None, "NAMES", channel)])

    def _cmd_list(self, rest: str) -> Outcome:
        return Outcome(send=[format_line(None, "LIST")])

    def _cmd_topic(self, rest: str) -> Outcome:
        if self.current is None or not is_channel_name(self.current):
            return Outcome(events=[Event("error", "Topics belong to rooms: /join one first.")])
        if not rest:
            return Outcome(send=[format_line(None, "TOPIC", self.current)])
        return Outcome(send=[format_line(None, "TOPIC", self.current, rest)])

    def _cmd_whois(self, rest: str) -> Outcome:
        if not rest:
            return _usage("/whois nick")
        return Outcome(send=[format_line(None, "WHOIS", rest.split()[0])])

    def _cmd_away(self, rest: str) -> Outcome:
        return Outcome(send=[format_line(None, "AWAY", rest)] if rest else [format_line(None, "AWAY")])

    def _cmd_quit(self, rest: str) -> Outcome:
        return Outcome(send=[format_line(None, "QUIT", rest or "Leaving")], quit=True)

    def _cmd_help(self, rest: str) -> Outcome:
        width = max(len(spec) for spec in HELP)
        lines = ["Commands:"] + [f"  {spec.ljust(width)}  {what}" for spec, what in HELP.items()]
        lines.append("  Anything else you type is sent to the current conversation.")
        return Outcome(events=[Event("info", line) for line in lines])

    # --- server messages -----------------------------------------------------------------
    def handle_message(self, msg: Message) -> list[Event]:
        handler = getattr(self, f"_on_{msg.command.lower()}", None)
        if handler is not None:
            return handler(msg)
        if msg.command.isdigit() and msg.command >= "400" and len(msg.params) > 1:
            return [Event("error", _numeric_text(msg), self.current)]
        return []

    def _src(self, msg: Message) -> str:
        return (msg.source or "").split("!", 1)[0]

    def _on_001(self, msg: Message) -> list[Event]:
        self.registered = True
        self.nick = msg.params[0]
        return [Event("info", f"Connected as {self.nick}.")]

    def _on_privmsg(self, msg: Message, kind: str = "message") -> list[Event]:
        if len(msg.params) < 2:
            return []
        sender, target, text = self._src(msg), msg.params[0], msg.params[1]
        if text.startswith(ACTION) and kind == "message":
            kind, text = "action", text[len(ACTION):].rstrip("\x01")
        if is_channel_name(target):
            return [Event(kind, text, self.channels.get(casefold(target), {}).get("name", target), sender)]
        if not msg.source or "!" not in msg.source:  # from the server itself
            return [Event("notice", text, None, sender)]
        self._open_query(sender)
        return [Event(kind, text, sender, sender)]

    def _on_notice(self, msg: Message) -> list[Event]:
        return self._on_privmsg(msg, kind="notice")

    def _on_join(self, msg: Message) -> list[Event]:
        who, name = self._src(msg), msg.params[0]
        if casefold(who) == casefold(self.nick):
            self.channels[casefold(name)] = {"name": name, "members": set(), "topic": ""}
            self.current = name
            self._names_buffer[casefold(name)] = []
            return [Event("open", f"You joined {name}.", name)]
        chan = self.channels.get(casefold(name))
        if chan is not None:
            chan["members"].add(who)
        return [Event("join", f"{who} joined {name}", name, who)]

    def _on_part(self, msg: Message) -> list[Event]:
        who, name = self._src(msg), msg.params[0]
        reason = f" ({msg.params[1]})" if len(msg.params) > 1 and msg.params[1] else ""
        if casefold(who) == casefold(self.nick):
            self._leave(name)
            return [Event("part", f"You left {name}{reason}", None, who)]
        chan = self.channels.get(casefold(name))
        if chan is not None:
            chan["members"].discard(who)
        return [Event("part", f"{who} left {name}{reason}", name, who)]

    def _leave(self, name: str) -> None:
        """We are out of a room (parted or kicked): forget it, and look at another one if any."""
        self.channels.pop(casefold(name), None)
        if self.current and casefold(self.current) == casefold(name):
            self.current = next(iter(c["name"] for c in self.channels.values()), None)

    def _on_kick(self, msg: Message) -> list[Event]:
        who, name, victim = self._src(msg), msg.params[0], msg.params[1]
        reason = f" ({msg.params[2]})" if len(msg.params) > 2 and msg.params[2] else ""
        if casefold(victim) == casefold(self.nick):
            self._leave(name)
            return [Event("part", f"{who} removed you from {name}{reason}", None, who)]
        chan = self.channels.get(casefold(name))
        if chan is not None:
            chan["members"].discard(victim)
        return [Event("part", f"{who} removed {victim} from {name}{reason}", name, victim)]

    def _on_mode(self, msg: Message) -> list[Event]:
        if len(msg.params) < 2 or not is_channel_name(msg.params[0]):
            return []
        return [Event("info", f"{self._src(msg)} set mode {' '.join(msg.params[1:])}", msg.params[0])]

    def _on_invite(self, msg: Message) -> list[Event]:
        if len(msg.params) < 2:
            return []
        return [Event("info", f"{self._src(msg)} invites you to {msg.params[1]} (type /join {msg.params[1]})")]

    def _on_quit(self, msg: Message) -> list[Event]:
        who = self._src(msg)
        reason = f" ({msg.params[0]})" if msg.params and msg.params[0] else ""
        events = []
        for chan in self.channels.values():
            if who in chan["members"]:
                chan["members"].discard(who)
                events.append(Event("quit", f"{who} left the chat{reason}", chan["name"], who))
        return events

    def _on_nick(self, msg: Message) -> list[Event]:
        old, new = self._src(msg), msg.params[0]
        if casefold(old) == casefold(self.nick):
            self.nick = new
            return [Event("nick", f"You are now known as {new}", self.current, new, own=True)]
        events = []
        for chan in self.channels.values():
            if old in chan["members"]:
                chan["members"].discard(old)
                chan["members"].add(new)
                events.append(Event("nick", f"{old} is now known as {new}", chan["name"], new))
        if casefold(old) in self.queries:
            del self.queries[casefold(old)]
            self.queries[casefold(new)] = new
            if self.current == old:
                self.current = new
        return events

    def _on_topic(self, msg: Message) -> list[Event]:
        name, text = msg.params[0], msg.params[-1]
        chan = self.channels.get(casefold(name))
        if chan is not None:
            chan["topic"] = text
        return [Event("topic", f"{self._src(msg)} set the topic: {text}", name, self._src(msg))]

    def _on_332(self, msg: Message) -> list[Event]:
        name, text = msg.params[1], msg.params[2]
        chan = self.channels.get(casefold(name))
        if chan is not None:
            chan["topic"] = text
        return [Event("topic", f"Topic: {text}", name)]

    def _on_331(self, msg: Message) -> list[Event]:
        return [Event("topic", "No topic is set.", msg.params[1])]

    def _on_353(self, msg: Message) -> list[Event]:
        name = msg.params[2]
        nicks = [n.lstrip("@+") for n in msg.params[3].split()]
        self._names_buffer.setdefault(casefold(name), []).extend(nicks)
        return []

    def _on_366(self, msg: Message) -> list[Event]:
        name = msg.params[1]
        nicks = self._names_buffer.pop(casefold(name), [])
        chan = self.channels.get(casefold(name))
        if chan is not None:
            chan["members"] = set(nicks)
        if not nicks:
            return []
        listed = ", ".join(sorted(nicks, key=str.lower))
        return [Event("names", f"People in {name} ({len(nicks)}): {listed}", name)]

    def _on_322(self, msg: Message) -> list[Event]:  # RPL_LIST
        topic = f": {msg.params[3]}" if len(msg.params) > 3 and msg.params[3] else ""
        return [Event("info", f"{msg.params[1]} ({msg.params[2]} people){topic}")]

    def _on_311(self, msg: Message) -> list[Event]:  # RPL_WHOISUSER
        return [Event("info", f"{msg.params[1]} is {msg.params[2]}@{msg.params[3]} ({msg.params[-1]})")]

    def _on_301(self, msg: Message) -> list[Event]:  # RPL_AWAY
        return [Event("info", f"{msg.params[1]} is away: {msg.params[-1]}", msg.params[1])]

    def _on_305(self, msg: Message) -> list[Event]:
        return [Event("info", "You are no longer marked as away.")]

    def _on_306(self, msg: Message) -> list[Event]:
        return [Event("info", "You are now marked as away.")]

    def _on_error(self, msg: Message) -> list[Event]:
        return [Event("error", f"The server closed the connection: {msg.params[0] if msg.params else ''}")]


def _usage(usage: str) -> Outcome:
    return Outcome(events=[Event("error", f"Usage: {usage}")])


_FRIENDLY = {
    N.ERR_NOSUCHNICK: "There is nobody called {0} here.",
    N.ERR_NOSUCHCHANNEL: "There is no room called {0}.",
    N.ERR_CANNOTSENDTOCHAN: "You can't send to {0} (join it first).",
    N.ERR_NOTONCHANNEL: "You are not in {0}.",
    N.ERR_NICKNAMEINUSE: "The nickname {0} is taken; pick another.",
    N.ERR_ERRONEUSNICKNAME: "{0} can't be a nickname. " + NICK_RULES.replace("{", "{{").replace("}", "}}"),
    N.ERR_CHANOPRIVSNEEDED: "Only the room's operators can do that in {0}.",
    N.ERR_UNKNOWNCOMMAND: "This server does not support {0} yet.",
}


def _numeric_text(msg: Message) -> str:
    template = _FRIENDLY.get(msg.command)
    if template and len(msg.params) > 2:
        return template.format(msg.params[1])
    return msg.params[-1]
