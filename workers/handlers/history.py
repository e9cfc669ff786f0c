"""IRCv3 history (draft/chathistory, draft/event-playback, soju.im/search): CHATHISTORY and
SEARCH, and the answer that renders their results.

The worker checks the syntax (ircproto/chathistory.py) and answers a bad command with its FAIL
at once; a good one becomes a query the hub answers (`R_HISTORY`): the hub decides what the
client may read and asks the store. The client's later lines wait for that answer
(`ask_hub`), so what they cause never overtakes the batch. The answer (`D_HISTORY`, or a
`D_FAIL` for the command) is rendered once for the client's capabilities, written in one
`write` (or, for a labelled command, taken as its one response: the label goes on the
batch's opening line), and the session carries on (`resume`).

The capability draft/chathistory is not needed to use the commands (as with ergo and soju: the
spec asks servers not to insist on the capabilities around it); draft/event-playback decides
whether events come back too, and is carried in the query.
"""
from __future__ import annotations

import logging

from ipc import link
from ircproto.caps import BATCH, EVENT_PLAYBACK, EXTENDED_JOIN, MESSAGE_TAGS, SERVER_TIME
from ircproto.casemap import is_channel_name
from ircproto.chathistory import (CHATHISTORY, MESSAGE_ERROR, SEARCH, TARGETS, Caps, Fail, parse_chathistory,
                                  parse_search, refusal, render)
from ircproto.message import Message
from workers.isupport import history_limit
from workers.session import Session

log = logging.getLogger("hubchat.history")
COMMANDS = (CHATHISTORY, SEARCH)  # the commands whose FAIL from the hub ends the wait for an answer


def chathistory(s: Session, msg: Message) -> None:
    """CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <ref> <limit>, BETWEEN <target> <ref> <ref>
    <limit>, TARGETS <timestamp> <timestamp> <limit>."""
    _ask(s, parse_chathistory(msg.params, EVENT_PLAYBACK in s.caps, history_limit(s.server.config)))


def search(s: Session, msg: Message) -> None:
    """SEARCH <attributes>: in=, from=, after=, before=, text=, limit=."""
    config = s.server.config
    if config.history.enabled and not config.history.search:
        _ask(s, Fail(SEARCH, MESSAGE_ERROR, ("SEARCH", "Search is off on this server")))
        return
    _ask(s, parse_search(msg.params, history_limit(config)))


def _ask(s: Session, query: tuple | Fail) -> None:
    if type(query) is Fail:
        s.send("FAIL", query.command, query.code, *query.params)
        return
    s.ask_hub((link.R_HISTORY, s.cid, query))


def answered(s: Session, query: tuple, rows: list | tuple) -> None:
    """The hub's answer to this session's query: write the batch, then carry on with the
    client's held lines. An answer nothing waits for (one replayed after a hub restart, whose
    first copy was already written) writes nothing."""
    if s.closed or not s.waiting:
        return
    caps = s.caps
    view = Caps(batch=BATCH in caps, server_time=SERVER_TIME in caps, message_tags=MESSAGE_TAGS in caps,
                extended_join=EXTENDED_JOIN in caps)
    server = s.server
    try:
        lines = render(query, rows, server.server_name, server.next_batch_ref(), view, _shown_name(s, query))
    except Exception:  # a bug, or rows not in the contract's shape: it costs this answer, never the wait
        log.exception("rendering the answer to %r for %s failed", query, s.display_nick)
        command, code, params = refusal(query, MESSAGE_ERROR)
        s.send("FAIL", command, code, *params)
        lines = []
    if lines:
        if view.batch or s.label is None or len(lines) == 1:
            s.reply(b"".join(lines))  # one batch: one write, or the labelled response's one line
        else:
            for line in lines:  # no batch to put the label on: the label's own batch holds the lines
                s.reply(line)
    s.resume()


def failed(s: Session) -> None:
    """The hub refused the query (its FAIL is written): carry on."""
    s.resume()


def _shown_name(s: Session, query: tuple) -> str | None:
    """The canonical name of the queried target for the batch line (the spec asks for it): a
    channel's or a user's own spelling when the replica knows it, else the name as queried."""
    if query[0] in (TARGETS, SEARCH):
        return None
    target = query[1]
    state = s.server.state
    if is_channel_name(target):
        chan = state.channel(target)
        return chan.name if chan is not None else target
    user = state.user_by_nick(target)
    return user.nick if user is not None else target
