"""The terminal client: prompt_toolkit keeps the line being typed intact while messages print above it.

`prompt_async` inside `patch_stdout` is the whole trick: anything printed while the prompt is
active is drawn above it and the input line is redrawn as it was. Tab completes commands and
nicks; up and down walk the input history (prompt_toolkit's own).

Server-side history prints as it comes, dimmed (grey) between two separator lines, "— earlier
messages —" and "— now —", each line with its own time (and date, when not today). PageUp asks
for the page before the oldest line shown, printed as another dimmed block; when the server has
nothing earlier it says "— no earlier messages —". /search prints its results as a block, each
with its time and where it was said.

The conversations are numbered windows, as irssi and WeeChat users expect: Alt-1..9 or `/win N`
looks at one, `/windows` lists them, and the prompt shows the others that have new lines
("2:#side(3)") or named us ("3:bob(@1)"). Our nick is shown reversed where someone says it, and
the terminal's bell rings.

Lines show their IRC formatting (render.py's parser, as prompt_toolkit style words), a day
separator where the date changes, and the "new since you last looked" marker before the first
unread line (from the server's read marker at a join, or on switching to a window with unread
lines, where those lines are printed again under it).
"""
from __future__ import annotations

import asyncio
import sys

from prompt_toolkit import PromptSession, print_formatted_text
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import set_title
from prompt_toolkit.styles import Style

from client.accounts import carries_password
from client.connection import ConnectError, Connection
from client.core import NICK_RULES, ChatCore, Event, completion, nickname_allowed
from client.render import NEW_LINES, Activity, day_breaks, dated, plain, segments, styled_runs
from client.render import Style as RunStyle
from ircproto.casemap import casefold

PALETTE = ["ansired", "ansigreen", "ansiyellow", "ansiblue", "ansimagenta", "ansicyan", "ansibrightred",
           "ansibrightgreen"]
STYLE = Style.from_dict({
    "time": "ansibrightblack", "target": "ansibrightblack", "private": "ansimagenta bold", "own": "bold",
    "info": "ansibrightblack", "error": "ansired", "text": "",
    **{f"nick{i}": colour for i, colour in enumerate(PALETTE)},
    # History is grey, whatever it says (formatted() gives its segments no other class).
    "history": "ansibrightblack", "separator": "ansibrightblack italic",
    "mention": "reverse bold", "link": "underline", "activity": "ansiyellow", "activity-mention": "ansibrightred bold",
    "day": "ansibrightblack", "new-lines": "ansibrightred",
})
DIMMED = ("latest", "older")  # Event.history values shown grey


class ChatCompleter(Completer):
    """Commands after '/', nicks elsewhere (the word under the cursor)."""

    def __init__(self, core: ChatCore) -> None:
        self.core = core

    def get_completions(self, document, complete_event):
        word = document.get_word_before_cursor(WORD=True)
        if not word:
            return
        at_start = document.text_before_cursor.lstrip() == word
        for candidate in self.core.completions(word):
            if candidate.startswith("/") and not at_start:
                continue
            yield Completion(completion(candidate, at_start), start_position=-len(word), display=candidate)


def style_text(style: RunStyle, colours: bool = True) -> str:
    """A formatting run's look as prompt_toolkit style words (added after the segment's class);
    `colours` False for history, which stays grey whatever colours it was said in."""
    words = [name for name in ("bold", "italic", "underline", "strike", "reverse") if getattr(style, name)]
    if colours and style.fg:
        words.append(f"fg:{style.fg}")
    if colours and style.bg:
        words.append(f"bg:{style.bg}")
    return " ".join(words)


def formatted(event: Event, me: str, multi: bool) -> FormattedText:
    parts = []
    dim = event.history in DIMMED
    for role, text in segments(event, me, show_target=multi):
        if role == "separator":
            style = "class:separator"
        elif role == "text" and event.kind in ("message", "action", "notice"):
            # Our nick where someone says it to us, links, and the line's own IRC formatting.
            for part, piece, look in styled_runs(text, "" if event.own else me):
                base = "class:history" if dim else f"class:{part}"
                parts.append((f"{base} {style_text(look, colours=not dim)}".rstrip(), piece))
            continue
        elif dim:
            style = "class:history bold" if role.startswith("nick:") or role == "own" else "class:history"
        else:
            style = f"class:nick{role[5:]}" if role.startswith("nick:") else f"class:{role}"
        parts.append((style, text))
    return FormattedText(parts)


def banner(text: str, target: str | None, multi: bool, role: str) -> FormattedText:
    """A day separator or the new-lines marker, as a line of its own."""
    return FormattedText(([("class:target", f"{target} ")] if multi and target else []) + [(f"class:{role}", text)])


RECAP_LINES = 50  # unread lines of a window shown again under the marker when you switch to it


class Windows:
    """The conversations as numbered windows, irssi's and WeeChat's habit: `Alt-N` or `/win N`
    looks at the Nth, `/windows` lists them, and the prompt shows which others have something
    new ("2:#side(3)") or named us ("3:bob(@1)"). The counting is `Activity`'s, the window's too.

    The terminal prints every conversation's lines as they come, so the marker cannot go back
    into what is printed: switching to a window with unread lines prints the marker and those
    lines again under it (the last RECAP_LINES of them)."""

    def __init__(self) -> None:
        self.activity = Activity()
        self.waiting: dict[str, list[Event]] = {}  # key -> its unread lines, for the recap

    @property
    def unread(self) -> dict[str, int]:
        return self.activity.unread

    @property
    def mentioned(self) -> dict[str, int]:
        return self.activity.mentioned

    def note(self, event: Event, current: str | None, me: str) -> bool:
        """Count a line said elsewhere; True when it names us (ring the bell)."""
        if event.target is None:
            return self.activity.note("", event, me, looking=True)
        key = casefold(event.target)
        looking = current is not None and key == casefold(current)
        before = self.activity.unread.get(key, 0)
        named = self.activity.note(key, event, me, looking)
        if self.activity.unread.get(key, 0) > before:
            self.waiting.setdefault(key, []).append(event)
            del self.waiting[key][:-RECAP_LINES]
        return named

    def seen(self, name: str) -> tuple[float | None, list[Event]]:
        """You look at a window: its newest line's time (for MARKREAD) and the unread lines to
        show again under the marker (none when nothing was unread)."""
        key = casefold(name)
        recap = self.waiting.pop(key, [])
        newest = self.activity.look(key)
        if recap:
            self.activity.placed.add(key)  # the recap shows it
        return newest, recap

    def pick(self, names: list[str], number: int) -> str | None:
        return names[number - 1] if 1 <= number <= len(names) else None

    def indicator(self, names: list[str]) -> list[tuple[str, str]]:
        """The prompt's activity: the windows with unread lines, numbered."""
        out = []
        for n, name in enumerate(names, 1):
            key = casefold(name)
            if self.mentioned.get(key):
                out.append(("class:activity-mention", f"{n}:{name}(@{self.mentioned[key]}) "))
            elif self.unread.get(key):
                out.append(("class:activity", f"{n}:{name}({self.unread[key]}) "))
        return out

    def listing(self, names: list[str], current: str | None) -> str:
        if not names:
            return "-- No conversations yet."
        rows = []
        for n, name in enumerate(names, 1):
            key = casefold(name)
            mark = "*" if current is not None and key == casefold(current) else " "
            counts = (f" ({self.unread[key]} new)" if self.unread.get(key) else "") + \
                     (f" (@{self.mentioned[key]})" if self.mentioned.get(key) else "")
            rows.append(f"{mark}{n}: {name}{counts}")
        return "-- Windows (Alt-N or /win N): " + ", ".join(rows)


def window_command(text: str) -> tuple[str, int | None] | None:
    """("list", None) for /windows, ("win", N) for /win N (N None when not a number), else None."""
    words = text.split()
    if not words:
        return None
    head = words[0].lower()
    if head in ("/windows", "/window") and len(words) == 1:
        return ("list", None)
    if head in ("/win", "/window"):
        return ("win", int(words[1]) if len(words) == 2 and words[1].isdigit() else None)
    return None


class InputHistory(InMemoryHistory):
    """Up and down walk what was typed, except the lines that carry a password."""

    def append_string(self, string: str) -> None:
        if not carries_password(string):
            super().append_string(string)


def window_title(core: ChatCore) -> str:
    return f"hubchat - {core.nick} ({core.status_text})"


def history_keys(page_up, switch=None) -> KeyBindings:
    """PageUp: earlier messages of the current conversation (`page_up` asks for them); Alt-1..9:
    look at that window (`switch(n)`)."""
    keys = KeyBindings()

    @keys.add("pageup")
    def _(event) -> None:
        page_up()

    if switch is not None:
        for n in range(1, 10):
            keys.add("escape", str(n))(lambda event, n=n: switch(n))

    return keys


async def ask_nickname(session: PromptSession, reason: str | None = None) -> str | None:
    if reason:
        print_formatted_text(FormattedText([("class:error", reason)]), style=STYLE)
    while True:
        try:
            nick = (await session.prompt_async("Choose a nickname: ")).strip()
        except (EOFError, KeyboardInterrupt):
            return None
        if nickname_allowed(nick):
            return nick
        print_formatted_text(FormattedText([("class:error", NICK_RULES + " Try again.")]), style=STYLE)


async def run(host: str, port: int, nick: str | None, channel: str, tls: bool, insecure: bool,
              session: PromptSession | None = None, login: tuple[str, str] | None = None) -> int:
    session = session or PromptSession(history=InputHistory(), complete_while_typing=False,
                                       erase_when_done=True)  # the sent line is shown once, formatted
    with patch_stdout(raw=True):
        nick = nick or await ask_nickname(session)
        if not nick:
            return 1
        core = ChatCore(nick, channel)
        if login:
            core.set_credentials(*login)
        session.completer = ChatCompleter(core)

        title = [""]
        windows = Windows()
        last_dated: dict[str, float] = {}  # conversation key -> its last line's time, for day separators

        def put(text: FormattedText) -> None:
            print_formatted_text(text, style=STYLE)

        def show(events: list[Event]) -> None:
            multi = len(core.conversations()) > 1
            for event in events:
                key = casefold(event.target) if event.target else ""
                if event.kind == "read":
                    windows.activity.server_read(key, event.ts)
                    continue
                if windows.note(event, core.current, core.nick):
                    sys.stdout.write("\a")  # the terminal's bell: someone named us
                    sys.stdout.flush()
                if event.history != "search":
                    for _, label in day_breaks([dated(event)], last_dated.get(key)):
                        put(banner(label, event.target, multi, "day"))
                    if dated(event) is not None:
                        last_dated[key] = event.ts
                    if windows.activity.place(key, event):
                        put(banner(NEW_LINES, event.target, multi, "new-lines"))
                put(formatted(event, core.nick, multi))
            status = window_title(core)
            if status != title[0]:  # the terminal's title says who we are and whether we are logged in
                title[0] = status
                set_title(status)

        conn = Connection(core, host, port, show, lambda reason: ask_nickname(session, reason), tls, insecure)

        def mark_read(name: str | None) -> None:
            if name:
                conn.apply(core.mark_read(name, windows.activity.read.get(casefold(name))))

        def switch(number: int | None) -> None:
            name = windows.pick(core.conversations(), number) if number is not None else None
            if name is None:
                show([Event("error", f"No window {number}: /windows lists them." if number else "Usage: /win N")])
                return
            left = core.current
            conn.apply(core.open_conversation(name))
            _, recap = windows.seen(name)
            mark_read(left)
            mark_read(name)
            show([Event("info", f"Now in {core.current}.", core.current)])
            if recap:
                multi = len(core.conversations()) > 1
                put(banner(NEW_LINES, name, multi, "new-lines"))
                breaks = dict(day_breaks([e.ts for e in recap]))
                for i, event in enumerate(recap):
                    if i in breaks:
                        put(banner(breaks[i], event.target, multi, "day"))
                    put(formatted(event, core.nick, multi))

        session.key_bindings = history_keys(lambda: conn.apply(core.request_older()), switch)
        try:
            await conn.start()
        except ConnectError as exc:
            print(exc, file=sys.stderr)
            return 1
        print_formatted_text(FormattedText([("class:info", f"-- Connected to {host}:{port}. Type /help for "
                                                           "commands, /quit to leave.")]), style=STYLE)
        relay = asyncio.create_task(conn.run())
        while not relay.done():
            try:
                text = await session.prompt_async(lambda: FormattedText(
                    windows.indicator(core.conversations()) + [("", f"[{core.current or core.nick}] ")]))
            except (EOFError, KeyboardInterrupt):
                text = "/quit"
            local = window_command(text)
            if local is not None:
                if local[0] == "list":
                    show([Event("info", windows.listing(core.conversations(), core.current))])
                else:
                    switch(local[1])
                continue
            if core.current:
                windows.seen(core.current)
                if text.strip().lower().split()[:1] == ["/quit"]:
                    mark_read(core.current)
            if conn.send_input(text):
                break
        await conn.quit()
        return 0


async def run_piped(host: str, port: int, nick: str | None, channel: str, tls: bool, insecure: bool,
                    lines=None, out=None, login: tuple[str, str] | None = None) -> int:
    """No terminal: every input line is sent (slash commands work too); what arrives is printed."""
    out = out or sys.stdout
    core = ChatCore(nick or "guest", channel)
    if login:
        core.set_credentials(*login)
    joined = asyncio.Event()

    def show(events: list[Event]) -> None:
        for event in events:
            if event.kind == "read":
                continue
            out.write(f"{plain(event, core.nick)}\n")
            if event.kind == "open":
                joined.set()
        out.flush()

    conn = Connection(core, host, port, show, None, tls, insecure)
    try:
        await conn.start()
    except ConnectError as exc:
        print(exc, file=sys.stderr)
        return 1
    relay = asyncio.create_task(conn.run())
    await asyncio.wait([asyncio.create_task(joined.wait()), relay], return_when=asyncio.FIRST_COMPLETED)
    loop = asyncio.get_running_loop()
    source = lines if lines is not None else sys.stdin
    while not relay.done():
        text = await loop.run_in_executor(None, source.readline)
        if not text or conn.send_input(text):
            break
    await conn.quit()
    return 0
