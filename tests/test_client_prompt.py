"""The terminal client's input line, driven through prompt_toolkit with pipe input and no terminal."""
import asyncio

from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from client.core import ChatCore, Event
from client.tui import STYLE, ChatCompleter, formatted, history_keys
from ircproto.message import parse

TAB, UP, ENTER, PAGE_UP = "\t", "\x1b[A", "\r", "\x1b[5~"


def core_with(*nicks):
    core = ChatCore("me")
    for line in [":srv 001 me :hi", ":me!u@h JOIN #lobby", f":srv 353 me = #lobby :me {' '.join(nicks)}",
                 ":srv 366 me #lobby :end"]:
        core.handle_message(parse(line.encode()))
    return core


def typed(prompts: list[list[tuple[str, str | None]]], core: ChatCore, key_bindings=None) -> list[str]:
    """For each prompt in turn: type each step's keys, then wait until the line reads as expected
    (None for the last step, which submits). Returns what each prompt returned."""
    async def main():
        with create_pipe_input() as pipe:
            session = PromptSession(input=pipe, output=DummyOutput(), history=InMemoryHistory(),
                                    completer=ChatCompleter(core), complete_while_typing=False,
                                    key_bindings=key_bindings)

            async def until(condition):
                for _ in range(5000):  # a bounded wait on the app's own state
                    if condition():
                        return
                    await asyncio.sleep(0.001)
                raise AssertionError(f"input line stuck at {session.default_buffer.text!r}")

            async def type_steps(steps):
                for keys, expect in steps:
                    pipe.send_text(keys)
                    if expect is not None:
                        await until(lambda: session.default_buffer.text == expect)

            results = []
            for steps in prompts:
                started = asyncio.Event()
                answer = asyncio.create_task(session.prompt_async("> ", pre_run=started.set))
                await asyncio.wait_for(started.wait(), 5)
                await type_steps(steps)
                results.append(await asyncio.wait_for(answer, 5))
            return results
    return asyncio.run(main())


def test_tab_completes_a_command():
    assert typed([[("/jo", "/jo"), (TAB, "/join "), ("#dev" + ENTER, None)]], core_with()) == ["/join #dev"]


def test_tab_completes_a_nick_at_the_start_with_a_colon():
    assert typed([[("bo", "bo"), (TAB, "bob: "), ("hi" + ENTER, None)]], core_with("bob", "alice")) == ["bob: hi"]


def test_tab_completes_a_nick_mid_line():
    steps = [("hi al", "hi al"), (TAB, "hi alice "), (ENTER, None)]
    assert typed([steps], core_with("bob", "alice")) == ["hi alice "]


def test_up_walks_the_history():
    prompts = [[("first line" + ENTER, None)], [(UP, "first line"), (ENTER, None)]]
    assert typed(prompts, core_with()) == ["first line", "first line"]


def test_page_up_asks_for_earlier_messages_and_leaves_the_line_alone():
    pressed = []
    steps = [("half", "half"), (PAGE_UP, None), (" done" + ENTER, None)]
    assert typed([steps], core_with(), history_keys(lambda: pressed.append(1))) == ["half done"]
    assert pressed == [1]


def styles(event):
    return [style for style, _ in formatted(event, "me", multi=True)]


def test_history_is_grey_and_live_lines_are_not():
    live = Event("message", "hi", "#lobby", "bob")
    old = Event("message", "hi", "#lobby", "bob", history="latest")
    separator = Event("separator", "\u2014 earlier messages \u2014", "#lobby", history="latest")
    assert "class:history" not in styles(live) and any(s.startswith("class:nick") for s in styles(live))
    assert set(styles(old)) <= {"class:history", "class:history bold"}
    assert styles(separator)[-1] == "class:separator"
    grey = STYLE.get_attrs_for_style_str("class:history bold")
    assert grey.color == "ansibrightblack" and grey.bold
    assert STYLE.get_attrs_for_style_str("class:separator").italic
