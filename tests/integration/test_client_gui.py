"""The Tk window, for real, on a virtual X display (Xvfb), against the real server (and, for
server-side history, against the scripted server of test_client_terminal)."""
import gc
import os
import socket
import subprocess
import time

import pytest

from client.history import format_server_time, parse_server_time
from tests.integration.harness import ROOT, Server, require_program
from tests.integration.test_client_terminal import ScriptedServer

OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="module")
def display():
    require_program("Xvfb", "xvfb")
    read_end, write_end = os.pipe()
    OUTPUT.mkdir(exist_ok=True)
    log = open(OUTPUT / "xvfb.log", "w")
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
                            pass_fds=(write_end,), stderr=log)
    os.close(write_end)
    announced = b""
    while not announced.endswith(b"\n"):  # Xvfb writes the number and the newline separately, and
        chunk = os.read(read_end, 64)     # exits if the pipe is closed between the two
        if not chunk:
            break
        announced += chunk
    os.close(read_end)
    number = announced.decode().strip()
    wait_for_display(xvfb, number)
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = f":{number}"
    yield f":{number}"
    xvfb.terminate()
    xvfb.wait(10)
    log.close()
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old


@pytest.fixture(autouse=True)
def collect_tk_garbage_on_this_thread():
    """Tk objects must die on the Tk thread: a window's reference cycles are collected here,
    not later by whichever thread next triggers the garbage collector (Tcl would abort)."""
    yield
    gc.collect()


def wait_for_display(xvfb, number):
    """Make sure the display accepts connections, and say so plainly if Xvfb died instead
    (its messages are in test-output/xvfb.log)."""
    path = f"/tmp/.X11-unix/X{number}"
    deadline = time.monotonic() + 10
    while True:
        if xvfb.poll() is not None:
            pytest.fail(f"Xvfb exited (code {xvfb.returncode}) before display :{number} was usable")
        try:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(path)
            return
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"display :{number} never accepted a connection")
            time.sleep(0.02)


def pump_until(root, condition, what, timeout=10.0):
    """Run the Tk loop until the window shows what we wait for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the window never showed {what}")
        root.update()
        time.sleep(0.005)


def conversations(win):
    return [win.conv_list.get(i) for i in range(win.conv_list.size())]


def view_text(win):
    return win.view.get("1.0", "end")


def type_into(win, text):
    win.entry.delete(0, "end")
    win.entry.insert(0, text)
    win.entry.event_generate("<Return>")


def test_gui_connects_sends_receives_and_switches_conversations(display):
    import tkinter as tk

    from client.gui import KEEP_LINES, ChatWindow
    server = Server(2)
    root = None
    try:
        root = tk.Tk()
        peer = server.connect()
        peer.register("peer")
        peer.send("JOIN #lobby")
        peer.expect("366")
        win = ChatWindow(root, "127.0.0.1", server.port, "windowed", "#lobby")
        pump_until(root, lambda: win.shown == "#lobby", "#lobby")
        peer.expect("JOIN", "#lobby", where=lambda m: m.source.startswith("windowed!"))
        pump_until(root, lambda: list(win.people.get(0, "end")) == ["@peer", "windowed"], "the member list")

        type_into(win, "hello from the window")
        assert peer.expect("PRIVMSG").params == ["#lobby", "hello from the window"]
        peer.send("PRIVMSG #lobby :hello, window")
        pump_until(root, lambda: "<peer> hello, window" in view_text(win), "the peer's message")
        assert view_text(win).count("hello from the window") == 1

        peer.send("PRIVMSG windowed :a private word")
        pump_until(root, lambda: "peer  (1)" in conversations(win), "an unread private conversation")
        assert "a private word" not in view_text(win)
        index = conversations(win).index("peer  (1)")
        win.conv_list.selection_clear(0, "end")
        win.conv_list.selection_set(index)
        win.conv_list.event_generate("<<ListboxSelect>>")
        pump_until(root, lambda: "a private word" in view_text(win), "the private conversation")
        assert "peer" in conversations(win)  # read: no count any more
        pump_until(root, lambda: win.core.current == "peer", "the switch to reach the network side")
        type_into(win, "a private answer")
        assert peer.expect("PRIVMSG").params == ["peer", "a private answer"]

        win.show("#lobby")
        type_into(win, "/me looks around")
        assert peer.expect("PRIVMSG").params == ["#lobby", "\x01ACTION looks around\x01"]
        pump_until(root, lambda: "* windowed looks around" in view_text(win), "our own action")
        assert "peer" in conversations(win)  # our own answer is never "unread"

        flood = 3000
        peer.send(b"".join(f"PRIVMSG #lobby :flood {i}\r\n".encode() for i in range(flood)))
        pump_until(root, lambda: f"flood {flood - 1}" in view_text(win), "the end of a flood", timeout=60)
        assert len(win.buffers["#lobby"]) == KEEP_LINES  # bounded, however much arrives
        assert int(win.view.index("end-1c").split(".")[0]) <= KEEP_LINES + 1

        peer.send("PRIVMSG #lobby :the last word")
        pump_until(root, lambda: "the last word" in view_text(win), "the last word")
        OUTPUT.mkdir(exist_ok=True)
        from PIL import ImageGrab
        ImageGrab.grab(xdisplay=display).save(OUTPUT / "gui.png")
        win.close()
        peer.expect("QUIT", where=lambda m: m.source.startswith("windowed!"))
        assert not win.net.thread.is_alive()
    finally:
        try:
            if root is not None:
                root.destroy()
        except tk.TclError:
            pass
        server.stop()


def test_nickname_dialog_refuses_a_bad_name_and_returns_a_good_one(display):
    import tkinter as tk

    from client.gui import ask_nickname
    root = tk.Tk()
    answers = iter(["9lives", "goodname"])
    prompts = []

    def answer_dialog():
        dialogs = [w for w in root.winfo_children() if isinstance(w, tk.Toplevel)]
        if not dialogs:
            root.after(20, answer_dialog)  # the dialog is not up yet
            return
        widgets, ok = dialogs[0].winfo_children(), None
        while widgets:
            widget = widgets.pop()
            widgets.extend(widget.winfo_children())
            if isinstance(widget, tk.Label):
                prompts.append(widget.cget("text"))
            elif isinstance(widget, tk.Entry):
                widget.insert(0, next(answers))
            elif isinstance(widget, tk.Button) and widget.cget("text") == "OK":
                ok = widget
        ok.invoke()
        root.after(20, answer_dialog)  # the next dialog, if any

    try:
        root.after(20, answer_dialog)
        assert ask_nickname(root, "That nickname is taken.") == "goodname"
        assert any("That nickname is taken." in p for p in prompts)
        assert any("don't start with a digit" in p for p in prompts)
    finally:
        root.destroy()


def test_connect_dialog_checks_its_fields_and_the_window_remembers_them(display, tmp_path, monkeypatch):
    import tkinter as tk

    from client import gui, settings
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    path = settings.settings_path()
    settings.save(path, {"host": "10.9.8.7", "port": 7000, "nick": "lasttime"})
    root = tk.Tk()
    seen = {}

    def fill():
        dialogs = [w for w in root.winfo_children() if isinstance(w, gui.ConnectDialog)]
        if not dialogs:
            root.after(20, fill)
            return
        dialog = dialogs[0]
        seen.update({k: v.get() for k, v in dialog.fields.items()})
        dialog.fields["port"].set("99999")
        dialog.ok()  # refused: the dialog stays, and says why
        seen["problem"] = dialog.problem.cget("text")
        dialog.fields["host"].set("127.0.0.1")
        dialog.fields["port"].set("6697")
        dialog.fields["nick"].set("dialogged")
        dialog.tls.set(True)
        dialog.ok()

    try:
        root.after(20, fill)
        chosen = gui.choose_connection(root, "127.0.0.1", 6667, False)
        assert seen["host"] == "10.9.8.7" and seen["port"] == "7000" and seen["nick"] == "lasttime"
        assert "1 to 65535" in seen["problem"]
        assert chosen == {"host": "127.0.0.1", "port": 6697, "tls": True, "nick": "dialogged", "account": ""}
        assert settings.load(path) == chosen  # remembered for the next start
    finally:
        root.destroy()


def test_gui_history_pages_back_lists_private_conversations_and_searches(display):
    import tkinter as tk

    from client.core import Event
    from client.gui import SEARCH_VIEW, ChatWindow
    from client.history import END_EARLIER, EARLIER, NO_EARLIER, NOW
    from client.render import day_label
    now = time.time()
    lobby = [(now - 3 * 86400 + 60 * i, f"m{i}", "carol", f"old line {i}") for i in range(200)]
    lobby.append((now - 1, "m200", "bob", "live while joining"))  # stored, and relayed live at the join
    live = f"@time={format_server_time(now - 1)};msgid=m200 :bob!u@fake PRIVMSG #lobby :live while joining"
    srv = ScriptedServer(history={"#lobby": lobby, "erin": [(now - 7200, "e1", "erin", "hello from erin")]},
                         targets=[("erin", now - 7200)], chathistory_max=50,
                         results=[(now - 3 * 86400, "s1", "dave", "#dev", "deploy on friday")],
                         after_join=lambda room: [live] if room == "#lobby" else [])
    root = tk.Tk()
    try:
        win = ChatWindow(root, "127.0.0.1", srv.port, "windowed", "#lobby")
        pump_until(root, lambda: NOW in view_text(win) and "live while joining" in view_text(win), "the history")
        text = view_text(win)
        order = [text.index(t) for t in (EARLIER, "old line 151", "old line 199", NOW, "live while joining")]
        assert order == sorted(order) and text.count("live while joining") == 1 and "old line 150" not in text
        assert "history" in win.view.tag_names(win.view.search("old line 170", "1.0"))  # grey
        assert "history" not in win.view.tag_names(win.view.search("live while joining", "1.0"))
        pump_until(root, lambda: "erin" in conversations(win), "the recent private conversation")

        # Scrolled to the top: the page before comes in above, and the view stays on what it showed.
        win.view.yview_moveto(0)
        root.update()
        win.view.event_generate("<Button-4>")
        pump_until(root, lambda: "old line 101" in view_text(win), "the earlier page")
        assert srv.sent("CHATHISTORY BEFORE") == [
            f"CHATHISTORY BEFORE #lobby timestamp={format_server_time(lobby[151][0])} 50"]
        text = view_text(win)
        assert text.count(EARLIER) == 1 and END_EARLIER not in text
        order = [text.index(t) for t in (EARLIER, "old line 101", "old line 150", "old line 151", NOW)]
        assert order == sorted(order)
        root.update()
        assert win.view.bbox(win.view.search("old line 151", "1.0")) is not None  # still in sight
        assert win.view.bbox(win.view.search("old line 110", "1.0")) is None  # above it, to scroll to
        for asked in range(2, 6):  # 51-100, 1-50, 0, then nothing
            win.view.yview_moveto(0)
            root.update()
            win.view.event_generate("<Button-4>")
            pump_until(root, lambda: len(srv.sent("CHATHISTORY BEFORE")) == asked and "#lobby" not in win.loading,
                       f"earlier page {asked}")
        lines = view_text(win).splitlines()
        start = lines.index(NO_EARLIER)  # above the earliest line there is
        assert lines[start + 1] == EARLIER and lines[start + 3].endswith("<carol> old line 0")
        assert lines[start + 2] == day_label(lobby[0][0])  # the history's day, under today's join
        assert "#lobby" in win.history_done
        assert view_text(win).count("old line ") == 200 and len(srv.sent("CHATHISTORY BEFORE")) == 5
        win.view.yview_moveto(0)
        root.update()
        win.view.event_generate("<Button-4>")
        root.update()
        assert len(srv.sent("CHATHISTORY BEFORE")) == 5  # nothing more is asked for

        # History never counts as unread; live lines do.
        win._take_events([Event("message", "said long ago", "#elsewhere", "zed", history="latest")], None)
        assert win.unread.get("#elsewhere") is None
        win._take_events([Event("message", "said now", "#elsewhere", "zed")], None)
        assert win.unread.get("#elsewhere") == 1

        index = conversations(win).index("erin")
        win.conv_list.selection_clear(0, "end")
        win.conv_list.selection_set(index)
        win.conv_list.event_generate("<<ListboxSelect>>")
        pump_until(root, lambda: "hello from erin" in view_text(win), "the private conversation's history")
        assert srv.sent("CHATHISTORY LATEST erin") == ["CHATHISTORY LATEST erin * 50"]
        assert "history" in win.view.tag_names(win.view.search("hello from erin", "1.0"))

        win.show("#lobby")
        win.search_entry.insert(0, "deploy")
        win.search_entry.focus_force()  # key events go to the widget with the focus
        root.update()
        win.search_entry.event_generate("<Return>")
        pump_until(root, lambda: win.shown == SEARCH_VIEW and "end of search results" in view_text(win), "results")
        found = time.strftime("%Y-%m-%d %H:%M", time.localtime(now - 3 * 86400))
        assert f"{found} #dev <dave> deploy on friday" in view_text(win)
        assert srv.sent("SEARCH") == ["SEARCH text=deploy"]
        assert conversations(win)[-1] == SEARCH_VIEW
        OUTPUT.mkdir(exist_ok=True)
        from PIL import ImageGrab
        root.update()
        ImageGrab.grab(xdisplay=display).save(OUTPUT / "gui-search.png")
        win.show("#lobby")
        win.search_here.set(True)
        win.search("deploy")
        pump_until(root, lambda: len(srv.sent("SEARCH")) == 2, "the second search")
        assert srv.sent("SEARCH")[1] == "SEARCH text=deploy;in=#lobby"
        pump_until(root, lambda: win.shown == SEARCH_VIEW, "the second results")
        win.show("#lobby")
        root.update()
        ImageGrab.grab(xdisplay=display).save(OUTPUT / "gui-history.png")
        win.close()
    finally:
        try:
            root.destroy()
        except tk.TclError:
            pass
        srv.close()


def test_gui_people_list_mentions_links_and_themes(display, monkeypatch):
    """Prefixes and their order, away greyed, a mention marked and counted, a link opened by a
    click, and the theme switch, with a screenshot of each theme."""
    import tkinter as tk

    from client.gui import THEMES, ChatWindow
    monkeypatch.setenv("HUBCHAT_THEME", "light")
    server = Server(2)
    root = None
    try:
        root = tk.Tk()
        op = server.connect()
        op.register("opal")
        op.send("CAP REQ away-notify")
        op.send("JOIN #lobby")
        op.expect("366")
        voiced, idle = server.connect(), server.connect()
        voiced.register("vic")
        idle.register("Zed")
        for client in (voiced, idle):
            client.send("JOIN #lobby")
            client.expect("366")
        win = ChatWindow(root, "127.0.0.1", server.port, "windowed", "#lobby")
        pump_until(root, lambda: win.shown == "#lobby", "#lobby")
        op.expect("JOIN", "#lobby", where=lambda m: m.source.startswith("windowed!"))
        op.send("MODE #lobby +v vic")
        idle.send("AWAY :lunch")
        people = lambda: list(win.people.get(0, "end"))  # noqa: E731
        pump_until(root, lambda: people() == ["@opal", "+vic", "windowed", "Zed"], "prefixes in order")
        pump_until(root, lambda: win.people.itemcget(3, "foreground") == THEMES["light"]["away"], "Zed greyed")
        assert win.people.itemcget(0, "foreground") != THEMES["light"]["away"]

        win.submit("/join #side")
        pump_until(root, lambda: win.shown == "#side", "#side")
        op.send("PRIVMSG #lobby :WINDOWED: have a look at https://example.org/page.")
        pump_until(root, lambda: any(c.startswith("#lobby") and "@1" in c for c in conversations(win)),
                   "the mention marker in the conversation list")
        assert "1 mention" in root.title() and "1 unread" in root.title()
        win.show("#lobby")
        pump_until(root, lambda: "have a look" in view_text(win), "the mention")
        assert "@1" not in " ".join(conversations(win)) and "mention" not in root.title()
        start, end = win.view.tag_ranges("mention")[:2]
        assert win.view.get(start, end) == "WINDOWED"
        link = win.view.tag_ranges("link")[:2]
        assert win.view.get(*link) == "https://example.org/page"  # the full stop is not part of it

        opened = []
        win.open_link = opened.append
        root.update()
        x, y, w, h = win.view.bbox(f"{link[0]}+3c")
        # Text tag bindings follow the pointer's "current" position, which a motion sets
        win.view.event_generate("<Motion>", x=x + w // 2, y=y + h // 2)
        win.view.event_generate("<Button-1>", x=x + w // 2, y=y + h // 2)
        win.view.event_generate("<ButtonRelease-1>", x=x + w // 2, y=y + h // 2)
        pump_until(root, lambda: opened == ["https://example.org/page"], "the link opened")

        win.entry.focus_set()  # the click on the link took the keyboard to the text view
        root.update()
        type_into(win, "/theme")
        assert win.theme == "dark" and win.view.cget("background") == THEMES["dark"]["bg"]
        assert win.dark.get()  # the View menu's check follows
        win.view_menu.invoke(0)  # View > Dark theme, as a click does
        assert win.theme == "light" and not win.dark.get()
        assert win.view.cget("background") == THEMES["light"]["bg"]
        win.close()
        root = None
    finally:
        if root is not None:
            root.destroy()
        server.stop()


def screenshot(win, display, name):
    """The whole window (no window manager: it sits at the screen's corner, its menu above it),
    once it is sure that nothing at its bottom is cut off."""
    from PIL import ImageGrab
    root = win.root
    root.update()
    right, bottom = root.winfo_rootx() + root.winfo_width(), root.winfo_rooty() + root.winfo_height()
    assert bottom <= root.winfo_screenheight() and right <= root.winfo_screenwidth(), "the window is off screen"
    for widget in (win.status_bar, win.send_button, win.entry):
        assert widget.winfo_height() >= widget.winfo_reqheight(), f"{widget} is squeezed"
        assert widget.winfo_rooty() + widget.winfo_height() <= bottom, f"{widget} is cut off"
    ImageGrab.grab(bbox=(0, 0, right, bottom), xdisplay=display).save(OUTPUT / name)


def test_gui_formatting_day_separators_the_new_lines_marker_and_screenshots(display, monkeypatch):
    """IRC formatting drawn as tags, a day separator between yesterday's history and today's,
    the marker where the server's read marker says and then before what came while we looked
    elsewhere, MARKREAD sent; the screenshots of both themes (docs/gui-*.png) show all of it."""
    import tkinter as tk

    from client.gui import THEMES, ChatWindow
    from client.render import NEW_LINES, day_label
    monkeypatch.setenv("HUBCHAT_THEME", "light")
    now = time.time()
    midnight = time.mktime(time.localtime(now)[:3] + (0, 0, 0, 0, 0, -1))
    today = lambda share: midnight + (now - midnight) * share  # noqa: E731  (always before now)
    yesterday = midnight - 3 * 3600
    lobby = [(yesterday, "y1", "carol", "\x02bold\x02, \x1ditalic\x1d, \x1funderline\x1f, \x1estrike\x1e, "
                                       "\x11mono\x11 and \x16reverse\x16 (history is grey)"),
             (yesterday + 60, "y2", "Zed", "see you all tomorrow"),
             (today(0.5), "t1", "vic", "good morning"),
             (today(0.6), "t2", "opal", "the deploy is at noon")]
    srv = ScriptedServer(history={"#lobby": lobby}, chathistory_max=50, names="@opal +vic bob Zed",
                         caps=ScriptedServer.CAPS + " draft/read-marker multi-prefix away-notify",
                         markers={"#lobby": lobby[2][0]})
    colours = ("\x0304red\x03, \x0303green\x03, \x0302,08blue on yellow\x03, \x0352extended\x03 and "
               "\x04ff8800hex orange\x04")
    root = tk.Tk()
    try:
        win = ChatWindow(root, "127.0.0.1", srv.port, "windowed", "#lobby")
        win.entry.focus_force()
        pump_until(root, lambda: "the deploy is at noon" in view_text(win), "the history")
        lines = view_text(win).splitlines()
        at = {text: next(i for i, line in enumerate(lines) if text in line)
              for text in ("You joined", day_label(yesterday), "bold, italic", day_label(lobby[2][0]),
                           "good morning", NEW_LINES, "the deploy is at noon")}
        assert list(at.values()) == sorted(at.values()), lines
        assert at[NEW_LINES] == at["the deploy is at noon"] - 1  # the server had us read up to "good morning"
        assert at["good morning"] == at[day_label(lobby[2][0])] + 1
        bold = [t for t in win.view.tag_names(win.view.search("bold,", "1.0")) if t.startswith("fmt")]
        assert bold and "bold" in str(win.view.tag_cget(bold[0], "font"))
        assert "history" in win.view.tag_names(win.view.search("bold,", "1.0"))
        assert srv.sent("MARKREAD") and srv.sent("MARKREAD")[-1].startswith("MARKREAD #lobby timestamp=")

        srv.push(":Zed!u@fake AWAY :lunch", f":dave!u@fake PRIVMSG #lobby :{colours}")
        pump_until(root, lambda: "hex orange" in view_text(win), "the colours")
        red = win.view.search("red,", "1.0")
        fg = {win.view.tag_cget(t, "foreground") for t in win.view.tag_names(red) if t.startswith("fmt")}
        assert fg == {"#ff0000"} and "history" not in win.view.tag_names(red)
        on_yellow = [t for t in win.view.tag_names(win.view.search("blue on", "1.0")) if t.startswith("fmt")]
        assert win.view.tag_cget(on_yellow[0], "background") == "#ffff00"
        assert "\x03" not in view_text(win) and view_text(win).count(NEW_LINES) == 1

        win.submit("/join #side")
        pump_until(root, lambda: win.shown == "#side", "#side")
        # Tk draws CJK and an emoji (as boxes where no font has them) and the line after them.
        wide = "\u6f22\u5b57\u3068\u7d75\u6587\u5b57 \U0001f389 wide characters"
        srv.push(f":bob!u@fake PRIVMSG #side :{wide}", ":bob!u@fake PRIVMSG #side :and after them")
        pump_until(root, lambda: "and after them" in view_text(win), "the line after the wide one")
        assert f"<bob> {wide}\n" in view_text(win)
        srv.push(":opal!u@fake PRIVMSG #lobby :WINDOWED: the \x02notes\x02 are at https://example.org/page.",
                 ":vic!u@fake PRIVMSG #lobby :\x1dthanks\x1d")
        pump_until(root, lambda: any(c.startswith("#lobby  (2)") for c in conversations(win)), "two unread")
        win.show("#lobby")
        lines = view_text(win).splitlines()
        assert view_text(win).count(NEW_LINES) == 1  # it moved, to what came while we were away
        assert NEW_LINES in lines[next(i for i, line in enumerate(lines) if "are at https" in line) - 1]
        start, end = win.view.tag_ranges("mention")[-2:]
        assert win.view.get(start, end) == "WINDOWED"
        assert win.view.get(*win.view.tag_ranges("link")[-2:]) == "https://example.org/page"
        assert list(win.people.get(0, "end")) == ["@opal", "+vic", "bob", "windowed", "Zed"]
        pump_until(root, lambda: win.people.itemcget(4, "foreground") == THEMES["light"]["away"], "Zed greyed")
        pump_until(root, lambda: len(srv.sent("MARKREAD #lobby")) >= 2, "the read marker moved")
        assert parse_server_time(srv.sent("MARKREAD #lobby")[-1].split()[-1]) >= now

        screenshot(win, display, "gui-light.png")
        win.set_theme("dark")
        screenshot(win, display, "gui-dark.png")
        win.close()
    finally:
        try:
            root.destroy()
        except tk.TclError:
            pass
        srv.close()


def test_system_theme_follows_the_desktop():
    from client.gui import conversation_label, system_theme, title_text
    assert system_theme({"HUBCHAT_THEME": "dark"}, lambda: "") == "dark"
    assert system_theme({"GTK_THEME": "Adwaita:dark"}, lambda: "") == "dark"
    assert system_theme({}, lambda: "'prefer-dark'\n") == "dark"
    assert system_theme({}, lambda: "'default'\n") == "light" and system_theme({}, lambda: "") == "light"
    assert conversation_label("#a", 3, 1) == "#a  (3)  @1" and conversation_label("#a", 0, 0) == "#a"
    assert title_text("me", "not logged in", 2, 1) == "(1 mention, 2 unread) hubchat - me (not logged in)"


def test_gui_lines_that_come_while_the_window_has_no_focus_are_marked_when_it_gets_it_back(display):
    import tkinter as tk

    from client.gui import ChatWindow
    from client.render import NEW_LINES
    srv = ScriptedServer()
    root = tk.Tk()
    try:
        win = ChatWindow(root, "127.0.0.1", srv.port, "windowed", "#lobby")
        pump_until(root, lambda: win.shown == "#lobby", "#lobby")
        focused = [True]
        win._focused = lambda: focused[0]  # the focus itself belongs to the display's owner
        srv.push(":bob!u@fake PRIVMSG #lobby :seen as it came")
        pump_until(root, lambda: "seen as it came" in view_text(win), "the first line")
        focused[0] = False
        srv.push(":bob!u@fake PRIVMSG #lobby :said while we were elsewhere")
        pump_until(root, lambda: "said while" in view_text(win), "the second line")
        assert NEW_LINES not in view_text(win) and "1 unread" in root.title()
        focused[0] = True
        win._on_focus()
        lines = view_text(win).splitlines()
        assert NEW_LINES in lines[next(i for i, line in enumerate(lines) if "said while" in line) - 1]
        assert "unread" not in root.title() and view_text(win).count(NEW_LINES) == 1
        win.close()
    finally:
        try:
            root.destroy()
        except tk.TclError:
            pass
        srv.close()
