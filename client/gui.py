"""The desktop client: a Tkinter window over the same ChatCore and Connection as the terminal.

Theory of operation
-------------------
Tk is single-threaded, so every widget call happens on the main thread. The network runs in a
background thread with its own asyncio loop. It never touches a widget: it puts what it has
learned into `inbox` (events, plus a snapshot of the conversations and members whenever they
may have changed), and the Tk thread drains that queue every few milliseconds, at most
`DRAIN_BUDGET` items at a time, so thousands of arriving messages cannot freeze the window.
What the user types goes the other way through `loop.call_soon_threadsafe`.

Each conversation (the server view, each room, each private chat) keeps its own bounded list
of lines; the one on screen is drawn in the text view, the others count unread messages.

Server-side history: a room's latest lines come grey between "— earlier messages —" and
"— now —". Scrolling to the top (wheel, scrollbar, PageUp) asks for the page before the oldest
line; it is put in above the lines already there, under the top separator, and the view stays
on the lines it showed; "— no earlier messages —" ends it. The recent private conversations
(CHATHISTORY TARGETS) are listed at connect; opening one shows its latest lines. The search bar
sends /search (optionally only in the conversation shown); the results fill the
"(search results)" view, each with its time, date and where it was said. History never counts
as unread.

How a line looks is render.py's: IRC formatting becomes Tk tags (one per combination, made when
first drawn), a day separator goes where the date changes, and the "new since you last looked"
marker before the first line not seen. The view is drawn again from the conversation's lines
when either may move (showing it, the focus coming back with unread lines, a page of earlier
lines, the server's read marker).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import queue
import shutil
import subprocess
import threading
import tkinter as tk
import webbrowser
from collections import deque
from tkinter import simpledialog, ttk

from client.accounts import carries_password
from client.connection import ConnectError, Connection
from client import settings
from client.core import NICK_RULES, ChatCore, Event, completion, nickname_allowed
from client.history import EARLIER, NO_EARLIER
from client.render import (NEW_LINES, PLAIN, Activity, Style, day_breaks, dated, member_rows, segments,
                           strip_formatting, styled_runs)
from ircproto.casemap import casefold, is_channel_name

SERVER_VIEW = "(server)"
SEARCH_VIEW = "(search results)"
DRAIN_BUDGET = 400  # items handled per tick of the Tk loop
DRAIN_EVERY_MS = 30
KEEP_LINES = 2000  # per conversation
LOADING_FOR_MS = 15000  # a page of history not answered by then may be asked for again
PALETTE = ["#c0392b", "#27ae60", "#b9770e", "#2e86c1", "#8e44ad", "#148f77", "#d35400", "#2c3e50"]
HISTORY_GREY = "#8c8c8c"
MEMBERSHIP_KINDS = {"open", "join", "part", "quit", "nick", "names", "targets"}
LOGGED_IN_MARK = " \u2713"  # after a logged-in person's nick in the people list
DIMMED = ("latest", "older")  # Event.history values drawn grey
SPLIT_KINDS = ("message", "action", "notice")  # lines whose text may hold links and mentions
THEMES = {
    "light": {"bg": "#fafafa", "fg": "#1e1e1e", "panel": "#eeeeee", "select": "#cfe3f7", "muted": "#808080",
              "away": "#a0a0a0", "mention_bg": "#fff3b0", "mention_fg": "#1e1e1e", "link": "#1565c0",
              "marked": "#c0392b", "entry": "#ffffff", "code": "#ececec"},
    "dark": {"bg": "#1e1f22", "fg": "#dcdcdc", "panel": "#2b2d31", "select": "#3d4a5c", "muted": "#8a8f98",
             "away": "#6b6f76", "mention_bg": "#5a4b12", "mention_fg": "#fff3c4", "link": "#6cb6ff",
             "marked": "#ff7b72", "entry": "#313338", "code": "#2b2d31"},
}
TEXT_FONT = ("TkFixedFont", 10)
UI_FONT = ("TkDefaultFont", 10)


def system_theme(env: dict | None = None, ask_gsettings=None) -> str:
    """"dark" or "light": HUBCHAT_THEME if set, else the desktop's colour scheme where it can be
    read (GTK_THEME ending ":dark", GNOME's color-scheme), else light."""
    env = os.environ if env is None else env
    chosen = env.get("HUBCHAT_THEME", "").strip().lower()
    if chosen in THEMES:
        return chosen
    if env.get("GTK_THEME", "").lower().endswith(":dark"):
        return "dark"
    answer = (ask_gsettings or _gsettings_scheme)()
    return "dark" if answer and "dark" in answer.lower() else "light"


def _gsettings_scheme() -> str:
    try:
        done = subprocess.run(["gsettings", "get", "org.gnome.desktop.interface", "color-scheme"],
                              capture_output=True, text=True, timeout=2)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


def title_text(nick: str, status: str, unread: int, mentioned: int) -> str:
    counts = []
    if mentioned:
        counts.append(f"{mentioned} mention" + ("s" if mentioned > 1 else ""))
    if unread:
        counts.append(f"{unread} unread")
    return (f"({', '.join(counts)}) " if counts else "") + f"hubchat - {nick} ({status})"


def conversation_label(title: str, unread: int, mentioned: int) -> str:
    """As the conversation list shows it: "(3)" unread, "@1" when we were named."""
    return title + (f"  ({unread})" if unread else "") + (f"  @{mentioned}" if mentioned else "")


class NetworkThread:
    """The connection, on its own thread and asyncio loop. It holds nothing of Tk (a Tk object
    freed on another thread aborts the process): it talks to the window only through `inbox`."""

    def __init__(self, core: ChatCore, host: str, port: int, tls: bool, insecure: bool) -> None:
        self.core = core
        self._accounts: dict[str, str] = {}  # as last handed over (a change refreshes the people list)
        self._away: set[str] = set()
        self.host, self.port, self.tls, self.insecure = host, port, tls, insecure
        self.inbox: queue.Queue = queue.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.conn: Connection | None = None
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True,
                                       name="hubchat-network")

    def start(self) -> None:
        self.thread.start()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        conn = Connection(self.core, self.host, self.port, self._from_network, self._ask_nick, self.tls,
                          self.insecure)
        try:
            await conn.start()
        except ConnectError as exc:
            self.inbox.put(("fatal", str(exc)))
            return
        self.conn = conn
        self.inbox.put(("status", f"Connected to {self.host}:{self.port} as {self.core.nick}"))
        await conn.run()
        self.inbox.put(("status", "Disconnected."))

    def _from_network(self, events: list[Event]) -> None:
        """Hand events over, with a snapshot of rooms and people whenever they may have changed."""
        snapshot = None
        core = self.core
        # MODE lines come as "info" events; away-notify comes as none, so the away set is compared.
        if (any(e.kind in MEMBERSHIP_KINDS or e.kind == "info" for e in events) or core.accounts != self._accounts
                or core.away != self._away):
            self._accounts, self._away = dict(core.accounts), set(core.away)
            symbols = core.prefix_symbols()
            snapshot = (core.nick, core.current, [c["name"] for c in core.channels.values()],
                        list(core.queries.values()),
                        {k: [(label + LOGGED_IN_MARK if core.account_of(nick) else label, nick, away)
                             for label, nick, away in member_rows(core.statuses(c["name"]), core.away, symbols)]
                         for k, c in core.channels.items()}, core.status_text)
        self.inbox.put(("events", events, snapshot))

    async def _ask_nick(self, reason: str) -> str | None:
        answer: concurrent.futures.Future = concurrent.futures.Future()
        self.inbox.put(("ask_nick", reason, answer))
        return await asyncio.wrap_future(answer)

    def call(self, function, *args) -> None:
        """Run function(*args) on the network thread."""
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(function, *args)

    def send(self, text: str) -> None:
        self.call(self._send, text)

    def request_older(self, target: str) -> None:
        self.call(self._apply, self.core.request_older, target)

    def search(self, words: str, where: str | None = None) -> None:
        self.call(self._apply, self.core.search, words, where)

    def open_conversation(self, name: str) -> None:
        self.call(self._apply, self.core.open_conversation, name)

    def mark_read(self, name: str, ts: float | None) -> None:
        self.call(self._apply, self.core.mark_read, name, ts)

    def _apply(self, action, *args) -> None:
        """On the network thread: ask the core, then do what it says."""
        outcome = action(*args)
        if self.conn is None:
            if outcome.events:
                self._from_network(outcome.events)
        else:
            self.conn.apply(outcome)

    def _send(self, text: str) -> None:
        if self.conn is None:
            self._from_network([Event("error", "Not connected yet.")])
        elif self.conn.send_input(text):
            asyncio.get_running_loop().create_task(self.conn.quit())
            self.inbox.put(("status", "You left the chat. Close the window when you like."))

    def quit(self) -> None:
        if self.conn is not None and not self.conn.quitting:
            self.call(lambda: asyncio.get_running_loop().create_task(self.conn.quit()))


class ChatWindow:
    def __init__(self, root: tk.Tk, host: str, port: int, nick: str, channel: str,
                 tls: bool = False, insecure: bool = False, login: tuple[str, str] | None = None) -> None:
        self.root = root
        self.host, self.port = host, port
        self.core = ChatCore(nick, channel)
        if login:
            self.core.set_credentials(*login)
        self.net = NetworkThread(self.core, host, port, tls, insecure)
        self.inbox = self.net.inbox
        self.buffers: dict[str, deque[Event]] = {SERVER_VIEW: deque(maxlen=KEEP_LINES)}
        self.titles: dict[str, str] = {SERVER_VIEW: SERVER_VIEW}  # key -> name as shown
        self.activity = Activity()  # unread and mention counts, and where the new-lines marker goes
        self._fmt_tags: dict[Style, str] = {}  # a tag for each combination of IRC formatting drawn
        self._last_dated: float | None = None  # the time of the last line drawn, for day separators
        self.members: dict[str, list[tuple[str, str, bool]]] = {}  # key -> (label, nick, away) rows
        self.nick_shown = nick
        self.theme = system_theme()
        self.open_link = webbrowser.open  # replaceable, so a test can see what a click opens
        self.shown = SERVER_VIEW
        self.history: list[str] = []
        self.history_pos = 0
        self.loading: set[str] = set()  # conversations whose earlier page was asked for
        self.history_done: set[str] = set()  # conversations with nothing earlier on the server
        self.status = tk.StringVar(value=f"Connecting to {host}:{port}...")
        self.login_status = "not logged in"
        self.closed = False
        self._build()
        self.net.start()
        self.root.after(DRAIN_EVERY_MS, self._drain)

    # --- widgets -------------------------------------------------------------------------
    def _build(self) -> None:
        root = self.root
        root.title(f"hubchat - {self.core.nick}")
        root.geometry("900x560")
        self.style = ttk.Style(root)
        if "clam" in self.style.theme_names():  # flat, and it takes colours (the default X11 one barely does)
            self.style.theme_use("clam")
        menu = tk.Menu(root, tearoff=False)
        view_menu = tk.Menu(menu, tearoff=False)
        self.dark = tk.BooleanVar(value=self.theme == "dark")
        view_menu.add_checkbutton(label="Dark theme", variable=self.dark,
                                  command=lambda: self.set_theme("dark" if self.dark.get() else "light"))
        menu.add_cascade(label="View", menu=view_menu)
        root.configure(menu=menu)
        self.menu, self.view_menu = menu, view_menu
        root.protocol("WM_DELETE_WINDOW", self.close)
        root.bind("<FocusIn>", self._on_focus, add="+")
        top = ttk.Frame(root, padding=(4, 4, 4, 0))
        top.pack(fill=tk.X)
        ttk.Label(top, text="Search").pack(side=tk.LEFT)
        self.search_entry = ttk.Entry(top, width=30)
        self.search_entry.pack(side=tk.LEFT, padx=4)
        self.search_entry.bind("<Return>", lambda e: self.search())
        self.search_here = tk.BooleanVar(value=False)
        ttk.Checkbutton(top, text="only in this conversation", variable=self.search_here).pack(side=tk.LEFT)
        ttk.Button(top, text="Find", command=self.search).pack(side=tk.LEFT, padx=(4, 0))
        # The status line and the entry are packed before the conversation, at the bottom: pack
        # squeezes what comes last when the window is smaller than asked for, and they must show.
        self.status_bar = ttk.Label(root, textvariable=self.status, anchor=tk.W, padding=(6, 0, 6, 4))
        self.status_bar.pack(side=tk.BOTTOM, fill=tk.X)
        bottom = ttk.Frame(root, padding=4)
        bottom.pack(side=tk.BOTTOM, fill=tk.X)
        self.send_button = ttk.Button(bottom, text="Send", command=self.submit)
        paned = ttk.PanedWindow(root, orient=tk.HORIZONTAL)
        paned.pack(fill=tk.BOTH, expand=True)

        left = ttk.Frame(paned, padding=4)
        ttk.Label(left, text="Conversations").pack(anchor=tk.W)
        self.conv_list = tk.Listbox(left, width=22, exportselection=False, activestyle="none", font=UI_FONT,
                                    borderwidth=0, highlightthickness=0)
        self.conv_list.pack(fill=tk.BOTH, expand=True)
        self.conv_list.bind("<<ListboxSelect>>", self._on_select)
        paned.add(left, weight=0)

        middle = ttk.Frame(paned, padding=4)
        self.view = tk.Text(middle, wrap=tk.WORD, state=tk.DISABLED, width=70, font=TEXT_FONT, borderwidth=0,
                            highlightthickness=0, padx=8, pady=6, spacing1=1, spacing3=2)
        scroll = ttk.Scrollbar(middle, command=self._scrollbar)
        self.view.configure(yscrollcommand=scroll.set)
        scroll.pack(side=tk.RIGHT, fill=tk.Y)
        self.view.pack(fill=tk.BOTH, expand=True)
        for wheel in ("<MouseWheel>", "<Button-4>"):  # scrolling up (Windows/macOS, X11)
            self.view.bind(wheel, lambda e: self.root.after_idle(self._maybe_older), add="+")
        self.view.bind("<Prior>", self._page_up)
        paned.add(middle, weight=1)

        right = ttk.Frame(paned, padding=4)
        self.people_label = ttk.Label(right, text="People")
        self.people_label.pack(anchor=tk.W)
        self.people = tk.Listbox(right, width=18, activestyle="none", font=UI_FONT, borderwidth=0,
                                 highlightthickness=0)
        self.people.pack(fill=tk.BOTH, expand=True)
        self.people.bind("<Double-Button-1>", self._on_person)
        paned.add(right, weight=0)

        self.entry = ttk.Entry(bottom)
        self.entry.pack(side=tk.LEFT, fill=tk.X, expand=True)
        self.entry.bind("<Return>", lambda e: self.submit())
        self.entry.bind("<Tab>", self._complete)
        self.entry.bind("<Up>", lambda e: self._walk_history(-1))
        self.entry.bind("<Down>", lambda e: self._walk_history(1))
        self.entry.bind("<Prior>", self._page_up)
        self.send_button.pack(side=tk.LEFT, padx=(4, 0))

        self.view.tag_configure("time", foreground="#808080")
        self.view.tag_configure("target", foreground="#808080")
        self.view.tag_configure("info", foreground="#707070")
        self.view.tag_configure("error", foreground="#c0392b")
        self.view.tag_configure("private", foreground="#8e44ad", font=("TkFixedFont", 10, "bold"))
        self.view.tag_configure("own", font=("TkFixedFont", 10, "bold"))
        for i, colour in enumerate(PALETTE):
            self.view.tag_configure(f"nick:{i}", foreground=colour, font=("TkFixedFont", 10, "bold"))
        # Configured last, so they win over the nick colours: history is grey, whatever it says.
        self.view.tag_configure("history", foreground=HISTORY_GREY)
        self.view.tag_configure("separator", foreground=HISTORY_GREY, font=("TkFixedFont", 10, "italic"))
        self.view.tag_configure("link", underline=True)
        self.view.tag_bind("link", "<Button-1>", self._on_link)
        self.view.tag_bind("link", "<Enter>", lambda e: self.view.configure(cursor="hand2"))
        self.view.tag_bind("link", "<Leave>", lambda e: self.view.configure(cursor=""))
        self.set_theme(self.theme)
        self.entry.focus_set()
        self._refresh_lists()

    # --- the Tk side ---------------------------------------------------------------------
    def _drain(self) -> None:
        changed = False
        for _ in range(DRAIN_BUDGET):
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                break
            kind = item[0]
            if kind == "events":
                self._take_events(item[1], item[2])
                changed = True
            elif kind == "status":
                self.status.set(item[1])
            elif kind == "fatal":
                self.status.set(f"Not connected: {item[1]}")
                self._add(Event("error", item[1]))
            elif kind == "ask_nick":
                nick = ask_nickname(self.root, item[1])
                item[2].set_result(nick)
                if nick:
                    self.nick_shown = nick
                    self._retitle()
        if changed:
            self._refresh_lists()
        if not self.closed:
            self.root.after(1 if not self.inbox.empty() else DRAIN_EVERY_MS, self._drain)

    def _take_events(self, events: list[Event], snapshot) -> None:
        if snapshot is not None:
            nick, current, channels, queries, members, status = snapshot
            self.nick_shown = nick
            if status != self.login_status:  # the status bar says so too, when it changes
                self.login_status = status
                self.status.set(f"Connected to {self.host}:{self.port} as {nick}, {status}")
            for name in channels + queries:
                self.titles.setdefault(casefold(name), name)
                self.buffers.setdefault(casefold(name), deque(maxlen=KEEP_LINES))
            self.members = members
        if any(e.history == "search" for e in events):  # a new search: its results replace the last ones
            self.buffers[SEARCH_VIEW] = deque(maxlen=KEEP_LINES)
            self.titles[SEARCH_VIEW] = SEARCH_VIEW
        older: list[Event] = []
        for event in events:
            if event.history == "older":
                older.append(event)
                continue
            if older:
                self._prepend(older)
                older = []
            self._add(event)
            if event.kind == "open" and event.target:
                self.show(event.target)
        if older:
            self._prepend(older)
        if any(e.history == "search" for e in events):
            self.show(SEARCH_VIEW)

    def _key(self, event: Event) -> str:
        if event.history == "search":
            return SEARCH_VIEW
        return casefold(event.target) if event.target else SERVER_VIEW

    @property
    def unread(self) -> dict[str, int]:
        return self.activity.unread

    @property
    def mentioned(self) -> dict[str, int]:
        return self.activity.mentioned

    def _add(self, event: Event) -> None:
        key = self._key(event)
        if event.kind == "read":  # the server's read marker: where the new-lines marker goes
            self.activity.server_read(key, event.ts)
            if key == self.shown:
                self._redraw()
            return
        if key not in self.buffers:
            self.buffers[key] = deque(maxlen=KEEP_LINES)
            self.titles[key] = event.target or SERVER_VIEW
        self.buffers[key].append(event)
        if event.kind == "error" or (event.kind == "info" and event.text.startswith("No earlier messages")):
            self.loading.discard(key)  # whatever was asked for is not coming
            if event.kind == "info":
                self.history_done.add(key)
        looking = key == self.shown and self._focused()
        if self.activity.note(key, event, self.core.nick, looking) and not looking:
            self.root.bell()  # the window's own signal; the window manager may flash it too
            if not self._focused():
                self.notify(f"{event.nick} in {event.target}", strip_formatting(event.text))
        if key == self.shown:
            self._write(event)

    def notify(self, title: str, text: str) -> None:
        """A desktop notification through the platform's notifier, where there is one (freedesktop's
        notify-send, macOS's osascript); elsewhere the bell above is all. Never waited for."""
        command = notification_command(title, text, shutil.which)
        if command is not None:
            try:
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            except OSError:
                pass

    def _focused(self) -> bool:
        try:
            return self.root.focus_displayof() is not None
        except (KeyError, tk.TclError):  # a dialog's widget, gone already
            return False

    def _prepend(self, chunk: list[Event]) -> None:
        """A page of earlier lines: in above what the conversation shows, under its top separator,
        with the view kept on the lines it was showing."""
        key = self._key(chunk[0])
        self.loading.discard(key)
        buffer = self.buffers.setdefault(key, deque(maxlen=KEEP_LINES))
        self.titles.setdefault(key, chunk[0].target or SERVER_VIEW)
        top = next((i for i, e in enumerate(buffer) if e.kind == "separator" and e.text in (EARLIER, NO_EARLIER)),
                   None)  # where the history shown begins
        end = [e for e in chunk if e.kind == "separator" and e.text == NO_EARLIER]
        if end:  # nothing earlier: say so above the earliest line, once
            self.history_done.add(key)
            if top is not None and buffer[top].text == NO_EARLIER:
                return
            lines, at = end[:1], top or 0
        else:  # the page goes under the top separator (the block's own separators are not repeated)
            lines = [e for e in chunk if e.kind != "separator"]
            at = 0 if top is None else top + 1
            if lines and top is None:
                lines.insert(0, Event("separator", EARLIER, chunk[0].target, history="older"))
        room = KEEP_LINES - len(buffer)
        if room <= 0:
            self.status.set(f"Only the last {KEEP_LINES} lines of a conversation are kept.")
            return
        lines = lines[-room:]
        for i, event in enumerate(lines):
            buffer.insert(at + i, event)
        if key != self.shown or not lines:
            return
        # Day separators and the marker may change around the page: the view is drawn again, and
        # what was shown from the insertion point down stays where it was on screen; the new lines
        # are above it, to scroll up to.
        view = self.view
        first = int(view.index("@0,0").split(".")[0])  # the line at the top of the view
        rows = int(view.index("end-1c").split(".")[0])
        self._redraw(keep_bottom=False)
        view.yview(f"{first + int(view.index('end-1c').split('.')[0]) - rows}.0")

    def _redraw(self, keep_bottom: bool = True) -> None:
        """Draw the conversation shown again, from its lines (its separators and marker too)."""
        at_bottom = self.view.yview()[1] >= 0.999
        self.view.configure(state=tk.NORMAL)
        self.view.delete("1.0", tk.END)
        self.view.configure(state=tk.DISABLED)
        self._last_dated = None
        self.activity.placed.discard(self.shown)
        for event in self.buffers.get(self.shown, ()):
            self._write(event, trim=False)
        if keep_bottom and at_bottom:
            self.view.see(tk.END)

    def _write(self, event: Event, trim: bool = True) -> None:
        """Draw one line at the end, with a day separator above it when its date is not the last
        line's, and the new-lines marker when it is the first line you have not seen."""
        view = self.view
        at_bottom = view.yview()[1] >= 0.999
        view.configure(state=tk.NORMAL)
        if self.shown != SEARCH_VIEW:  # results from everywhere, each with its date already
            for _, label in day_breaks([dated(event)], self._last_dated):
                view.insert(tk.END, label + "\n", ("day",))
            if dated(event) is not None:
                self._last_dated = event.ts
            if self.activity.place(self.shown, event):
                view.insert(tk.END, NEW_LINES + "\n", ("new-lines",))
        extra = ("history",) if event.history in DIMMED and event.kind != "separator" else ()
        for role, text in segments(event, self.core.nick, show_target=False):
            if role == "text" and event.kind in SPLIT_KINDS:
                for part, piece, style in styled_runs(text, "" if event.own else self.core.nick):
                    look = self._style_tag(style)
                    view.insert(tk.END, piece, (part, *extra) + ((look,) if look else ()))
            else:
                view.insert(tk.END, text, (role, *extra))
        view.insert(tk.END, "\n")
        lines = int(view.index("end-1c").split(".")[0])
        if trim and lines > KEEP_LINES:
            view.delete("1.0", f"{lines - KEEP_LINES}.0")
        view.configure(state=tk.DISABLED)
        if at_bottom:
            view.see(tk.END)

    def _style_tag(self, style: Style) -> str | None:
        """The text tag of a combination of IRC formatting, made the first time it is drawn."""
        if style == PLAIN:
            return None
        tag = self._fmt_tags.get(style)
        if tag is None:
            tag = self._fmt_tags[style] = f"fmt{len(self._fmt_tags)}"
            self._configure_style(tag, style)
            # A newer tag wins over older ones: history's grey, mentions and links stay on top.
            for above in ("mention", "history", "separator", "link"):
                self.view.tag_raise(above)
        return tag

    def _configure_style(self, tag: str, style: Style) -> None:
        c = THEMES[self.theme]
        weight = " ".join(word for word, on in (("bold", style.bold), ("italic", style.italic)) if on)
        fg, bg = style.fg, style.bg or (c["code"] if style.mono else None)
        if style.reverse:
            fg, bg = bg or c["bg"], fg or c["fg"]
        self.view.tag_configure(tag, font=(*TEXT_FONT, weight) if weight else "", underline=style.underline,
                                overstrike=style.strike, foreground=fg or "", background=bg or "")

    def show(self, name: str) -> None:
        """Put a conversation on screen and make it where typed lines go: what was looked at is
        read (MARKREAD, where the server keeps read markers), and the one shown gets its marker."""
        key = casefold(name) if name != SERVER_VIEW else SERVER_VIEW
        left, self.shown = self.shown, key
        if left != key and left in self.titles:
            self._mark_read(left)
        self.activity.look(key)
        self._mark_read(key)
        self._redraw()
        self.view.see(tk.END)
        if key not in (SERVER_VIEW, SEARCH_VIEW):
            self.net.open_conversation(self.titles.get(key, name))
        self._refresh_lists()

    def _mark_read(self, key: str) -> None:
        if key not in (SERVER_VIEW, SEARCH_VIEW):
            self.net.mark_read(self.titles.get(key, key), self.activity.read.get(key))

    def _on_focus(self, _event=None) -> None:
        """The window has the focus back: what came in the conversation shown meanwhile is new."""
        if self.activity.unread.get(self.shown) or self.activity.mentioned.get(self.shown):
            had_unread = bool(self.activity.unread.get(self.shown))
            self.activity.look(self.shown)
            self._mark_read(self.shown)
            if had_unread:
                self._redraw()
            self._refresh_lists()

    # --- earlier lines and search ----------------------------------------------------------
    def _maybe_older(self) -> None:
        """The view is at its top: ask for the page before it (once at a time, until none is left)."""
        key = self.shown
        if key in (SERVER_VIEW, SEARCH_VIEW) or key in self.loading or key in self.history_done:
            return
        if not self.core.history_enabled or self.view.yview()[0] > 0.0:
            return
        self.loading.add(key)
        self.root.after(LOADING_FOR_MS, lambda: self.loading.discard(key))
        self.net.request_older(self.titles[key])

    def _scrollbar(self, *args) -> None:
        self.view.yview(*args)
        upward = (args[0] == "moveto" and float(args[1]) <= 0) or (args[0] == "scroll" and int(args[1]) < 0)
        if upward:
            self._maybe_older()

    def _page_up(self, _event=None) -> str:
        self.view.yview_scroll(-1, "pages")
        self.root.after_idle(self._maybe_older)
        return "break"

    def search(self, words: str | None = None) -> None:
        words = self.search_entry.get() if words is None else words
        if not words.strip():
            return
        where = None
        if self.search_here.get() and self.shown not in (SERVER_VIEW, SEARCH_VIEW):
            where = self.titles[self.shown]
        self.net.search(words, where)

    def _refresh_lists(self) -> None:
        keys = [SERVER_VIEW] + sorted((k for k in self.titles if k not in (SERVER_VIEW, SEARCH_VIEW)),
                                      key=lambda k: (not is_channel_name(self.titles[k]), k))
        if SEARCH_VIEW in self.titles:
            keys.append(SEARCH_VIEW)
        self.conv_list.delete(0, tk.END)
        colours = THEMES[self.theme]
        for i, key in enumerate(keys):
            self.conv_list.insert(tk.END, conversation_label(self.titles[key], *self.activity.counts(key)))
            if self.mentioned.get(key):
                self.conv_list.itemconfigure(i, foreground=colours["marked"])
            if key == self.shown:
                self.conv_list.selection_clear(0, tk.END)
                self.conv_list.selection_set(i)
        self._keys = keys
        people = self.members.get(self.shown, [])
        self.people_label.configure(text=f"People ({len(people)})" if people else "People")
        self.people.delete(0, tk.END)
        for i, (label, _nick, away) in enumerate(people):
            self.people.insert(tk.END, label)
            if away:
                self.people.itemconfigure(i, foreground=colours["away"])
        self._retitle()

    def _retitle(self) -> None:
        self.root.title(title_text(self.nick_shown, self.login_status, *self.activity.totals()))

    def set_theme(self, name: str) -> None:
        """Light or dark: the ttk style and the plain Tk widgets (which ttk does not reach)."""
        self.theme = name
        self.dark.set(name == "dark")
        c = THEMES[name]
        style = self.style
        style.configure(".", background=c["panel"], foreground=c["fg"], fieldbackground=c["entry"],
                        bordercolor=c["panel"], lightcolor=c["panel"], darkcolor=c["panel"], font=UI_FONT)
        style.configure("TEntry", fieldbackground=c["entry"], foreground=c["fg"], insertcolor=c["fg"], padding=4)
        style.configure("TButton", padding=(10, 4))
        style.map("TButton", background=[("active", c["select"])])
        style.map("TCheckbutton", background=[("active", c["panel"])])
        self.root.configure(background=c["panel"])
        for box in (self.conv_list, self.people):
            box.configure(background=c["bg"], foreground=c["fg"], selectbackground=c["select"],
                          selectforeground=c["fg"])
        self.view.configure(background=c["bg"], foreground=c["fg"], insertbackground=c["fg"],
                            selectbackground=c["select"])
        for tag in ("time", "target", "info"):
            self.view.tag_configure(tag, foreground=c["muted"])
        self.view.tag_configure("mention", background=c["mention_bg"], foreground=c["mention_fg"],
                                font=(*TEXT_FONT, "bold"))
        self.view.tag_configure("link", foreground=c["link"])
        self.view.tag_configure("day", foreground=c["muted"], justify=tk.CENTER)
        self.view.tag_configure("new-lines", foreground=c["marked"], justify=tk.CENTER,
                                font=(*TEXT_FONT, "bold"))
        for style, tag in self._fmt_tags.items():  # reverse and monospace take the theme's colours
            self._configure_style(tag, style)
        self.view.tag_raise("history")
        self.view.tag_raise("separator")
        self.view.tag_raise("link")
        self._refresh_lists()

    def _on_link(self, tk_event) -> str:
        index = self.view.index(f"@{tk_event.x},{tk_event.y}")
        span = self.view.tag_prevrange("link", f"{index}+1c")
        if span:
            url = self.view.get(*span)
            self.open_link(url if "://" in url else "https://" + url)
        return "break"

    def _on_select(self, _event=None) -> None:
        selection = self.conv_list.curselection()
        if selection and self._keys[selection[0]] != self.shown:
            self.show(self.titles[self._keys[selection[0]]])

    def _on_person(self, _event=None) -> None:
        selection = self.people.curselection()
        if selection:
            self.submit(f"/msg {self.members.get(self.shown, [])[selection[0]][1]}")

    def submit(self, text: str | None = None) -> None:
        if text is None:
            text = self.entry.get()
            self.entry.delete(0, tk.END)
            if text.strip() and not carries_password(text):
                self.history.append(text)
                self.history_pos = len(self.history)
        if text.strip().lower() in ("/theme", "/theme dark", "/theme light"):  # the window's own command
            word = text.split()[1:] or ["light" if self.theme == "dark" else "dark"]
            self.set_theme(word[0].lower())
        elif text.strip():
            self.net.send(text)

    def _walk_history(self, step: int) -> str:
        if self.history:
            self.history_pos = max(0, min(len(self.history), self.history_pos + step))
            self.entry.delete(0, tk.END)
            if self.history_pos < len(self.history):
                self.entry.insert(0, self.history[self.history_pos])
        return "break"

    def _complete(self, _event=None) -> str:
        text = self.entry.get()
        head, _, word = text.rpartition(" ")
        options = self.core.completions(word) if word else []
        if len(options) == 1:
            self.entry.delete(0, tk.END)
            self.entry.insert(0, (head + " " if head else "") + completion(options[0], at_start=not head))
        elif options:
            self._add(Event("info", "  ".join(options), None))
        return "break"  # keep the focus in the entry

    def close(self) -> None:
        self._mark_read(self.shown)  # sent before the QUIT: the network thread keeps the order
        self.net.quit()
        self.closed = True
        self.root.destroy()
        self.net.thread.join(6)  # it says goodbye to the server (5 s at most), then ends


def ask_nickname(root: tk.Misc, reason: str | None = None) -> str | None:
    prompt = (reason + "\n\n" if reason else "") + "Choose a nickname:"
    while True:
        nick = simpledialog.askstring("hubchat", prompt, parent=root)
        if nick is None:
            return None
        nick = nick.strip()
        if nickname_allowed(nick):
            return nick
        prompt = NICK_RULES + "\n\nChoose a nickname:"


def notification_command(title: str, text: str, which) -> list[str] | None:
    """The command that shows a desktop notification here, or None (`which` finds programs)."""
    if which("notify-send"):
        return ["notify-send", "--app-name=hubchat", title, text[:300]]
    if which("osascript"):
        quote = lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'  # noqa: E731
        return ["osascript", "-e", f"display notification {quote(text[:300])} with title {quote(title)}"]
    return None


class ConnectDialog(tk.Toplevel):
    """Server, port, TLS, nickname and account, filled in from what was last used; OK checks
    them and keeps `result` (None: cancelled)."""

    def __init__(self, root: tk.Misc, values: dict) -> None:
        super().__init__(root)
        self.title("Connect to hubchat")
        self.result: dict | None = None
        self.fields = {"host": tk.StringVar(self, values.get("host", "127.0.0.1")),
                       "port": tk.StringVar(self, str(values.get("port", 6667))),
                       "nick": tk.StringVar(self, values.get("nick", "")),
                       "account": tk.StringVar(self, values.get("account", ""))}
        self.tls = tk.BooleanVar(self, values.get("tls", False))
        frame = ttk.Frame(self, padding=12)
        frame.pack(fill="both", expand=True)
        for row, (key, label) in enumerate((("host", "Server"), ("port", "Port"), ("nick", "Nickname"),
                                            ("account", "Account (optional)"))):
            ttk.Label(frame, text=label).grid(row=row, column=0, sticky="w", pady=3)
            entry = ttk.Entry(frame, textvariable=self.fields[key], width=28)
            entry.grid(row=row, column=1, sticky="ew", pady=3)
            if key == "nick":
                entry.focus_set()
        ttk.Checkbutton(frame, text="TLS", variable=self.tls).grid(row=4, column=1, sticky="w")
        self.problem = ttk.Label(frame, text="", foreground="#b00020", wraplength=300)
        self.problem.grid(row=5, column=0, columnspan=2, sticky="w")
        buttons = ttk.Frame(frame)
        buttons.grid(row=6, column=0, columnspan=2, sticky="e", pady=(8, 0))
        ttk.Button(buttons, text="Cancel", command=self.destroy).pack(side="right")
        ttk.Button(buttons, text="Connect", command=self.ok).pack(side="right", padx=6)
        self.bind("<Return>", lambda _: self.ok())
        self.bind("<Escape>", lambda _: self.destroy())

    def ok(self) -> None:
        nick = self.fields["nick"].get().strip()
        port = self.fields["port"].get().strip()
        host = self.fields["host"].get().strip()
        if not host:
            self.problem.configure(text="Which server?")
        elif not (port.isdigit() and 0 < int(port) < 65536):
            self.problem.configure(text="The port is a number from 1 to 65535.")
        elif not nickname_allowed(nick):
            self.problem.configure(text=NICK_RULES)
        else:
            self.result = {"host": host, "port": int(port), "tls": bool(self.tls.get()), "nick": nick,
                           "account": self.fields["account"].get().strip()}
            self.destroy()


def ask_connection(root: tk.Misc, values: dict) -> dict | None:
    dialog = ConnectDialog(root, values)
    root.wait_window(dialog)
    return dialog.result


def choose_connection(root: tk.Misc, host: str, port: int, tls: bool) -> dict | None:
    """The connect dialog, filled in from the last connection (else the command line's), and
    what it chose saved for the next time."""
    path = settings.settings_path()
    chosen = ask_connection(root, {"host": host, "port": port, "tls": tls, **settings.load(path)})
    if chosen is not None:
        settings.save(path, chosen)
    return chosen


def main(host: str, port: int, nick: str | None, channel: str, tls: bool, insecure: bool,
         login: tuple[str, str] | None = None) -> int:
    try:
        root = tk.Tk()
    except tk.TclError as exc:
        print(f"cannot open a window ({exc}); is a display available? Without one, run python -m client",
              flush=True)
        return 1
    if not nick:  # no nickname given: the connect dialog, with what was used last time
        root.withdraw()
        chosen = choose_connection(root, host, port, tls)
        if chosen is None:
            return 1
        host, port, tls, nick = chosen["host"], chosen["port"], chosen["tls"], chosen["nick"]
        if chosen["account"] and login is None:
            secret = simpledialog.askstring("hubchat", f"Password for {chosen['account']}:", show="*", parent=root)
            if secret:
                login = (chosen["account"], secret)
        root.deiconify()
    ChatWindow(root, host, port, nick, channel, tls, insecure, login)
    root.mainloop()
    return 0
