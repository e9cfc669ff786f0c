"""The hub process: the single authority over global state and the single sequencer.

Theory of operation
-------------------
Workers send requests; the hub handles them one at a time, in arrival order, on one event
loop. A granted change becomes an event that the hub applies to its own `State` and sends to
every worker (so every replica sees the same sequence). A channel message is checked and
forwarded, as the bytes the origin worker rendered, to each worker that has members in the
channel (the origin included): since every copy leaves the hub in one order, every member
sees the channel in one order. A private message goes to the one worker holding the target.
Refusals go back to the requesting worker only, as a numeric for its client.

A worker's link reaching EOF means the worker died: every client it held quits.
When any worker's link is backed up, the hub stops reading from all links until it drains,
so a slow worker slows the producers instead of growing the hub's memory.

Nothing is lost or doubled when the hub itself dies. A worker keeps each request until the hub
acknowledges it (D_ACK, cumulative, riding in a later frame), and the hub acknowledges only
after every frame those requests caused has reached the kernel on every link. A new hub
handles nothing until each linked worker has said hello (re-announcing its clients), shares
the rebuilt state (D_SYNC), and then takes the replayed requests: state changes are
idempotent, error replies to replays are not sent, and workers drop any message whose id they
have already delivered.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections import Counter

from config import Config
from ipc import control, link
from ipc.child import ChildProcess, Heartbeat
from hub.policy import rename_refusal, speak_refusal
from chatstate.state import (ACTING_LIST_MODES, BAN_LIST_LENGTH, E_AWAY, E_CHGHOST, E_CONNECTIONS, E_INVITE, E_JOIN, E_KICK, E_MODE,
                       E_NICK, E_PART, E_QUIT, E_RENAME, E_SETNAME, E_TOPIC, E_UMODE, E_USER, LIST_MODES, OP_STATUS,
                       STATUS_OF_MODE, STATUS_RANK, Channel, State, User, wid_of)
from ircproto import numerics as N
from ircproto.casemap import casefold
from ircproto.masks import normalize_list_mask

log = logging.getLogger("hubchat.hub")

WORKER_LOST_REASON = "Server process exited"
HELLO_WAIT = 3.0  # seconds a new link may take to say hello before the hub carries on without it
ACK_DELAY = 0.005  # seconds before acks go out in a frame of their own, when no traffic carries them


class Hub(ChildProcess):
    label = "hub"

    def __init__(self, config: Config, control_sock: socket.socket, heartbeat: Heartbeat | None = None) -> None:
        super().__init__(config, control_sock, heartbeat)
        self.state = State()
        self.links: dict[int, link.LinkProtocol] = {}
        self._backed_up: set[int] = set()
        self.connections: dict[int, str] = {}  # every connection a worker holds: cid -> IP address
        self.per_ip: Counter[str] = Counter()
        self._one_string_per_address: dict[str, str] = {}  # clients behind one address share its string
        # Delivery guarantees across a hub restart (see the module docstring).
        self.handled: Counter[int] = Counter()  # items handled per link
        self.acks_due: dict[int, int] = {}  # link -> items handled this iteration
        self.acks_earned: dict[int, int] = {}  # link -> items whose effects were handed to the links
        self._ack_timer_set = False
        self._flushes = 0
        self.awaiting_hello: set[int] = set()
        self.parked: list[tuple[int, list[tuple]]] = []
        self.replaying: set[int] = set()
        self.sync_needed = False
        self._flush_scheduled = False
        self._hello_timer: asyncio.TimerHandle | None = None
        self.control_handlers[control.LINK] = self.new_link
        self.handlers = {
            link.R_HELLO: self.hello,
            link.R_CONNECT: self.connect,
            link.R_REGISTER: self.register,
            link.R_NICK: self.nick,
            link.R_JOIN: self.join,
            link.R_PART: self.part,
            link.R_QUIT: self.quit,
            link.R_TOPIC: self.topic,
            link.R_MODE: self.mode,
            link.R_UMODE: self.user_mode,
            link.R_OPER: self.oper,
            link.R_KICK: self.kick,
            link.R_INVITE: self.invite,
            link.R_AWAY: self.away,
            link.R_SETNAME: self.setname,
            link.R_CHGHOST: self.chghost,
            link.R_KILL: self.kill,
            link.R_WALLOPS: self.wallops,
            link.R_RENAME: self.rename,
            link.R_CHANMSG: self.channel_message,
            link.R_USERMSG: self.user_message,
            link.R_BARRIER: self.barrier,
            link.R_FORWARD: self.forward,
            link.R_REPLAY: self.replay,
        }

    # --- lifecycle -----------------------------------------------------------------------
    def finish(self) -> None:
        for protocol in self.links.values():
            protocol.close()

    def new_link(self, wid: int, fds: list[int]) -> None:
        # Nothing is handled until this worker has said hello: after a restart, its clients
        # must be known before anyone's (replayed) messages are routed.
        self.awaiting_hello.add(wid)
        if self._hello_timer is None:
            self._hello_timer = asyncio.get_running_loop().call_later(HELLO_WAIT, self._hello_overdue)
        asyncio.get_running_loop().create_task(self._attach(wid, fds[0]))

    async def _attach(self, wid: int, fd: int) -> None:
        protocol = link.LinkProtocol(
            lambda items: self._on_items(wid, items),
            on_lost=lambda: self._on_lost(wid),
            on_pause=lambda: self._backpressure(wid, True),
            on_resume=lambda: self._backpressure(wid, False),
            autoflush=False)
        self.links[wid] = protocol
        await link.open_link(fd, protocol)

    def _on_items(self, wid: int, items: list[tuple]) -> None:
        if not (self.awaiting_hello or self.parked):
            self._handle(wid, items)
            return
        if items and items[0][0] == link.R_HELLO:
            self._handle(wid, items[:1])
            items = items[1:]
            self.awaiting_hello.discard(wid)
        if items:
            self.parked.append((wid, items))
        if not self.awaiting_hello:
            self._release()

    def _handle(self, wid: int, items: list[tuple]) -> None:
        handlers = self.handlers
        for item in items:
            try:
                handlers[item[0]](wid, *item[1:])
            except Exception:
                log.exception("hub failed to handle %r from worker %d", item[:2], wid)
        self.handled[wid] += len(items)
        self.acks_due[wid] = self.handled[wid]
        self._schedule_flush()

    def _release(self) -> None:
        """Every linked worker has said hello: share the rebuilt state, then handle what waited."""
        if self._hello_timer is not None:
            self._hello_timer.cancel()
            self._hello_timer = None
        if self.sync_needed:
            self.sync_needed = False
            sync = (link.D_SYNC, self.state.snapshot())
            for protocol in self.links.values():
                self._send(protocol, sync)
        self.emit((E_CONNECTIONS, len(self.connections)))  # the replicas' count is the dead hub's, or none
        parked, self.parked = self.parked, []
        for wid, items in parked:
            if wid in self.links:
                self._handle(wid, items)

    def _hello_overdue(self) -> None:
        self._hello_timer = None
        if self.awaiting_hello:
            log.warning("hub: workers %s did not say hello in %.0fs; carrying on without them",
                        sorted(self.awaiting_hello), HELLO_WAIT)
            self.awaiting_hello.clear()
            self._release()

    # --- flushing and acknowledgements --------------------------------------------------
    def _send(self, protocol: link.LinkProtocol, item: tuple) -> None:
        protocol.send(item)
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush_all)

    def _flush_all(self) -> None:
        """One frame per link for this loop iteration, carrying the acks earlier ones earned.

        A worker forgets a request once acked, so an ack must never overtake what the request
        caused on *another* link. So a request is acked in a later iteration's frame, once every
        link has handed the frames it caused to the kernel (a socketpair then delivers them even
        if this process dies). Riding in the next frame costs no write of its own: a separate
        ack frame would wake every worker a second time per iteration."""
        self._flush_scheduled = False
        links = self.links
        earned = self.acks_earned
        if earned and all(p.closed or p.written for p in links.values()):
            for wid, count in earned.items():
                protocol = links.get(wid)
                if protocol is not None:
                    protocol.send((link.D_ACK, count))
            earned.clear()
        for protocol in links.values():
            protocol.flush()
        if self.acks_due:
            earned.update(self.acks_due)
            self.acks_due.clear()
        self._flushes += 1
        if earned and not self._ack_timer_set:
            self._arm_ack_timer()

    def _arm_ack_timer(self) -> None:
        self._ack_timer_set = True
        asyncio.get_running_loop().call_later(ACK_DELAY, self._ack_timer, self._flushes)

    def _ack_timer(self, flushes_then: int) -> None:
        """Acks still unsent after ACK_DELAY: flush for them alone, unless traffic is flowing
        (a frame will carry them as soon as the links have caught up)."""
        self._ack_timer_set = False
        if not self.acks_earned:
            return
        if self._flushes == flushes_then:
            self._schedule_flush()
        else:
            self._arm_ack_timer()

    def _on_lost(self, wid: int) -> None:
        if self.links.pop(wid, None) is None:
            return
        self._backpressure(wid, False)
        self.acks_due.pop(wid, None)
        self.acks_earned.pop(wid, None)
        self.replaying.discard(wid)
        if wid in self.awaiting_hello:
            self.awaiting_hello.discard(wid)
            if not self.awaiting_hello:
                self._release()
        for cid in [c for c in self.connections if wid_of(c) == wid]:
            self._forget_connection(cid)
        lost = list(self.state.local_cids(wid))
        log.info("hub: worker %d is gone; %d of its clients quit", wid, len(lost))
        for cid in lost:
            self.emit((E_QUIT, cid, WORKER_LOST_REASON, time.time()))
        self._count_connections()

    def _backpressure(self, wid: int, backed_up: bool) -> None:
        was = bool(self._backed_up)
        (self._backed_up.add if backed_up else self._backed_up.discard)(wid)
        if was != bool(self._backed_up):
            for protocol in self.links.values():
                protocol.set_reading(not self._backed_up)

    # --- output --------------------------------------------------------------------------
    def emit(self, event: tuple) -> None:
        """Apply a granted change and announce it to every worker, in this order for all."""
        self.state.apply(event)
        self._broadcast(event)

    def _broadcast(self, event: tuple) -> None:
        for protocol in self.links.values():
            self._send(protocol, event)

    def to_worker_of(self, cid: int, item: tuple) -> None:
        protocol = self.links.get(wid_of(cid))
        if protocol is not None:
            self._send(protocol, item)

    def refuse(self, cid: int, numeric: str, *params: str) -> None:
        if wid_of(cid) in self.replaying:
            return  # a replayed request was answered by the hub that died, or needs no answer now
        self.to_worker_of(cid, (link.D_NUMERIC, cid, numeric, params))

    def fail(self, cid: int, command: str, code: str, *params: str) -> None:
        """Refuse with an IRCv3 standard reply (FAIL <command> <code> ...) instead of a numeric."""
        if wid_of(cid) not in self.replaying:
            self.to_worker_of(cid, (link.D_FAIL, cid, command, code, params))

    # --- requests ------------------------------------------------------------------------
    def hello(self, wid: int, snapshot: dict) -> None:
        """A worker (re)joined; after a hub restart it brings the clients it still holds."""
        for cid, ip in snapshot.get("connections", ()):
            if cid not in self.connections:
                self._admit(cid, ip)
        if not snapshot["users"]:
            if self.state.users and wid in self.links:  # a new worker's replica starts from the hub's state
                self._send(self.links[wid], (link.D_SYNC, self.state.snapshot()))
            return
        refused = self.state.merge(snapshot)
        for cid in refused:
            log.warning("hub: client %x lost its nick in the rebuild after a restart", cid)
        log.info("hub: worker %d re-announced %d clients", wid, len(snapshot["users"]))
        self.sync_needed = True  # sent to everyone once every worker has said hello

    def replay(self, wid: int, on: bool) -> None:
        """The worker is re-sending requests that the previous hub may already have handled."""
        (self.replaying.add if on else self.replaying.discard)(wid)

    def connect(self, wid: int, cid: int, ip: str) -> None:
        """Admit a new connection, or refuse it when the server or its address is full."""
        if cid in self.connections:
            return  # already known from the worker's hello (it connected before the link was up)
        limits = self.config.limits
        if len(self.connections) >= limits.max_clients:
            reason = f"The server is full ({limits.max_clients} connections); try again later"
        elif self.per_ip[ip] >= limits.max_clients_per_ip and not (limits.exempt_loopback and _is_loopback(ip)):
            reason = f"Too many connections from your address (the limit is {limits.max_clients_per_ip})"
        else:
            self._admit(cid, ip)
            self._count_connections()
            return
        log.info("hub: refused a connection from %s: %s", ip, reason)
        self.to_worker_of(cid, (link.D_REFUSE, cid, reason))

    def _admit(self, cid: int, ip: str) -> None:
        self.connections[cid] = self._one_string_per_address.setdefault(ip, ip)
        self.per_ip[ip] += 1

    def _count_connections(self) -> None:
        """LUSERS on any worker counts the connections still registering on every worker, so
        each replica is told the total when it changes."""
        if len(self.connections) != self.state.connections:
            self.emit((E_CONNECTIONS, len(self.connections)))

    def _forget_connection(self, cid: int) -> None:
        ip = self.connections.pop(cid, None)
        if ip is not None:
            self.per_ip[ip] -= 1
            if not self.per_ip[ip]:
                del self.per_ip[ip]
                del self._one_string_per_address[ip]

    def register(self, wid: int, cid: int, nick: str, user: str, host: str, realname: str) -> None:
        if cid not in self.connections or cid in self.state.users:
            return  # refused at the door, or already registered (a request replayed after a restart)
        if casefold(nick) in self.state.nicks:
            self.to_worker_of(cid, (link.D_NICK_REFUSED, cid, nick))
            return
        if host == self.connections[cid]:
            host = self.connections[cid]  # the address's string, not one more copy per user
        self.emit((E_USER, cid, nick, user, host, realname, time.time()))

    def nick(self, wid: int, cid: int, new: str) -> None:
        if cid not in self.state.users:
            return
        if self.state.users[cid].nick == new:
            return  # nothing changes (a replay of a change that already happened)
        holder = self.state.nicks.get(casefold(new))
        if holder is not None and holder != cid:
            self.to_worker_of(cid, (link.D_NICK_REFUSED, cid, new))
            return
        self.emit((E_NICK, cid, new, time.time()))

    def join(self, wid: int, cid: int, name: str, key: str = "") -> None:
        user = self.state.users.get(cid)
        if user is None or casefold(name) in user.channels:
            return
        if len(user.channels) >= self.config.limits.chanlimit:
            self.refuse(cid, N.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
            return
        chan = self.state.channels.get(casefold(name))
        refusal = _join_refusal(chan, user, key) if chan is not None else None
        if refusal is not None:
            self.refuse(cid, refusal[0], chan.name, refusal[1])
            return
        self.emit((E_JOIN, cid, name, time.time()))

    def _channel_of_member(self, cid: int, name: str) -> Channel | None:
        """The channel, if it exists and the client is in it; otherwise refuse (403 or 442)."""
        chan = self.state.channels.get(casefold(name))
        if chan is None:
            self.refuse(cid, N.ERR_NOSUCHCHANNEL, name, "No such channel")
        elif cid not in chan.members:
            self.refuse(cid, N.ERR_NOTONCHANNEL, name, "You're not on that channel")
        else:
            return chan
        return None

    def part(self, wid: int, cid: int, name: str, reason: str) -> None:
        if self._channel_of_member(cid, name):
            self.emit((E_PART, cid, casefold(name), reason))

    def quit(self, wid: int, cid: int, reason: str) -> None:
        self._forget_connection(cid)
        if cid in self.state.users:
            self.emit((E_QUIT, cid, reason, time.time()))
        self._count_connections()

    def topic(self, wid: int, cid: int, name: str, text: str) -> None:
        chan = self._channel_of_member(cid, name)
        if chan is None:
            return
        if "t" in chan.modes and OP_STATUS not in chan.members[cid]:
            self.refuse(cid, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        elif wid in self.replaying and chan.topic == text:
            return  # set before the restart already
        else:
            self.emit((E_TOPIC, cid, casefold(name), text, time.time()))

    # --- channel operator commands ---------------------------------------------------------
    def _operator_channel(self, cid: int, name: str) -> Channel | None:
        """The channel, if the client is one of its operators; otherwise refuse (403, 442, 482)."""
        chan = self._channel_of_member(cid, name)
        if chan is not None and OP_STATUS not in chan.members[cid]:
            self.refuse(cid, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
            return None
        return chan

    def mode(self, wid: int, cid: int, name: str, changes: tuple) -> None:
        chan = self._operator_channel(cid, name)
        if chan is None:
            return
        key, now = casefold(chan.name), time.time()
        applied = []
        for sign, letter, arg in changes:  # each checked against the state the previous ones left
            change = self._mode_change(cid, chan, sign == "+", letter, arg)
            if change is not None:
                self.state.apply((E_MODE, cid, key, (change,), now))
                applied.append(change)
        if applied:
            self._broadcast((E_MODE, cid, key, tuple(applied), now))  # workers apply them together

    def _mode_change(self, cid: int, chan: Channel, add: bool, letter: str, arg: str) -> tuple | None:
        """One change as it will take effect, or None when it changes nothing or is refused."""
        sign = "+" if add else "-"
        if letter in STATUS_OF_MODE:
            target = self._target(cid, arg)
            if target is None:
                return None
            if target.cid not in chan.members:
                self.refuse(cid, N.ERR_USERNOTINCHANNEL, target.nick, chan.name, "They aren't on that channel")
                return None
            if (STATUS_OF_MODE[letter] in chan.members[target.cid]) == add:
                return None
            return (sign, letter, target.nick)
        if letter in LIST_MODES:
            mask = normalize_list_mask(arg, acting=letter in ACTING_LIST_MODES)
            if mask is None:
                return None  # the worker has answered 696
            entries = chan.mask_list(letter)
            present = any(casefold(m) == casefold(mask) for m, _, _ in entries)
            if present == add:
                return None
            if add and len(entries) >= BAN_LIST_LENGTH:
                self.refuse(cid, N.ERR_BANLISTFULL, chan.name, letter, "Channel list is full")
                return None
            return (sign, letter, mask)
        if letter == "k":
            if add:
                return None if chan.key == arg else (sign, letter, arg)
            return (sign, letter, "*") if chan.key else None
        if letter == "l":
            if add:
                return None if chan.limit == int(arg) else (sign, letter, arg)
            return (sign, letter, "") if chan.limit else None
        return None if (letter in chan.modes) == add else (sign, letter, "")

    def rename(self, wid: int, cid: int, name: str, new_name: str, reason: str) -> None:
        """RENAME (IRCv3 draft/channel-rename), for the channel's operators."""
        chan = self._operator_channel(cid, name)
        if chan is None:
            return
        refusal = rename_refusal(self.state.channels, chan, new_name)
        if refusal is not None:
            self.fail(cid, "RENAME", refusal[0], chan.name, new_name, refusal[1])
        elif new_name != chan.name:  # else nothing changes (or a replayed rename already happened)
            self.emit((E_RENAME, cid, chan.folded, new_name, reason))

    def kick(self, wid: int, cid: int, name: str, nick: str, reason: str) -> None:
        chan = self._operator_channel(cid, name)
        if chan is None:
            return
        target = self._target(cid, nick)
        if target is None:
            return
        if target.cid not in chan.members:
            self.refuse(cid, N.ERR_USERNOTINCHANNEL, target.nick, chan.name, "They aren't on that channel")
        else:
            self.emit((E_KICK, cid, casefold(chan.name), target.cid, reason))

    def invite(self, wid: int, cid: int, nick: str, name: str) -> None:
        target = self._target(cid, nick)
        if target is None:
            return
        chan = self._channel_of_member(cid, name)
        if chan is None:
            return
        if "i" in chan.modes and OP_STATUS not in chan.members[cid]:
            self.refuse(cid, N.ERR_CHANOPRIVSNEEDED, chan.name, "You're not channel operator")
        elif target.cid in chan.members:
            self.refuse(cid, N.ERR_USERONCHANNEL, target.nick, chan.name, "is already on channel")
        else:
            self.emit((E_INVITE, cid, casefold(chan.name), target.cid))

    # --- user state ----------------------------------------------------------------------
    def user_mode(self, wid: int, cid: int, changes: str) -> None:
        user = self.state.users.get(cid)
        if user is None:
            return
        have = set(user.modes)
        applied: list[str] = []
        sign = "+"
        for letter in changes:
            if letter in "+-":
                sign = letter
            elif letter == "o" and sign == "+":
                continue  # only OPER grants +o (Modern IRC: the attempt is ignored)
            elif (letter in have) != (sign == "+"):
                (have.add if sign == "+" else have.discard)(letter)
                applied.append(sign + letter)
        if applied:
            self.emit((E_UMODE, cid, _join_mode_changes(applied)))

    def oper(self, wid: int, cid: int) -> None:
        user = self.state.users.get(cid)
        if user is not None and "o" not in user.modes:
            self.emit((E_UMODE, cid, "+o"))

    def away(self, wid: int, cid: int, text: str) -> None:
        user = self.state.users.get(cid)
        if user is not None and not (wid in self.replaying and user.away == text):
            self.emit((E_AWAY, cid, text))

    def setname(self, wid: int, cid: int, realname: str) -> None:
        if cid in self.state.users:
            self.emit((E_SETNAME, cid, realname))

    # --- operator powers -----------------------------------------------------------------
    def _operator(self, cid: int) -> User | None:
        user = self.state.users.get(cid)
        if user is not None and "o" not in user.modes:
            self.refuse(cid, N.ERR_NOPRIVILEGES, "Permission Denied- You're not an IRC operator")
            return None
        return user

    def _target(self, cid: int, nick: str) -> User | None:
        target = self.state.user_by_nick(nick)
        if target is None:
            self.refuse(cid, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
        return target

    def kill(self, wid: int, cid: int, nick: str, reason: str) -> None:
        oper = self._operator(cid)
        target = oper and self._target(cid, nick)
        if target:
            log.info("hub: %s killed %s (%s)", oper.nick, target.nick, reason)
            self._forget_connection(target.cid)
            self.emit((E_QUIT, target.cid, f"Killed ({oper.nick} ({reason}))", time.time()))
            self._count_connections()

    def wallops(self, wid: int, cid: int, line: bytes) -> None:
        if self._operator(cid):
            for protocol in self.links.values():
                self._send(protocol, (link.D_WALLOPS, line))

    def chghost(self, wid: int, cid: int, nick: str, user: str, host: str) -> None:
        target = self._operator(cid) and self._target(cid, nick)
        if target and (target.user, target.host) != (user, host):
            self.emit((E_CHGHOST, target.cid, user, host))

    # --- messages ------------------------------------------------------------------------
    def channel_message(self, wid: int, cid: int, name: str, line: bytes, msgid: str, ts: float,
                        flags: int, tags: str) -> None:
        key = casefold(name)
        chan = self.state.channels.get(key)
        to_status = ""
        if chan is None:
            if name[:1] in STATUS_RANK:  # STATUSMSG (@#chan): routed under that key; workers pick recipients
                to_status, chan = name[0], self.state.channels.get(key[1:])
            if chan is None:
                if not flags & link.MSG_QUIET:
                    self.refuse(cid, N.ERR_NOSUCHCHANNEL, name[len(to_status):], "No such channel")
                return
        status = chan.members.get(cid)
        # The hot path skips the policy call when it cannot refuse: a member is refused only for +m,
        # a ban or mute, a CTCP or a STATUSMSG (tests/test_channel_lists.py holds it to that).
        if status is None or flags & link.MSG_CTCP or to_status or \
                (not status and ("m" in chan.modes or chan.bans)):
            refusal = speak_refusal(chan, status, self.state.users.get(cid), bool(flags & link.MSG_CTCP),
                                    to_status)
            if refusal is not None:
                if not flags & link.MSG_QUIET:
                    self.refuse(cid, N.ERR_CANNOTSENDTOCHAN, chan.name, refusal)
                return
        item = (link.D_CHANMSG, key, cid, line, msgid, ts, flags, tags)
        links = self.links
        for member_wid in chan.by_wid:  # the hot path: queue to each link, schedule one flush
            protocol = links.get(member_wid)
            if protocol is not None:
                protocol.send(item)
        if status is None and flags & link.MSG_ECHO:  # an outsider's echo has no member to ride with
            self.to_worker_of(cid, (link.D_ECHO, cid, line, msgid, ts, flags, tags))
        self._schedule_flush()

    def user_message(self, wid: int, cid: int, nick: str, line: bytes, msgid: str, ts: float,
                     flags: int, tags: str) -> None:
        target = self.state.nicks.get(casefold(nick))
        if target is None:
            if not flags & link.MSG_QUIET:
                self.refuse(cid, N.ERR_NOSUCHNICK, nick, "No such nick/channel")
            return
        self.to_worker_of(target, (link.D_USERMSG, target, cid, line, msgid, ts, flags, tags))
        if flags & link.MSG_ECHO:
            self.to_worker_of(cid, (link.D_ECHO, cid, line, msgid, ts, flags, tags))
        away = self.state.users[target].away
        if away and not flags & (link.MSG_QUIET | link.MSG_TAGMSG):
            self.refuse(cid, N.RPL_AWAY, self.state.users[target].nick, away)

    # --- plumbing for workers --------------------------------------------------------------
    def barrier(self, wid: int, cid: int, token: int) -> None:
        """Everything this client asked for before has been handled and sent: tell its worker."""
        self.to_worker_of(cid, (link.D_BARRIER, cid, token))

    def forward(self, wid: int, cid: int, item: tuple) -> None:
        self.to_worker_of(cid, item)


def _join_refusal(chan: Channel, user: User, key: str) -> tuple[str, str] | None:
    """Why a user may not join an existing channel (numeric and text), or None."""
    if chan.is_banned(user):
        return N.ERR_BANNEDFROMCHAN, "Cannot join channel (+b)"
    if "i" in chan.modes and user.cid not in chan.invited and not chan.is_invite_excepted(user):
        return N.ERR_INVITEONLYCHAN, "Cannot join channel (+i)"
    if chan.key and key != chan.key:
        return N.ERR_BADCHANNELKEY, "Cannot join channel (+k)"
    if chan.limit and len(chan.members) >= chan.limit:
        return N.ERR_CHANNELISFULL, "Cannot join channel (+l)"
    return None


def _join_mode_changes(changes: list[str]) -> str:
    """['+i', '+w', '-o'] -> '+iw-o'."""
    out, sign = [], ""
    for change in changes:
        if change[0] != sign:
            sign = change[0]
            out.append(sign)
        out.append(change[1])
    return "".join(out)

def _is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip.lstrip("0") if ip.startswith("0:") else ip).is_loopback
    except ValueError:
        return False
