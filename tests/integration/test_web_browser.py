"""The bundled web client in a real browser: Debian's chromium, headless, driven by Selenium
through chromedriver, against the real server's web port.

The page comes from an invitation link (`/?nick=webby&channel=%23room`), so no prompt: it
connects over WebSocket, joins, and shows what was said before it came. A plain TCP client,
proved with psutil to be held by a different worker than the browser's WebSocket, then talks
with it both ways, in the room and privately. Every wait is on an event (a DOM condition the
page reaches, a line read from a socket) with a bound; the test bounds its own time.
"""
from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from tests.integration.harness import (
    ROOT, Server, client_on_worker, registered, require_program, wait_for, worker_pid_holding,
)

pytestmark = pytest.mark.timeout(150)

SCREENSHOT = ROOT / "test-output" / "web.png"  # copied to docs/web.png by hand when the page changes
WAIT = 20.0  # seconds for the page to reach a state; a cold Chromium on a busy machine is slow
CHROMIUM_FLAGS = (
    # The machine's network is closed: without the background-networking flags Chromium keeps
    # trying Google's services and its own connections are refused.
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--window-size=1280,800",
)


@pytest.fixture
def browser(tmp_path):
    require_program("chromium", "chromium")
    require_program("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else "chromium"
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")  # fresh: no state from another run
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(_which("chromedriver")), options=options)
    driver.set_page_load_timeout(WAIT)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _which(program: str) -> str:
    import shutil
    return shutil.which(program) or program


def wait_until(driver, condition, what: str):
    """Wait for a state of the page, saying on failure what was on screen and in the console."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.05).until(lambda d: condition(d))
    except TimeoutException:
        lines = driver.execute_script("return document.getElementById('lines')?.innerText ?? ''")
        console = [entry["message"] for entry in driver.get_log("browser")]
        raise AssertionError(f"the page did not show {what} within {WAIT}s;\non screen:\n{lines[-2000:]}\n"
                             f"console: {console[-20:]}") from None


# The page's lines and lists, read in one script: the renderer replaces elements as lines
# arrive, so a read through element handles could meet a stale one.
LINES = """return [...document.querySelectorAll('#lines .line')].map(li => ({
    text: li.querySelector('.text')?.textContent ?? '', nick: li.querySelector('.nick')?.textContent ?? '',
    history: li.classList.contains('history'), own: li.classList.contains('own'),
    pending: li.classList.contains('pending'), time: li.querySelector('time').dateTime}))"""
MEMBERS = "return [...document.querySelectorAll('#member-list .member')].map(li => li.textContent.replace(/\\s+/g, ''))"
CONVERSATIONS = """return [...document.querySelectorAll('#conversations .conversation')].map(li => ({
    key: li.dataset.key, text: li.querySelector('.name').textContent,
    badge: li.querySelector('.badge')?.textContent ?? '', current: li.classList.contains('current')}))"""


def line_with(driver, text: str, **fields):
    for line in driver.execute_script(LINES):
        if line["text"] == text and all(line[k] == v for k, v in fields.items()):
            return line
    return None


def click(driver, css: str, what: str) -> None:
    """A real click on an element; the sidebar is redrawn as lines arrive, so one found just
    before may be replaced by the time of the click: find it again then."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def attempt(d):
        try:
            d.find_element(By.CSS_SELECTOR, css).click()
            return True
        except StaleElementReferenceException:
            return False

    wait_until(driver, attempt, what)


def send_from_page(driver, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.ID, "input").send_keys(text + Keys.ENTER)


def browser_connections(server: Server) -> list[int]:
    """The local ports of the established connections to the web port: only the browser makes any."""
    return [c.laddr.port for c in psutil.net_connections("tcp")
            if c.raddr and c.raddr.port == server.web_port and c.status == psutil.CONN_ESTABLISHED]


def test_the_web_client_joins_talks_across_workers_and_opens_a_private_conversation(browser, tmp_path):
    from selenium.webdriver.common.by import By

    # Idle HTTP connections close after a second, so that what the browser keeps open is its WebSocket.
    config = tmp_path / "web.toml"
    config.write_text("[web]\nrequest_timeout = 1\n")
    server = Server(3, "--config", str(config))
    try:
        early, = registered(server, "early")
        early.send("JOIN #room")
        early.expect("366", "early", "#room")
        early.sync("PRIVMSG #room :good morning, room: said before the page came")
        said_before = time.time()

        browser.get(f"http://127.0.0.1:{server.web_port}/?nick=webby&channel=%23room")

        # History on join: the line said before the page came, with its original time, set apart.
        history = wait_until(browser, lambda d: line_with(d, "good morning, room: said before the page came", history=True),
                             "the room's history")
        assert datetime.fromisoformat(history["time"].replace("Z", "+00:00")).timestamp() <= said_before + 0.5
        assert history["nick"] == "early"
        wait_until(browser, lambda d: "webby" in d.execute_script(MEMBERS), "webby among the members")
        assert browser.find_element(By.ID, "conv-name").text == "#room"

        # The browser's WebSocket, alone once its idle page loads are closed, and the worker holding it.
        ports = wait_for(lambda: (lambda p: p if len(p) == 1 else None)(browser_connections(server)),
                         WAIT, "the browser to hold only its WebSocket")
        ws_worker = worker_pid_holding(server, ports[0])
        other = next(pid for pid in server.current_workers() if pid != ws_worker)
        tcp = client_on_worker(server, other)
        assert tcp.worker_pid != ws_worker
        tcp.register("tcpbob")
        tcp.send("JOIN #room")
        tcp.expect("366", "tcpbob", "#room")
        wait_until(browser, lambda d: "tcpbob" in d.execute_script(MEMBERS), "tcpbob joining")
        assert "@early" in browser.execute_script(MEMBERS), "the room's first member is its operator"

        # The page to the TCP client on another worker...
        send_from_page(browser, "hello from the browser")
        heard = tcp.expect("PRIVMSG", "#room", where=lambda m: m.params[1] == "hello from the browser")
        assert heard.source.startswith("webby!")
        wait_until(browser, lambda d: line_with(d, "hello from the browser", own=True, pending=False),
                   "its own line confirmed by the server's echo")

        # ...and back.
        tcp.send("PRIVMSG #room :hello from a terminal")
        wait_until(browser, lambda d: line_with(d, "hello from a terminal", nick="tcpbob", history=False),
                   "the TCP client's line")

        # A private conversation: it appears in the list with a mention count, opens, and replies.
        tcp.send("PRIVMSG webby :psst, webby")
        query = wait_until(browser, lambda d: next((c for c in d.execute_script(CONVERSATIONS)
                                                    if c["key"] == "tcpbob" and c["badge"] == "1"), None),
                           "the private conversation in the list, with one mention")
        assert not query["current"]
        click(browser, '#conversations button[data-key="tcpbob"]', "the private conversation to click")
        wait_until(browser, lambda d: d.find_element(By.ID, "conv-name").text == "tcpbob"
                   and line_with(d, "psst, webby", nick="tcpbob"), "the private conversation opened")
        send_from_page(browser, "hi tcpbob, only you can read this")
        private = tcp.expect("PRIVMSG", "tcpbob")
        assert private.params[1] == "hi tcpbob, only you can read this" and private.source.startswith("webby!")
        assert not [m for m in early.received if m.command == "PRIVMSG" and "only you" in m.params[-1]]

        # The screenshot for the README: the room, with its history, the talk and the members.
        tcp.send("PRIVMSG #room :welcome, webby! the page keeps up with the terminal fine")
        click(browser, '#conversations button[data-key="#room"]', "the room to click")
        wait_until(browser, lambda d: line_with(d, "welcome, webby! the page keeps up with the terminal fine"),
                   "the room again")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
        errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, f"the page logged errors: {errors}"
    finally:
        server.stop()
