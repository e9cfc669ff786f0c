"""The terminal client's input line, driven through prompt_toolkit with pipe input and no terminal."""
import asyncio

from prompt_toolkit import PromptSession
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from client.core import ChatCore
from client.tui import ChatCompleter
from ircproto.message import parse

TAB, UP, ENTER = "\t", "\x1b[A", "\r"


def core_with(*nicks):
    core = ChatCore("me")
    for line in [":srv 001 me :hi", ":me!u@h JOIN #lobby", f":srv 353 me = #lobby :me {' '.join(nicks)}",
                 ":srv 366 me #lobby :end"]:
        core.handle_message(parse(line.encode()))
    return core


def typed(prompts: list[list[tuple[str, str | None]]], core: ChatCore) -> list[str]:
    """For each prompt in turn: type each step's keys, then wait until the line reads as expected
    (None for the last step, which submits). Returns what each prompt returned."""
    async def main():
        with create_pipe_input() as pipe:
            session = PromptSession(input=pipe, output=DummyOutput(), history=InMemoryHistory(),
                                    completer=ChatCompleter(core), complete_while_typing=False)

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
