"""The hub <-> worker link: batched frames over a multiprocessing pipe, never blocking.

Theory of operation
-------------------
Each worker is joined to the hub by one `multiprocessing.Pipe()` (a Unix socketpair). Frames
use the same encoding as `Connection.send_bytes`: a 4-byte big-endian length, then the payload,
so a plain `Connection` can talk to either end in tests. A payload is a pickled list of tuples
of built-in types (`(opcode, *args)`); pickling plain tuples is cheap and both ends run the
same code.

Neither end ever calls the blocking `Connection` methods from its event loop: `LinkProtocol`
wraps the fd in an asyncio transport, so writes are buffered by the loop and a full kernel
buffer can never stall or deadlock a process. Everything sent during one loop iteration is
collected and leaves as one frame at the start of the next iteration (`call_soon`), which is
where most of the link's throughput comes from. When the transport's buffer passes its high
water mark the owner is told (`on_pause`/`on_resume`) so it can stop producing.
"""
from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from typing import Callable

_LEN = struct.Struct("!i")

# Requests, worker -> hub.
R_HELLO = "hello"  # (snapshot of the worker's clients, with "hub_time": the latest message time it
#   saw from an earlier hub): first frame on every new link
R_CONNECT = "connect"  # (cid, ip): a connection was accepted; the hub may refuse it
R_REGISTER = "register"  # (cid, nick, user, host, realname, account_key): account_key is the account the hub
#   logged the connection in to before it registered (D_LOGIN), or ""
R_NICK = "nick"  # (cid, new_nick)
R_JOIN = "join"  # (cid, channel_name, key)
R_PART = "part"  # (cid, channel_name, reason)
R_QUIT = "quit"  # (cid, reason)
R_TOPIC = "topic"  # (cid, channel_name, text)
R_MODE = "mode"  # (cid, channel_name, ((sign, letter, arg), ...)): checked for syntax by the worker
R_UMODE = "umode"  # (cid, "+i-w"): user modes the client asked for
R_OPER = "oper"  # (cid,): the worker verified an OPER password
R_KICK = "kick"  # (cid, channel_name, nick, reason)
R_INVITE = "invite"  # (cid, nick, channel_name)
R_AWAY = "away"  # (cid, text)
R_SETNAME = "setname"  # (cid, realname)
R_CHGHOST = "chghost"  # (cid, nick, user, host): an operator changes someone's user@host
R_KILL = "kill"  # (cid, nick, reason)
R_WALLOPS = "wallops"  # (cid, line)
R_RENAME = "rename"  # (cid, channel_name, new_name, reason): checked for a valid new name by the worker
R_CHANMSG = "cmsg"  # (cid, channel_name, line, origin_id, flags, client_tags): the hub makes origin_id
#   the msgid (the same through a replay) and stamps the time
R_USERMSG = "umsg"  # (cid, nick, line, origin_id, flags, client_tags)
R_BARRIER = "barrier"  # (cid, token): answer D_BARRIER once everything before this request has been handled
R_FORWARD = "forward"  # (cid, item): pass item to the worker holding cid
R_REPLAY = "replay"  # (on,): the requests between (True,) and (False,) were sent to a hub that died
R_HISTORY = "history"  # (cid, query): a CHATHISTORY or SEARCH query (shapes in ircproto/chathistory.py);
#   the hub checks who may see it and asks the store
R_REDACT = "redact"  # (cid, target, msgid, line, origin_id): REDACT (draft/message-redaction); line is the
#   REDACT every recipient sees, origin_id its msgid; the hub asks the store who wrote msgid, then decides;
#   answered D_ANSWERED (after a refusal, or the REDACT's delivery)
R_MARKREAD = "markread"  # (cid, targets, time_us | None, joins | None): MARKREAD (draft/read-marker) sets
#   (time_us) or gets the client's marker of targets[0]; for a JOIN, joins is ((name, key), ...) and
#   targets their names: their markers are fetched first, and the worker sends the joins with the answer

R_LOGIN = "login"  # (cid, account_key, verified, address): the worker checked a SASL (or PASS) login's
#   credentials; the hub applies the throttle and logs the client in (or not): answered D_LOGIN
R_LOGIN_CHECK = "login check"  # (cid, account_key, address): a password is about to be checked (SASL PLAIN,
#   PASS, NickServ IDENTIFY); the throttle is asked before the worker spends a hash on it: answered
#   D_LOGIN_CHECK (go ahead, with the hash to check against), or D_LOGIN (refused)
R_ACCOUNT_REGISTER = "account register"  # (cid, name, email, record, via): REGISTER, checked and hashed by the
#   worker (record as accounts/store.py has it); via is "" or "NickServ", echoed in D_ACCOUNT_REGISTER
R_ACCOUNT_CHANGE = "account change"  # (cid, account_key, change): NickServ changes the asker's own account:
#   change is ("password", hash, scram), ("cert add", fingerprint), ("cert del", fingerprint) or ("drop",);
#   answered D_SERVICE
R_GHOST = "ghost"  # (cid, nick, regain): NickServ GHOST (regain False) or REGAIN: the connection holding a nick
#   the asker's account owns quits (and with regain the asker takes the nick); answered D_SERVICE

# The QUIT reason of every client of a worker told to stop (a client's own reason starts "Quit").
SHUTDOWN_REASON = "Server shutting down"

# Flags of a relayed message.
MSG_QUIET = 1  # NOTICE: never answered with an error
MSG_ECHO = 2  # the sender has echo-message: send the message back to it too
MSG_TAGMSG = 4  # TAGMSG: only clients with message-tags can receive it
MSG_CTCP = 8  # a CTCP other than ACTION, which a channel with +C refuses

# Replies and deliveries, hub -> worker (events from chatstate.state go to every worker).
D_CHANMSG = "cmsg"  # (channel_key, sender_cid, line, msgid, ts, flags, client_tags): msgid and ts the hub's
D_USERMSG = "umsg"  # (target_cid, sender_cid, line, msgid, ts, flags, client_tags)
D_ECHO = "echo"  # (sender_cid, line, msgid, ts, flags, client_tags): echo-message to its sender
D_WALLOPS = "wallops"  # (line,): for every local client with user mode +w
D_BARRIER = "barrier"  # (cid, token): the answer to R_BARRIER, after everything the requests before it caused
D_NUMERIC = "numeric"  # (cid, numeric, params): an error for the client that asked
D_FAIL = "fail"  # (cid, command, code, params): an IRCv3 standard reply (FAIL) for the client that asked
D_NICK_REFUSED = "nick_refused"  # (cid, nick): the nick is taken; the asking session resumes
D_HISTORY = "history"  # (cid, query, rows): the store's answer to R_HISTORY; rows are history Records
#   (TARGETS: (name, latest_time_us) pairs); the asking session renders them and resumes
D_REDACT = "redact"  # (channel_key or "", sender_cid, line, msgid, ts, peer_cids): a REDACT for the local
#   members of the channel (a private one: the sender and peer_cids) that have draft/message-redaction
D_MARKREAD = "markread"  # (cid, targets, times | None, joins | None): the answer to R_MARKREAD, each
#   target's marker (time_us or None for none); times None: it could not be set or read
D_ANSWERED = "answered"  # (cid, command): the hub has sent everything that answers the command the
#   session waits for (REDACT); it resumes
D_LOGIN = "sasl"  # (cid, account, numeric, text): account (its display name) and "900" when logged in,
#   else "" and the numeric refusing it (904 with why, 907); the session resumes
D_LOGIN_CHECK = "login check"  # (cid, account_key, hash or None): the throttle allows the password check
#   R_LOGIN_CHECK asked for; the worker checks it against this hash (None: no such account, and a
#   throwaway hash is checked instead) and sends R_LOGIN; the session still waits
D_ACCOUNT_REGISTER = "registered"  # (cid, name, code, via): code None when the account was made (and the client
#   logged in to it), else the FAIL REGISTER code; via as the request said; the session resumes
D_SERVICE = "service"  # (cid, text, resume): NickServ's answer to R_GHOST or R_ACCOUNT_CHANGE, a NOTICE from it;
#   the session resumes unless resume is False (REGAIN: the E_NICK that follows resumes it)
D_SYNC = "sync"  # (snapshot): a new hub's view of the world, after a restart
D_AT = "at"  # (stream_id, hub_token): with --cluster, everything the cluster's entries up to this one caused
#   for this worker is before it on the link; the worker's next hello names both, so that a restarted hub
#   sends it what it decides after that while it catches up, and nothing before, and knows which of the
#   replayed requests that hub (the token) had appended already (hub/clustered.py)
D_REFUSE = "refuse"  # (cid, reason): over a connection limit; the worker closes it with ERROR
D_HANDLED = "handled"  # (count,): with history on, the hub has handled this many items from this link and
#   their effects have reached every link, though the store may not have them yet (D_ACK waits for
#   that): after a hub restart the worker re-sends of these only the messages, whose copies the
#   workers drop by msgid, and not the state changes the dead hub already made (an AWAY, then a
#   BACK, replayed would be applied again, after the fact)
D_ACK = "ack"  # (count,): the hub has handled this many items from this link, and everything they
#   caused has been handed to the kernel; the worker may forget them
# Items workers send each other through R_FORWARD.
F_IDLE_ASK = "idle_ask"  # (asker_cid, target_cid): WHOIS wants the target's idle time
F_IDLE_TELL = "idle_tell"  # (asker_cid, target_cid, idle_seconds or None)


def encode_frame(items: list[tuple]) -> bytes:
    payload = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    return _LEN.pack(len(payload)) + payload


class FrameDecoder:
    """Bytes in, lists of items out."""

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[list[tuple]]:
        buf = self._buf
        buf += data
        batches = []
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = _LEN.unpack_from(buf, pos)
            end = pos + 4 + size
            if end > len(buf):
                break
            batches.append(pickle.loads(memoryview(buf)[pos + 4:end]))
            pos = end
        if pos:
            del buf[:pos]
        return batches


class LinkProtocol(asyncio.Protocol):
    """One end of a link; `send` queues an item for this loop iteration's frame."""

    def __init__(self, on_items: Callable[[list[tuple]], None],
                 on_lost: Callable[[], None] | None = None,
                 on_pause: Callable[[], None] | None = None,
                 on_resume: Callable[[], None] | None = None,
                 autoflush: bool = True) -> None:
        self._on_items = on_items
        self._autoflush = autoflush  # False: the owner calls flush() (the hub, to order its acks)
        self._on_lost = on_lost
        self._on_pause = on_pause
        self._on_resume = on_resume
        self._decoder = FrameDecoder()
        self._outbox: list[tuple] = []
        self._transport: asyncio.Transport | None = None
        self.paused = False
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        transport.set_write_buffer_limits(high=4 << 20)  # type: ignore[attr-defined]
        if self._outbox:  # sent before the transport existed
            asyncio.get_running_loop().call_soon(self._flush)

    def send(self, item: tuple) -> None:
        if self.closed:
            return
        if not self._outbox and self._autoflush:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outbox.append(item)

    def flush(self) -> None:
        """Write what is queued as one frame now."""
        self._flush()

    @property
    def queued_bytes(self) -> int:
        """Bytes handed to the transport and not yet written to the kernel (for /metrics)."""
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    @property
    def written(self) -> bool:
        """Every frame flushed so far has been handed to the kernel."""
        return self._transport is not None and self._transport.get_write_buffer_size() == 0

    def _flush(self) -> None:
        if self._transport is None or self.closed:
            return  # kept until connection_made (or dropped with a lost link)
        items, self._outbox = self._outbox, []
        if items:
            self._transport.write(encode_frame(items))

    def data_received(self, data: bytes) -> None:
        for batch in self._decoder.feed(data):
            self._on_items(batch)

    def pause_writing(self) -> None:
        self.paused = True
        if self._on_pause:
            self._on_pause()

    def resume_writing(self) -> None:
        self.paused = False
        if self._on_resume:
            self._on_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._on_lost:
            self._on_lost()

    def set_reading(self, reading: bool) -> None:
        if self._transport is not None and not self.closed:
            (self._transport.resume_reading if reading else self._transport.pause_reading)()

    def close(self) -> None:
        self._flush()
        if self._transport is not None:
            self._transport.close()


async def open_link(fd_or_sock: int | socket.socket, protocol: LinkProtocol) -> LinkProtocol:
    """Attach a protocol to one end of a pipe (an inherited fd or a socket)."""
    sock = fd_or_sock if isinstance(fd_or_sock, socket.socket) else socket.socket(fileno=fd_or_sock)
    sock.setblocking(False)
    await asyncio.get_running_loop().connect_accepted_socket(lambda: protocol, sock)
    return protocol
