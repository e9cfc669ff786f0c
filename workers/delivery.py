"""Relayed messages, the hot path: a channel's run of messages, private messages, echoes,
WALLOPS and REDACT, written to the local recipients in hub order, each tagged variant rendered once.

A replay after a hub restart may bring a message again; each is delivered once (the worker's
`delivered_ids`).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from chatstate.state import has_status
from ipc import link
from ircproto.caps import MESSAGE_REDACTION
from ircproto.modes import STATUS_RANK
from workers.session import CLOSED, NO_OUTPUT, TAG_ACCOUNT, TAG_MSGID, TAG_TIME

if TYPE_CHECKING:
    from workers.item_target import HubItemTarget
    from workers.session import Session


def _iso(ts: float) -> str:
    ms = round(ts * 1000)  # to the nearest millisecond: monotonic, so stamps in hub order never go backwards
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def tagged(line: bytes, mode: int, msgid: str, ts: float, client_tags: str, account: str = "") -> bytes:
    """The line as a client with this tag mode sees it (`account`: the sender's, for account-tag)."""
    tags = []
    if mode & TAG_ACCOUNT and account:
        tags.append("account=" + account)
    if mode & TAG_TIME:
        tags.append("time=" + _iso(ts))
    if mode & TAG_MSGID:
        tags.append("msgid=" + msgid)
        if client_tags:
            tags.append(client_tags)
    return ("@" + ";".join(tags) + " ").encode() + line if tags else line


def _deliver(s: "Session", variants: list, line: bytes, msgid: str, ts: float, flags: int, tags: str,
             own: bool = False, account: str = "") -> int:
    """1 when the message was written (for the deliveries count), 0 when this client does not get it."""
    mode = s.tag_mode
    if flags & link.MSG_TAGMSG and not mode & TAG_MSGID:
        return 0  # TAGMSG is only for clients with message-tags (server-time alone does not carry tags)
    if mode:
        data = variants[mode]
        if data is None:
            data = variants[mode] = tagged(line, mode, msgid, ts, tags, account)
    else:
        data = line
    if own:
        s.reply(data)
    else:
        s.write(data)
    return 1


def deliver_channel_run(w: "HubItemTarget", key: str, run: list[tuple]) -> None:
    """Deliver consecutive messages of one channel (from one hub frame) to the local members.

    This is the hot path. A plain member (no tags, no label) gets the run as one joined blob
    appended to its output: one step per member per run instead of one per member per message.
    A member who sent some of the lines gets them joined without its own (unless it has
    echo-message); members with tags or an open label get each message in turn. The run holds
    only consecutive items, so every client still sees exactly the hub's order."""
    chan = w.state.channels.get(key)
    if chan is None:
        if key[:1] in STATUS_RANK:
            deliver_status_run(w, key, run)
        return
    ids = [item[4] for item in run]
    fresh = w.delivered_ids.add_new(ids)
    if fresh is not ids:  # a hub restart replayed some of these: keep each first copy
        wanted = set(fresh)
        kept = []
        for item in run:
            if item[4] in wanted:
                wanted.discard(item[4])
                kept.append(item)
        if not kept:
            return
        run = kept
    senders = {item[2] for item in run}
    in_blob = [item[3] for item in run if not item[6] & link.MSG_TAGMSG]
    blob = b"".join(in_blob)
    plain = delivered = 0  # members given the blob; other deliveries
    sessions = w.sessions
    unflushed = w.unflushed()
    one_by_one = []
    for cid in chan.by_wid.get(w.wid, ()):
        s = sessions.get(cid)
        if s is None or s.phase is CLOSED:
            continue
        if s.tag_mode or s.label is not None:
            one_by_one.append(s)
        elif cid in senders:  # the run without its own lines, unless it asked for their echo
            lines = b"".join([item[3] for item in run if (item[2] != cid or item[6] & link.MSG_ECHO)
                             and not item[6] & link.MSG_TAGMSG])
            if lines:
                s.write(lines)
                delivered += lines.count(b"\n")
        elif blob:  # Session.write, inlined: this loop runs once per member per run (not CLOSED: above)
            plain += 1
            if s.outbuf is NO_OUTPUT:
                unflushed.append(s)
                s.outbuf = [blob]
            else:
                s.outbuf.append(blob)
    w.deliveries += plain * len(in_blob) + delivered
    if not one_by_one:
        return
    delivered = 0
    users = w.state.users
    for _, _, sender, line, msgid, ts, flags, tags in run:
        variants = [line, None, None, None, None, None, None, None]  # each tagged form rendered once per message
        user = users.get(sender)
        account = user.account if user is not None else ""
        for s in one_by_one:
            if s.cid != sender:
                delivered += _deliver(s, variants, line, msgid, ts, flags, tags, account=account)
            elif flags & link.MSG_ECHO:
                delivered += _deliver(s, variants, line, msgid, ts, flags, tags, own=True, account=account)
    w.deliveries += delivered


def deliver_status_run(w: "HubItemTarget", key: str, run: list[tuple]) -> None:
    """STATUSMSG: messages to '@#chan' (the hub routes them under that key) reach the local
    members with at least that status, and the sender's echo if it asked for one. They are rare,
    so they go one by one and cost the plain path nothing."""
    chan = w.state.channels.get(key[1:])
    if chan is None:
        return
    to_status = key[0]
    members = chan.members
    for _, _, sender, line, msgid, ts, flags, tags in run:
        if not w.first_delivery(msgid):
            continue
        variants = [line, None, None, None, None, None, None, None]
        for cid in chan.by_wid.get(w.wid, ()):
            s = w.sessions.get(cid)
            if s is None or s.phase is CLOSED:
                continue
            if cid == sender:
                if flags & link.MSG_ECHO:
                    _deliver(s, variants, line, msgid, ts, flags, tags, own=True)
            elif has_status(members[cid], to_status):
                _deliver(s, variants, line, msgid, ts, flags, tags)


def on_user_message(w: "HubItemTarget", target: int, sender: int, line: bytes, msgid: str, ts: float,
                    flags: int, tags: str) -> None:
    w.hub_time = ts
    s = w.sessions.get(target)
    if s is not None and w.first_delivery(msgid):
        user = w.state.users.get(sender)
        w.deliveries += _deliver(s, [line, None, None, None, None, None, None, None], line, msgid, ts, flags, tags,
                 account=user.account if user is not None else "")


def on_echo(w: "HubItemTarget", sender: int, line: bytes, msgid: str, ts: float, flags: int, tags: str) -> None:
    w.hub_time = ts
    s = w.sessions.get(sender)
    if s is not None and w.first_delivery(msgid + ".echo"):
        user = w.state.users.get(sender)
        _deliver(s, [line, None, None, None, None, None, None, None], line, msgid, ts, flags, tags, own=True,
                 account=user.account if user is not None else "")


def on_redact(w: "HubItemTarget", key: str, sender: int, line: bytes, msgid: str, ts: float,
              peers: tuple[int, ...]) -> None:
    """draft/message-redaction: the REDACT reaches the local members of the channel (a private
    message's: its sender and the other party) that have the capability, the sender too (it is
    what answers its REDACT); the others are sent nothing."""
    w.hub_time = ts
    if not w.first_delivery(msgid):
        return
    if key:
        chan = w.state.channels.get(key)
        if chan is None:
            return
        cids = chan.by_wid.get(w.wid, ())
    else:
        cids = dict.fromkeys((sender, *peers))
    variants = [line, None, None, None, None, None, None, None]
    for cid in cids:
        s = w.sessions.get(cid)
        if s is not None and s.phase is not CLOSED and MESSAGE_REDACTION in s.caps:
            _deliver(s, variants, line, msgid, ts, 0, "", own=cid == sender)


def on_wallops(w: "HubItemTarget", line: bytes) -> None:
    users = w.state.users
    for cid, s in w.sessions.items():
        user = users.get(cid)
        if user is not None and "w" in user.modes:
            s.write(line)


