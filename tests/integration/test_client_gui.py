"""The Tk window, for real, on a virtual X display (Xvfb), against the real server."""
import gc
import os
import socket
import subprocess
import time

import pytest

from tests.integration.harness import ROOT, Server, require_program

OUTPUT = ROOT / "test-output"


@pytest.fixture(scope="module")
def display():
    require_program("Xvfb", "xvfb")
    read_end, write_end = os.pipe()
    OUTPUT.mkdir(exist_ok=True)
    log = open(OUTPUT / "xvfb.log", "w")
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-screen", "0", "960x600x24", "-nolisten", "tcp"],
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
        pump_until(root, lambda: sorted(win.people.get(0, "end")) == ["peer", "windowed"], "the member list")

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
