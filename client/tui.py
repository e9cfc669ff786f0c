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
from client.render import mentions, plain, segments, split_text
from ircproto.casemap import casefold

PALETTE = ["ansired", "ansigreen", "ansiyellow", "ansiblue", "ansimagenta", "ansicyan", "ansibrightred",
           "ansibrightgreen"]
STYLE = Style.from_dict({
    "time": "ansibrightblack", "target": "ansibrightblack", "private": "ansimagenta bold", "own": "bold",
    "info": "ansibrightblack", "error": "ansired", "text": "",
    **{f"nick{i}": colour for i, colour in enumerate(PALETTE)},
    # History is grey, whatever it says (formatted() gives its segments no other class).
    "history": "ansibrightblack", "separator": "ansibrightblack italic",
    "mention": "reverse bold", "activity": "ansiyellow", "activity-mention": "ansibrightred bold",
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


def formatted(event: Event, me: str, multi: bool) -> FormattedText:
    parts = []
    dim = event.history in DIMMED
    for role, text in segments(event, me, show_target=multi):
        if role == "separator":
            style = "class:separator"
        elif dim:
            style = "class:history bold" if role.startswith("nick:") or role == "own" else "class:history"
        elif role == "text" and event.kind in ("message", "action", "notice") and not event.own:
            for part, piece in split_text(text, me):  # our nick, wherever it is said to us
                parts.append(("class:mention" if part == "mention" else "class:text", piece))
            continue
        else:
            style = f"class:nick{role[5:]}" if role.startswith("nick:") else f"class:{role}"
        parts.append((style, text))
    return FormattedText(parts)


class Windows:
    """The conversations as numbered windows, irssi's and WeeChat's habit: `Alt-N` or `/win N`
    looks at the Nth, `/windows` lists them, and the prompt shows which others have something
    new ("2:#side(3)") or named us ("3:bob(@1)")."""

    def __init__(self) -> None:
        self.unread: dict[str, int] = {}
        self.mentioned: dict[str, int] = {}

    def note(self, event: Event, current: str | None, me: str) -> bool:
        """Count a live line said elsewhere; True when it names us (ring the bell)."""
        named = mentions(event, me)
        if event.target is None or event.history or event.kind not in ("message", "action", "notice") \
                or event.own:
            return named
        key = casefold(event.target)
        if current is None or key != casefold(current):
            self.unread[key] = self.unread.get(key, 0) + 1
            if named:
                self.mentioned[key] = self.mentioned.get(key, 0) + 1
        return named

    def seen(self, name: str) -> None:
        self.unread.pop(casefold(name), None)
        self.mentioned.pop(casefold(name), None)

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

        def show(events: list[Event]) -> None:
            multi = len(core.conversations()) > 1
            for event in events:
                print_formatted_text(formatted(event, core.nick, multi), style=STYLE)
                if windows.note(event, core.current, core.nick):
                    sys.stdout.write("\a")  # the terminal's bell: someone named us
                    sys.stdout.flush()
            status = window_title(core)
            if status != title[0]:  # the terminal's title says who we are and whether we are logged in
                title[0] = status
                set_title(status)

        conn = Connection(core, host, port, show, lambda reason: ask_nickname(session, reason), tls, insecure)
        def switch(number: int | None) -> None:
            name = windows.pick(core.conversations(), number) if number is not None else None
            if name is None:
                show([Event("error", f"No window {number}: /windows lists them." if number else "Usage: /win N")])
                return
            conn.apply(core.open_conversation(name))
            windows.seen(name)
            show([Event("info", f"Now in {core.current}.", core.current)])

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
