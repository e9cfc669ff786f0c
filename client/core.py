"""The chat logic shared by every front end, with no I/O: what the user typed becomes IRC lines,
and IRC messages become display events.

Theory of operation
-------------------
`ChatCore` knows who we are, which conversations are open (channels and private chats), who
is in each channel and which one is current. `handle_input` turns a typed line into the lines
to send plus the events to show at once (our own message is shown once, when sent; an echo of
it, if the server sends one, is recognised and dropped). `handle_message` turns one parsed IRC
message into events; lines it must send in answer (capability negotiation, history requests)
wait in `outbox`, which the driver empties with `take_sends()` after each call. Front ends only
render `Event`s and feed input; the network driver only moves lines. So everything a user sees
can be tested with strings.

Server-side history (client/history.py has the protocol pieces): a connection opens with
`CAP LS 302` and asks for batch, server-time, message-tags, draft/chathistory,
draft/event-playback and soju.im/search, each only if offered. With history (draft/chathistory
and batch), joining a room asks for its latest lines (`CHATHISTORY LATEST #room * 50`, capped by
ISUPPORT CHATHISTORY); live lines of that room are held until the batch is in (at most
HOLD_SECONDS, released by the driver's `expire_held`), so the block of earlier messages, between
two separators, comes before them. `request_older` pages back from the oldest line shown until
an empty batch says there is nothing earlier. At the end of the MOTD, `CHATHISTORY TARGETS` lists
the recent private conversations. `/search` sends SEARCH (soju.im/search). Every line with a
msgid is shown once, whether it came live or in history. History events carry `history` ("latest",
"older" or "search"), never count as unread, and change no state (who is in a room).
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from typing import Callable

from client import accounts as A
from client import history as H
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
    "/whois nick": "about someone (and the account they are logged in to)",
    "/away [message]": "mark yourself away (no message: back)",
    "/search [#room] words": "search the server's history (in:nick or from:nick narrow it)",
    "/register [email] password": "create an account named after your nickname (and log in to it)",
    "/login account password": "log in to your account",
    "/older": "show earlier messages of this conversation (PageUp does it too)",
    "/quit [reason]": "leave the chat",
    "/help": "this list",
}
COMMANDS = sorted(spec.split()[0] for spec in HELP)
MAX_NICK = 30  # hubchat's default NICKLEN; the server has the final word
NICK_RULES = "Nicknames use letters, digits and -[]\\`^{}|, and don't start with a digit."
MESSAGE_KINDS = ("message", "action", "notice")
HOLD_KINDS = {"message", "action", "notice", "join", "part", "quit", "nick"}  # wait for a room's history
SEEN_MAX = 20_000  # msgids remembered for showing each line once
SASL = "sasl"
ACCOUNT_CAPS = (SASL, "account-notify", "extended-join", "account-tag")  # each requested only when offered
#                                                                       (sasl only with an account to log in to)
REGISTRATION_CAP = "draft/account-registration"
# The people list shows every status (multi-prefix) and who is away (away-notify), when offered.
PRESENCE_CAPS = ("multi-prefix", "away-notify")
# draft/read-marker: the server keeps how far we have read each conversation (MARKREAD), across
# sessions and devices; a join brings the room's marker, which the front ends turn into the
# "new since you last looked" line, and looking at a conversation moves it.
READ_MARKER = "draft/read-marker"
DEFAULT_PREFIX = "(ov)@+"


def nickname_allowed(nick: str) -> bool:
    return is_valid_nick(nick, MAX_NICK)


def completion(candidate: str, at_start: bool) -> str:
    """What Tab puts in the line: 'nick: ' to address someone at its start, otherwise a space after."""
    return candidate + (": " if at_start and not candidate.startswith("/") else " ")


@dataclass(frozen=True, slots=True)
class Event:
    """Something to show: `kind` says how; `target` is the conversation it belongs to."""

    kind: str  # message, action, notice, join, part, quit, nick, topic, names, info, error, open,
    #            separator (between history and live lines), targets (recent private conversations),
    #            read (the server's read marker of `target` at `ts`: no line to show)
    text: str
    target: str | None = None  # channel name or the other person's nick; None: the status view
    nick: str | None = None  # who said or did it
    own: bool = False  # we said it
    ts: float = field(default_factory=time.time)  # the server's time when it sent one (server-time)
    history: str = ""  # "": live; "latest"/"older": from CHATHISTORY; "search": a search result
    msgid: str | None = None

    @property
    def private(self) -> bool:
        return self.target is not None and not is_channel_name(self.target)


@dataclass
class Outcome:
    send: list[bytes] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    quit: bool = False


class ChatCore:
    def __init__(self, nick: str, channel: str = DEFAULT_CHANNEL, clock: Callable[[], float] = time.time) -> None:
        self.nick = nick
        self.home = channel
        self.clock = clock
        self.channels: dict[str, dict] = {}  # casefolded name -> {"name", "members", "topic"}
        self.queries: dict[str, str] = {}  # casefolded nick -> nick as shown
        self.current: str | None = None
        self.registered = False
        self._names_buffer: dict[str, list[str]] = {}
        self.outbox: list[bytes] = []  # lines to send that no typed line asked for
        # This connection's capabilities and ISUPPORT (start_lines resets them).
        self.offered: dict[str, str] = {}
        self.caps: set[str] = set()
        self.isupport: dict[str, str] = {}
        self._negotiating = False
        self._batches: dict[str, H.Batch] = {}
        self._pending: dict[str, str] = {}  # casefolded target -> "latest" | "older": asked, not answered
        self._held: dict[str, tuple[float, list[Event]]] = {}  # live events waiting for that history
        self._searches: deque[str] = deque()  # the words of each SEARCH not yet answered, in order
        self._targets_asked = False
        self._marked: dict[str, float] = {}  # casefolded target -> the read marker we last sent
        # Accounts, on this connection.
        self.account: str | None = None  # the account we are logged in to
        self.accounts: dict[str, str] = {}  # casefolded nick -> account, for the people we know of
        self.away: set[str] = set()  # casefolded nicks known to be away (away-notify, WHO, 301)
        self._sasl: A.SaslLogin | None = None  # an exchange in progress
        self._sasl_problem = ""  # why we aborted one (shown with 906)
        self._login_wanted = False  # log in once sasl is acknowledged
        self._registering: str | None = None  # the password of a REGISTER not yet answered
        # Kept across connections.
        self._credentials: tuple[str, str] | None = None  # (account, password): logged in again on reconnect
        self._history: dict[str, H.HistoryState] = {}
        self._seen: OrderedDict[str, None] = OrderedDict()  # msgids shown
        self._own: deque[tuple[str, str, str, float]] = deque(maxlen=200)  # (target, kind, text, ts) we showed

    # --- the connection --------------------------------------------------------------------
    def start_lines(self) -> list[bytes]:
        """A new connection: negotiation starts over. The lines that open it: CAP LS 302, NICK, USER
        (the server waits for CAP END, which follows the capabilities' answer)."""
        self.registered = False
        self.offered.clear()
        self.caps.clear()
        self.isupport.clear()
        self._batches.clear()
        self._pending.clear()
        self._held.clear()
        self._searches.clear()
        self._targets_asked = False
        self._marked.clear()
        self.account = None
        self.accounts.clear()
        self._sasl = None
        self._sasl_problem = ""
        self._registering = None
        self._login_wanted = self._credentials is not None
        self.outbox.clear()
        for state in self._history.values():
            state.fetched = False
        self._negotiating = True
        return [format_line(None, "CAP", "LS", "302"), format_line(None, "NICK", self.nick),
                format_line(None, "USER", "hubchat", "0", "*", "hubchat user")]

    def set_credentials(self, account: str, password: str) -> None:
        """Log in to this account with SASL when connecting (and again on each reconnect)."""
        self._credentials = (account, password)
        self._login_wanted = True

    @property
    def status_text(self) -> str:
        return f"logged in as {self.account}" if self.account else "not logged in"

    def account_of(self, nick: str) -> str | None:
        return self.accounts.get(casefold(nick))

    def take_sends(self) -> list[bytes]:
        lines, self.outbox = self.outbox, []
        return lines

    @property
    def history_enabled(self) -> bool:
        return H.CHATHISTORY in self.caps and H.BATCH in self.caps

    @property
    def search_enabled(self) -> bool:
        return H.SEARCH in self.caps and H.BATCH in self.caps

    @property
    def history_limit(self) -> int:
        """Lines per request: 50, or the server's ISUPPORT CHATHISTORY maximum if lower (0: none)."""
        try:
            most = int(self.isupport.get("CHATHISTORY") or 0)
        except ValueError:
            most = 0
        return min(H.HISTORY_LINES, most) if most > 0 else H.HISTORY_LINES

    @property
    def _msgid_refs(self) -> bool:
        """The server takes msgid= references (ISUPPORT MSGREFTYPES lists msgid)."""
        return "msgid" in self.isupport.get("MSGREFTYPES", "").split(",")

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def history_state(self, target: str) -> H.HistoryState:
        return self._history.setdefault(casefold(target), H.HistoryState())

    def expire_held(self) -> list[Event]:
        """Live lines that waited HOLD_SECONDS for their room's history: show them now."""
        deadline = self.clock() - H.HOLD_SECONDS
        events: list[Event] = []
        for key in [k for k, (since, _) in self._held.items() if since <= deadline]:
            events += self._release(key)
        return events

    def release_held(self) -> list[Event]:
        """Everything still held (the connection is gone: no history will come)."""
        events: list[Event] = []
        for key in list(self._held):
            events += self._release(key)
        return events

    def _release(self, key: str | None) -> list[Event]:
        return self._held.pop(key, (0.0, []))[1] if key is not None else []

    def _emit(self, events: list[Event]) -> list[Event]:
        """Events to show now; those of a room whose latest history is on its way wait for it."""
        if not self._held:
            return events
        out = []
        for event in events:
            held = self._held.get(casefold(event.target)) if event.target and event.kind in HOLD_KINDS else None
            if held is not None and not event.history:
                held[1].append(event)
            else:
                out.append(event)
        return out

    def _finish(self, out: Outcome) -> Outcome:
        out.send[:0] = self.take_sends()
        out.events = self._emit(out.events)
        return out

    def _already_seen(self, msgid: str | None) -> bool:
        """True if a line with this msgid was shown (and remember it otherwise)."""
        if not msgid:
            return False
        if msgid in self._seen:
            return True
        self._seen[msgid] = None
        if len(self._seen) > SEEN_MAX:
            self._seen.popitem(last=False)
        return False

    def _match_own(self, event: Event, history: bool) -> bool:
        """Is this (an echo, or a history line) one of our own lines already shown when sent?"""
        key = casefold(event.target or "")
        for i, (target, kind, text, ts) in enumerate(self._own):
            if target == key and kind == event.kind and text == event.text and \
                    (not history or event.ts >= ts - H.OWN_SLACK):
                del self._own[i]
                return True
        return False

    def _display_name(self, target: str) -> str:
        key = casefold(target)
        if key in self.channels:
            return self.channels[key]["name"]
        return self.queries.get(key, target)

    # --- history requests ----------------------------------------------------------------
    def _fetch_latest(self, name: str) -> None:
        """Ask for a conversation's latest lines (once per connection) and hold its live lines."""
        if not self.history_enabled:
            return
        key = casefold(name)
        state = self.history_state(name)
        if state.fetched or key in self._pending:
            return
        state.fetched = True
        self._pending[key] = "latest"
        self._held[key] = (self.clock(), [])
        self.outbox.append(H.latest_line(name, self.history_limit))

    def request_older(self, target: str | None = None) -> Outcome:
        """Earlier lines of a conversation than the oldest shown (PageUp, scrolling to the top)."""
        name = target or self.current
        if not name:
            return Outcome(events=[Event("error", "Open a conversation first.")])
        name = self._display_name(name)
        if not self.history_enabled:
            return Outcome(events=[Event("info", "This server keeps no message history.", name)])
        key = casefold(name)
        if key in self._pending:
            return Outcome()  # on its way
        state = self.history_state(name)
        if state.done:
            return Outcome(events=[Event("info", f"No earlier messages in {name}.", name)])
        self._pending[key] = "older"
        if state.oldest_ts is None:
            line = H.latest_line(name, self.history_limit)
        else:
            line = H.before_line(name, state, self.history_limit, self._msgid_refs)
        return self._finish(Outcome(send=[line]))

    def open_conversation(self, name: str) -> Outcome:
        """Look at a conversation (the window's list): typed lines go there; a private one
        shows its latest history the first time."""
        key = casefold(name)
        if key in self.channels:
            self.current = self.channels[key]["name"]
        elif is_channel_name(name):  # a room we left: typed lines get the server's answer
            self.current = name
        else:
            self._open_query(name)
            self.current = self.queries[key]
            self._fetch_latest(self.current)
        return self._finish(Outcome())

    def search(self, words: str, where: str | None = None, sender: str | None = None) -> Outcome:
        words = " ".join(words.split())
        if not words:
            return _usage("/search [#room] words")
        if not self.search_enabled:
            return Outcome(events=[Event("error", "This server does not offer search.", self.current)])
        self._searches.append(words)
        return Outcome(send=[H.search_line(words, where, sender)])

    def mark_read(self, name: str, ts: float | None) -> Outcome:
        """We have read a conversation up to the line of time `ts`: tell the server, when it keeps
        read markers (it keeps the later of two, so an earlier time is not worth sending)."""
        key = casefold(name)
        if READ_MARKER not in self.caps or ts is None or ts <= self._marked.get(key, 0.0) or not self.registered:
            return Outcome()
        self._marked[key] = ts
        return Outcome(send=[format_line(None, "MARKREAD", self._display_name(name),
                                         f"timestamp={H.format_server_time(ts)}")])

    # --- what is known -------------------------------------------------------------------
    def members(self, channel: str | None = None) -> list[str]:
        chan = self.channels.get(casefold(channel or self.current or ""))
        return sorted(chan["members"], key=str.lower) if chan else []

    def prefix_symbols(self) -> str:
        """The status symbols, highest first, from ISUPPORT PREFIX ("(ov)@+" -> "@+")."""
        modes, symbols = parse_prefix(self.isupport.get("PREFIX") or DEFAULT_PREFIX)
        return symbols

    def statuses(self, channel: str | None = None) -> dict[str, str]:
        """Each member's nick (as shown) -> status symbols held in that room, highest first."""
        chan = self.channels.get(casefold(channel or self.current or ""))
        if not chan:
            return {}
        order = self.prefix_symbols()
        held = chan.setdefault("status", {})
        return {n: "".join(s for s in order if s in held.get(casefold(n), "")) for n in chan["members"]}

    def is_away(self, nick: str) -> bool:
        return casefold(nick) in self.away

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
        return self._finish(self._typed(text))

    def _typed(self, text: str) -> Outcome:
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
        line = format_line(None, "PRIVMSG", target, body)  # raises ValueError before anything changes
        if not is_channel_name(target):
            self._open_query(target)
            target = self.queries[casefold(target)]
            self._fetch_latest(target)  # asked before our line, so its answer does not hold it
        kind = "action" if action else "message"
        now = self.clock()
        self._own.append((casefold(target), kind, text, now))
        return Outcome(send=[line], events=[Event(kind, text, target, self.nick, own=True, ts=now)])

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
            self._fetch_latest(nick)
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

    def _cmd_search(self, rest: str) -> Outcome:
        """/search [#room] [in:where] [from:nick] words"""
        where = sender = None
        words = []
        for i, word in enumerate(rest.split()):
            if i == 0 and is_channel_name(word):
                where = word
            elif word.lower().startswith("in:") and len(word) > 3:
                where = word[3:]
            elif word.lower().startswith("from:") and len(word) > 5:
                sender = word[5:]
            else:
                words.append(word)
        return self.search(" ".join(words), where, sender)

    def _cmd_register(self, rest: str) -> Outcome:
        """/register [email] password: REGISTER * <email|*> <password>, named after the current nick."""
        words = rest.split(" ", 1)
        if not rest:
            return _usage("/register [email] password")
        if len(words) == 2 and "@" in words[0] and words[1].strip():
            email, secret = words[0], words[1].strip()
        else:
            email, secret = "*", rest
        if REGISTRATION_CAP not in self.offered:
            return Outcome(events=[Event("error", "This server does not offer account registration.")])
        if self.account:
            return Outcome(events=[Event("error", f"You are logged in as {self.account} already.")])
        self._registering = secret
        return Outcome(send=[format_line(None, "REGISTER", "*", email, secret)],
                       events=[Event("info", f"Registering the account {self.nick}...")])

    def _cmd_login(self, rest: str) -> Outcome:
        account, _, secret = rest.partition(" ")
        if not account or not secret:
            return _usage("/login account password")
        if self.account:
            return Outcome(events=[Event("error", f"You are logged in as {self.account} already.")])
        if SASL not in self.caps and SASL not in self.offered:
            return Outcome(events=[Event("error", "This server does not let you log in (it offers no SASL).")])
        if self._sasl is not None:
            return Outcome(events=[Event("error", "A login is in progress; wait for its answer.")])
        self._credentials = (account, secret)
        self._login_wanted = True
        if SASL in self.caps:
            self._start_sasl()
        else:
            self.outbox.append(format_line(None, "CAP", "REQ", SASL))
        return Outcome(events=[Event("info", f"Logging in as {account}...")])

    def _cmd_older(self, rest: str) -> Outcome:
        return self.request_older(rest.split()[0] if rest else None)

    def _cmd_quit(self, rest: str) -> Outcome:
        return Outcome(send=[format_line(None, "QUIT", rest or "Leaving")], quit=True)

    def _cmd_help(self, rest: str) -> Outcome:
        width = max(len(spec) for spec in HELP)
        lines = ["Commands:"] + [f"  {spec.ljust(width)}  {what}" for spec, what in HELP.items()]
        lines.append("  Anything else you type is sent to the current conversation.")
        return Outcome(events=[Event("info", line) for line in lines])

    # --- server messages -----------------------------------------------------------------
    def handle_message(self, msg: Message) -> list[Event]:
        ref = msg.tags.get("batch")
        if ref and msg.command != "BATCH":
            batch = self._batches.get(ref)
            if batch is not None and batch.collect:  # history, search results: read when it ends
                if len(batch.lines) < H.MAX_BATCH_LINES:
                    batch.lines.append(msg)
                return []
        if msg.command == "BATCH":
            return self._on_batch(msg)
        if "account" in msg.tags and msg.source and "!" in msg.source:  # account-tag
            self._note_account(self._src(msg), msg.tags["account"])
        handler = getattr(self, f"_on_{msg.command.lower()}", None)
        if handler is not None:
            events = handler(msg)
        elif msg.command == N.ERR_UNKNOWNCOMMAND and len(msg.params) > 2:
            events = self._unknown_command(msg)
        elif msg.command.isdigit() and msg.command >= "400" and len(msg.params) > 1:
            events = [Event("error", _numeric_text(msg), self.current)]
        else:
            events = []
        when = H.parse_server_time(msg.tags.get("time"))
        if when is not None:  # a read marker's time is the marker's, not the line's
            events = [e if e.msgid or e.kind == "read" else replace(e, ts=when) for e in events]
        return self._emit(events)

    def _time_of(self, msg: Message) -> tuple[float, str | None]:
        raw = msg.tags.get("time")
        when = H.parse_server_time(raw)
        return (when, raw) if when is not None else (self.clock(), None)

    # --- capabilities and what the server supports ---------------------------------------
    def _on_cap(self, msg: Message) -> list[Event]:
        if len(msg.params) < 3:
            return []
        sub, names = msg.params[1].upper(), msg.params[-1].split()
        events: list[Event] = []
        if sub in ("LS", "NEW"):
            for item in names:
                name, _, value = item.partition("=")
                self.offered[name] = value
            more = sub == "LS" and len(msg.params) > 3 and msg.params[2] == "*"
            if not more:
                wanted = [c for c in H.WANTED_CAPS + ACCOUNT_CAPS + PRESENCE_CAPS + (READ_MARKER,) if c in self.offered and c not in self.caps
                          and (c != SASL or self._login_wanted)]  # sasl only to log in (/login asks later)
                if sub == "LS" and self._login_wanted and SASL not in self.offered:
                    self._login_wanted = False
                    events.append(Event("error", "This server does not let you log in (it offers no SASL); "
                                                 "carrying on without an account."))
                if wanted:
                    self.outbox.append(format_line(None, "CAP", "REQ", " ".join(wanted)))
                elif sub == "LS":
                    self._end_negotiation()
        elif sub == "ACK":
            for name in names:
                (self.caps.discard if name.startswith("-") else self.caps.add)(name.lstrip("-"))
            if SASL in self.caps and self._login_wanted and self._credentials and not self.account:
                self._start_sasl()  # CAP END waits for its end (903, or a failure)
            else:
                self._end_negotiation()
        elif sub == "NAK":
            if self._login_wanted and SASL in names:
                self._login_wanted = False
                events.append(Event("error", "The server refused logging in (SASL); carrying on without an account."))
            self._end_negotiation()
        elif sub == "DEL":
            for name in names:
                self.offered.pop(name, None)
                self.caps.discard(name)
        return events

    def _end_negotiation(self) -> None:
        if self._negotiating:
            self._negotiating = False
            self.outbox.append(format_line(None, "CAP", "END"))

    # --- accounts: SASL, REGISTER, who is logged in -----------------------------------------
    def _start_sasl(self) -> None:
        account, secret = self._credentials  # type: ignore[misc]
        self._login_wanted = False
        self._sasl = A.SaslLogin(account, secret, self.offered.get(SASL, ""))
        self._sasl_problem = ""
        self.outbox.append(format_line(None, "AUTHENTICATE", self._sasl.first_line()))

    def _on_authenticate(self, msg: Message) -> list[Event]:
        if self._sasl is None or not msg.params:
            return []
        try:
            replies = self._sasl.receive(msg.params[0])
        except A.LoginError as exc:
            self._sasl = None
            self._sasl_problem = str(exc)
            self.outbox.append(format_line(None, "AUTHENTICATE", "*"))  # answered with 906
            return []
        self.outbox.extend(format_line(None, "AUTHENTICATE", line) for line in replies)
        return []

    def _login_over(self, text: str | None) -> list[Event]:
        """The exchange ended (text: how it failed); registration goes on."""
        during_connect = self._negotiating
        self._sasl = None
        self._login_wanted = False
        self._end_negotiation()
        if text is None:
            return []
        self._credentials = None  # not tried again on reconnect
        carry_on = "; carrying on without logging in." if during_connect else "."
        return [Event("error", text[0].upper() + text[1:] + carry_on)]

    def _on_900(self, msg: Message) -> list[Event]:  # RPL_LOGGEDIN <nick> <mask> <account> :text
        if len(msg.params) < 3:
            return []
        self.account = msg.params[2]
        self.accounts[casefold(self.nick)] = self.account
        return [Event("info", f"You are logged in as {self.account}.", self.current)]

    def _on_901(self, msg: Message) -> list[Event]:  # RPL_LOGGEDOUT
        self.account = None
        self.accounts.pop(casefold(self.nick), None)
        return [Event("info", "You are logged out.", self.current)]

    def _on_903(self, msg: Message) -> list[Event]:  # RPL_SASLSUCCESS
        return self._login_over(None)

    def _on_904(self, msg: Message) -> list[Event]:  # ERR_SASLFAIL
        if self._sasl is None and not self._negotiating:
            return []
        said = msg.params[-1] if msg.params else ""
        extra = f" ({said})" if "too many" in said.lower() else ""
        return self._login_over(A.LOGIN_FAILED + extra)

    def _on_902(self, msg: Message) -> list[Event]:  # ERR_NICKLOCKED
        return self._login_over("login failed: you cannot log in with this nickname now")

    def _on_905(self, msg: Message) -> list[Event]:  # ERR_SASLTOOLONG
        return self._login_over("login failed: the login message was too long for the server")

    def _on_906(self, msg: Message) -> list[Event]:  # ERR_SASLABORTED
        problem = self._sasl_problem or "the login was cancelled"
        return self._login_over(f"login failed: {problem}")

    def _on_907(self, msg: Message) -> list[Event]:  # ERR_SASLALREADY
        self._sasl = None
        self._end_negotiation()
        return [Event("info", "You are logged in already.", self.current)]

    def _on_908(self, msg: Message) -> list[Event]:  # RPL_SASLMECHS: 904 follows
        return []

    def _on_register(self, msg: Message) -> list[Event]:
        if len(msg.params) < 2:
            return []
        status, account = msg.params[0].upper(), msg.params[1]
        secret, self._registering = self._registering, None
        if status == "SUCCESS":
            if secret:
                self._credentials = (account, secret)  # logged in again on reconnect
            return [Event("info", f"REGISTER SUCCESS: the account {account} is created.", self.current)]
        if status == "VERIFICATION_REQUIRED":
            return [Event("info", f"The account {account} is created; check your email for the code that "
                                  "confirms it.", self.current)]
        return []

    def _note_account(self, nick: str, account: str | None) -> None:
        if not nick:
            return
        if account and account != "*":
            self.accounts[casefold(nick)] = account
        else:
            self.accounts.pop(casefold(nick), None)

    def _on_account(self, msg: Message) -> list[Event]:  # account-notify
        who = self._src(msg)
        if not msg.params or not who:
            return []
        account = msg.params[0]
        self._note_account(who, account)
        if casefold(who) == casefold(self.nick):
            return []  # 900 and 901 said it already
        text = f"{who} logged out" if account == "*" else f"{who} logged in as {account}"
        return [Event("info", text, chan["name"], who) for chan in self.channels.values() if who in chan["members"]]

    def _on_330(self, msg: Message) -> list[Event]:  # RPL_WHOISACCOUNT <me> <nick> <account> :text
        if len(msg.params) < 3:
            return []
        self._note_account(msg.params[1], msg.params[2])
        return [Event("info", f"{msg.params[1]} is logged in as {msg.params[2]}")]

    def _on_005(self, msg: Message) -> list[Event]:  # RPL_ISUPPORT
        for token in msg.params[1:-1]:
            if token.startswith("-"):
                self.isupport.pop(token[1:].upper(), None)
            else:
                name, _, value = token.partition("=")
                self.isupport[name.upper()] = value
        return []

    def _on_376(self, msg: Message) -> list[Event]:  # end of MOTD: registration is over
        self._ask_targets()
        return []

    def _on_422(self, msg: Message) -> list[Event]:  # no MOTD (shown as before)
        self._ask_targets()
        return [Event("error", _numeric_text(msg), self.current)] if len(msg.params) > 1 else []

    def _ask_targets(self) -> None:
        """The recent private conversations (CHATHISTORY TARGETS), once per connection."""
        if self.history_enabled and not self._targets_asked:
            self._targets_asked = True
            self.outbox.append(H.targets_line(self.clock(), min(H.TARGETS_LIMIT, self.history_limit)))

    def _unknown_command(self, msg: Message) -> list[Event]:
        command = msg.params[1].upper()
        if command == "CAP":  # a server without capability negotiation: register without it
            self._negotiating = False
            return []
        events = [Event("error", _numeric_text(msg), self.current)]
        if command == "CHATHISTORY":  # offered but not there after all: stop asking, show what waited
            self.caps.discard(H.CHATHISTORY)
            self._pending.clear()
            events += self.release_held()
        elif command == "SEARCH":
            self.caps.discard(H.SEARCH)
            self._searches.clear()
        return events

    # --- batches: history, recent conversations, search results ---------------------------
    def _on_batch(self, msg: Message) -> list[Event]:
        if not msg.params or len(msg.params[0]) < 2:
            return []
        sign, ref = msg.params[0][0], msg.params[0][1:]
        if sign == "+":
            kind = msg.params[1] if len(msg.params) > 1 else ""
            self._batches[ref] = H.Batch(kind, msg.params[2:], kind in H.COLLECTED_BATCHES)
            return []
        batch = self._batches.pop(ref, None) if sign == "-" else None
        if batch is None or not batch.collect:
            return []
        if batch.kind in H.HISTORY_BATCHES:
            return self._history_batch(batch)
        if batch.kind in H.TARGETS_BATCHES:
            return self._targets_batch(batch)
        return self._search_batch(batch)

    def _history_batch(self, batch: H.Batch) -> list[Event]:
        if batch.params:
            key = casefold(batch.params[0])
        else:  # no target named: the oldest question is the one answered
            key = next(iter(self._pending), None)
            if key is None:
                return []
        name = self._display_name(batch.params[0] if batch.params else key)
        kind = self._pending.pop(key, "latest")
        state = self.history_state(name)
        before = state.oldest_ts
        events = []
        for msg in batch.lines:
            when, raw = self._time_of(msg)
            if raw is not None:
                state.saw(when, raw, msg.tags.get("msgid"))
            if self._already_seen(msg.tags.get("msgid")):
                continue  # shown already, live or in an earlier batch
            event = self._history_event(msg, name, kind)
            if event is None or (event.own and self._match_own(event, history=True)):
                continue
            events.append(event)
        if not batch.lines:
            state.done = True
        out: list[Event] = []
        if events:
            out = [Event("separator", H.EARLIER, name, ts=events[0].ts, history=kind), *events,
                   Event("separator", H.NOW if kind == "latest" else H.END_EARLIER, name, ts=events[-1].ts,
                         history=kind)]
        elif kind == "older":
            if state.done:
                out = [Event("separator", H.NO_EARLIER, name, history=kind)]
            elif state.oldest_ts is not None and (before is None or state.oldest_ts < before):
                # Every line of the page was shown already: go on to the next page.
                self._pending[key] = "older"
                self.outbox.append(H.before_line(name, state, self.history_limit, self._msgid_refs))
            else:  # the server gave back only what is shown, and nothing before it: that is the start
                state.done = True
                out = [Event("separator", H.NO_EARLIER, name, history=kind)]
        return out + (self._release(key) if kind == "latest" else [])

    def _history_event(self, msg: Message, name: str, kind: str) -> Event | None:
        """One line of a history batch as an event. No state changes: this is the past."""
        command, params, who = msg.command, msg.params, self._src(msg)
        if command in ("PRIVMSG", "NOTICE"):
            return self._message_event(msg, "message" if command == "PRIVMSG" else "notice", name, kind)
        reason = f" ({params[-1]})" if len(params) > (2 if command == "KICK" else 1) and params[-1] else ""
        if command == "JOIN":
            shown = ("join", f"{who} joined {name}")
        elif command == "PART":
            shown = ("part", f"{who} left {name}{reason}")
        elif command == "QUIT":
            shown = ("quit", f"{who} left the chat{reason if params else ''}")
        elif command == "NICK" and params:
            shown = ("nick", f"{who} is now known as {params[0]}")
        elif command == "TOPIC" and params:
            shown = ("topic", f"{who} set the topic: {params[-1]}")
        elif command == "KICK" and len(params) > 1:
            shown = ("part", f"{who} removed {params[1]} from {name}{reason}")
        elif command == "MODE" and len(params) > 1:
            shown = ("info", f"{who} set mode {' '.join(params[1:])}")
        else:
            return None  # TAGMSG and the rest: nothing to read
        when, _ = self._time_of(msg)
        return Event(shown[0], shown[1], name, who, ts=when, history=kind, msgid=msg.tags.get("msgid"))

    def _targets_batch(self, batch: H.Batch) -> list[Event]:
        found: dict[str, tuple[str, float | None]] = {}
        for msg in batch.lines:
            params = msg.params
            if msg.command != "CHATHISTORY" or len(params) < 2 or params[0].upper() != "TARGETS":
                continue
            target = params[1]
            if is_channel_name(target) or casefold(target) == casefold(self.nick):
                continue
            found[casefold(target)] = (target, H.parse_server_time(params[2]) if len(params) > 2 else None)
        if not found:
            return []
        recent = sorted(found.values(), key=lambda item: -(item[1] or 0))
        for nick, _ in recent:
            self._open_query(nick)
        now = self.clock()
        listed = ", ".join(f"{nick} ({H.clock_text(ts, now)})" if ts else nick for nick, ts in recent)
        return [Event("targets", f"Recent private conversations: {listed}. Type /msg nick to open one.")]

    def _search_batch(self, batch: H.Batch) -> list[Event]:
        words = self._searches.popleft() if self._searches else ""
        results = []
        for msg in batch.lines:
            if msg.command in ("PRIVMSG", "NOTICE") and len(msg.params) > 1:
                event = self._message_event(msg, "message" if msg.command == "PRIVMSG" else "notice",
                                            history="search")
                if event is not None:
                    results.append(event)
        if not results:
            return [Event("info", f"No messages match \u201c{words}\u201d.", history="search")]
        count = f"{len(results)} messages match" if len(results) != 1 else "1 message matches"
        return [Event("separator", f"\u2014 {count} \u201c{words}\u201d \u2014", history="search"), *results,
                Event("separator", H.END_SEARCH, history="search")]

    # --- standard replies ----------------------------------------------------------------
    def _on_fail(self, msg: Message) -> list[Event]:
        if len(msg.params) < 2:
            return []
        command, code = msg.params[0].upper(), msg.params[1]
        description = msg.params[-1] if len(msg.params) > 2 else ""
        context = msg.params[2:-1]
        reason = H.fail_reason(command, code, description)
        if command == "CHATHISTORY":
            sub = context[0].upper() if context else ""
            if sub == "TARGETS":
                return [Event("error", f"Could not list your recent private conversations: {reason}.")]
            target = context[1] if len(context) > 1 else None
            key = casefold(target) if target and casefold(target) in self._pending else next(iter(self._pending), None)
            if key is not None:
                self._pending.pop(key)
            name = self._display_name(target or key) if (target or key) else None
            where = f" of {name}" if name else ""
            return [Event("error", f"Could not load earlier messages{where}: {reason}.", name)] + self._release(key)
        if command == "REGISTER":
            self._registering = None
            return [Event("error", f"REGISTER failed ({code}): {A.register_fail_text(code, description)}.",
                          self.current)]
        if command == "SEARCH":
            words = self._searches.popleft() if self._searches else ""
            return [Event("error", f"The search for \u201c{words}\u201d failed: {reason}.", self.current)]
        return [Event("error", f"{command} failed: {reason}.", self.current)]

    def _on_warn(self, msg: Message) -> list[Event]:
        return [Event("info", msg.params[-1], self.current)] if len(msg.params) > 2 else []

    def _src(self, msg: Message) -> str:
        return (msg.source or "").split("!", 1)[0]

    def _on_001(self, msg: Message) -> list[Event]:
        self.registered = True
        self.nick = msg.params[0]
        return [Event("info", f"Connected as {self.nick}.")]

    def _message_event(self, msg: Message, kind: str, conversation: str | None = None,
                       history: str = "") -> Event | None:
        """A PRIVMSG or NOTICE as an event, in `conversation` (or where it belongs)."""
        if len(msg.params) < 2:
            return None
        sender, target, text = self._src(msg), msg.params[0], msg.params[1]
        if text.startswith(ACTION) and kind == "message":
            kind, text = "action", text[len(ACTION):].rstrip("\x01")
        own = casefold(sender) == casefold(self.nick)
        when, _ = self._time_of(msg)
        msgid = msg.tags.get("msgid")
        if conversation is None:
            if is_channel_name(target):
                conversation = self.channels.get(casefold(target), {}).get("name", target)
            elif not msg.source or "!" not in msg.source:  # from the server itself
                return Event("notice", text, None, sender, ts=when, history=history, msgid=msgid)
            else:
                conversation = target if own else sender
        return Event(kind, text, conversation, sender, own=own, ts=when, history=history, msgid=msgid)

    def _on_privmsg(self, msg: Message, kind: str = "message") -> list[Event]:
        if self._already_seen(msg.tags.get("msgid")):
            return []  # it came in a history batch already
        event = self._message_event(msg, kind)
        if event is None:
            return []
        if event.own and self._match_own(event, history=False):
            return []  # the server's echo of a line we showed when we sent it
        if event.target is not None:
            when, raw = self._time_of(msg)
            if raw is not None:
                self.history_state(event.target).saw(when, raw, event.msgid)
            if event.private:
                self._open_query(event.target)
                self._fetch_latest(event.target)  # a new private conversation: what came before
        return [event]

    def _on_notice(self, msg: Message) -> list[Event]:
        return self._on_privmsg(msg, kind="notice")

    def _on_join(self, msg: Message) -> list[Event]:
        who, name = self._src(msg), msg.params[0]
        if len(msg.params) > 2:  # extended-join: JOIN #room account :real name
            self._note_account(who, msg.params[1])
        if casefold(who) == casefold(self.nick):
            self.channels[casefold(name)] = {"name": name, "members": set(), "topic": ""}
            self.current = name
            self._names_buffer[casefold(name)] = []
            self.history_state(name).fetched = False  # each join: what was said meanwhile
            self._fetch_latest(name)
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
            chan.get("status", {}).pop(casefold(who), None)
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
            chan.get("status", {}).pop(casefold(victim), None)
        return [Event("part", f"{who} removed {victim} from {name}{reason}", name, victim)]

    def _on_mode(self, msg: Message) -> list[Event]:
        if len(msg.params) < 2 or not is_channel_name(msg.params[0]):
            return []
        chan = self.channels.get(casefold(msg.params[0]))
        if chan is not None:
            apply_status_modes(chan.setdefault("status", {}), msg.params[1], msg.params[2:],
                               self.isupport.get("PREFIX") or DEFAULT_PREFIX, self.isupport.get("CHANMODES", ""))
        return [Event("info", f"{self._src(msg)} set mode {' '.join(msg.params[1:])}", msg.params[0])]

    def _on_invite(self, msg: Message) -> list[Event]:
        if len(msg.params) < 2:
            return []
        return [Event("info", f"{self._src(msg)} invites you to {msg.params[1]} (type /join {msg.params[1]})")]

    def _on_quit(self, msg: Message) -> list[Event]:
        who = self._src(msg)
        reason = f" ({msg.params[0]})" if msg.params and msg.params[0] else ""
        self.accounts.pop(casefold(who), None)
        self.away.discard(casefold(who))
        events = []
        for chan in self.channels.values():
            if who in chan["members"]:
                chan["members"].discard(who)
                events.append(Event("quit", f"{who} left the chat{reason}", chan["name"], who))
        return events

    def _on_nick(self, msg: Message) -> list[Event]:
        old, new = self._src(msg), msg.params[0]
        if casefold(old) in self.accounts:
            self.accounts[casefold(new)] = self.accounts.pop(casefold(old))
        if casefold(old) in self.away:
            self.away.discard(casefold(old))
            self.away.add(casefold(new))
        if casefold(old) == casefold(self.nick):
            self.nick = new
            return [Event("nick", f"You are now known as {new}", self.current, new, own=True)]
        events = []
        for chan in self.channels.values():
            if old in chan["members"]:
                chan["members"].discard(old)
                chan["members"].add(new)
                held = chan.get("status", {}).pop(casefold(old), "")
                if held:
                    chan["status"][casefold(new)] = held
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
        symbols = self.prefix_symbols()
        entries = []
        for item in msg.params[3].split():
            nick = item.lstrip(symbols)
            entries.append((nick.split("!", 1)[0], item[:len(item) - len(nick)]))  # userhost-in-names too
        self._names_buffer.setdefault(casefold(name), []).extend(entries)
        return []

    def _on_366(self, msg: Message) -> list[Event]:
        name = msg.params[1]
        entries = self._names_buffer.pop(casefold(name), [])
        nicks = [nick for nick, _ in entries]
        chan = self.channels.get(casefold(name))
        if chan is not None:
            chan["members"] = set(nicks)
            chan["status"] = {casefold(nick): held for nick, held in entries if held}
        if not nicks:
            return []
        listed = ", ".join(sorted(nicks, key=str.lower))
        return [Event("names", f"People in {name} ({len(nicks)}): {listed}", name)]

    def _on_322(self, msg: Message) -> list[Event]:  # RPL_LIST
        topic = f": {msg.params[3]}" if len(msg.params) > 3 and msg.params[3] else ""
        return [Event("info", f"{msg.params[1]} ({msg.params[2]} people){topic}")]

    def _on_311(self, msg: Message) -> list[Event]:  # RPL_WHOISUSER
        return [Event("info", f"{msg.params[1]} is {msg.params[2]}@{msg.params[3]} ({msg.params[-1]})")]

    def _on_markread(self, msg: Message) -> list[Event]:  # MARKREAD <target> timestamp=<time> | *
        """The server's read marker of a conversation, as a "read" event (shown as no line: the
        front ends place the new-lines marker with it); `*`, no marker, says nothing."""
        if len(msg.params) < 2:
            return []
        when = H.parse_server_time(msg.params[1])
        if when is None:
            return []
        key = casefold(msg.params[0])
        self._marked[key] = max(self._marked.get(key, 0.0), when)
        return [Event("read", "", self._display_name(msg.params[0]), ts=when)]

    def _on_away(self, msg: Message) -> list[Event]:  # away-notify: AWAY :message, or AWAY (back)
        who = casefold(self._src(msg))
        (self.away.add if msg.params and msg.params[0] else self.away.discard)(who)
        return []

    def _on_352(self, msg: Message) -> list[Event]:  # RPL_WHOREPLY: flags H (here) or G (gone)
        if len(msg.params) > 6:
            (self.away.add if msg.params[6].startswith("G") else self.away.discard)(casefold(msg.params[5]))
        return []

    def _on_301(self, msg: Message) -> list[Event]:  # RPL_AWAY
        self.away.add(casefold(msg.params[1]))
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


def nick_refused_text(msg: Message) -> str | None:
    """433 with hubchat's (and ergo's) text for a nickname an account owns: that, in words."""
    if msg.command == N.ERR_NICKNAMEINUSE and msg.params and "reserved" in msg.params[-1].lower():
        return A.NICK_RESERVED_TEXT[0].upper() + A.NICK_RESERVED_TEXT[1:] + "."
    return None


def _numeric_text(msg: Message) -> str:
    reserved = nick_refused_text(msg)
    if reserved:
        return reserved
    template = _FRIENDLY.get(msg.command)
    if template and len(msg.params) > 2:
        return template.format(msg.params[1])
    return msg.params[-1]


def parse_prefix(value: str) -> tuple[str, str]:
    """ISUPPORT PREFIX "(ov)@+" -> ("ov", "@+"); anything malformed means the default."""
    if value.startswith("(") and ")" in value:
        modes, symbols = value[1:].split(")", 1)
        if len(modes) == len(symbols) and modes:
            return modes, symbols
    return "ov", "@+"


def apply_status_modes(status: dict[str, str], change: str, args: list[str], prefix: str = DEFAULT_PREFIX,
                       chanmodes: str = "") -> None:
    """Apply a channel MODE change to `status` (casefolded nick -> symbols held). Arguments are
    consumed as CHANMODES says, so "+kv key nick" gives the voice to nick, not to the key."""
    modes, symbols = parse_prefix(prefix)
    groups = (chanmodes.split(",") + ["", "", "", ""])[:4]
    always, on_set = set(groups[0] + groups[1]), set(groups[2])
    adding, args = True, list(args)
    for letter in change:
        if letter in "+-":
            adding = letter == "+"
        elif letter in modes:
            if not args:
                return
            key, symbol = casefold(args.pop(0)), symbols[modes.index(letter)]
            held = status.get(key, "").replace(symbol, "")
            held = held + symbol if adding else held
            if held:
                status[key] = "".join(s for s in symbols if s in held)
            else:
                status.pop(key, None)
        elif letter in always or (adding and letter in on_set):
            if args:
                args.pop(0)
