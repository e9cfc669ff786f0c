"""What a session and its command handlers may see of the worker they run in.

Handlers and replies are written against `ServerView`, never against `Worker`: the settings,
the server's name, the replica `State`, and the few services of the worker a command needs
(a batch reference, another local client's idle time, waiting for another worker's answer
to a WHOIS, a blocking check on a thread, a rehash). `Session` needs two more, the command
table, which lives above it (`workers.session.SessionServer`). `Worker` provides all of it;
the tests of `Session` provide a small fake.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from chatstate.state import State
    from config import Config


class ServerView(Protocol):
    config: "Config"
    server_name: str
    started_at: float  # wall clock, for 003
    state: "State"  # the replica; replaced when a new hub sends its view, so read it each time
    welcome_cache: tuple | None  # replies.welcome's rendered templates, with the config they were made from

    def next_batch_ref(self) -> str: ...

    def next_msgid(self) -> str: ...

    def idle_seconds(self, cid: int) -> int | None:
        """Seconds since a local client last spoke; None when the client is not on this worker."""

    def expect_idle(self, asker: int, target: int, nick: str) -> None:
        """WHOIS asked another worker for `target`'s idle time: answer `asker` when it tells
        (queries.whois_answered), or without the idle line after a while."""

    def run_blocking(self, then: Callable[[Any], None], fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on a thread; call `then(result)` back on the loop."""

    def rehash(self) -> None:
        """Reload the configuration everywhere, as SIGHUP does."""

