"""The hub's policy: given the state, a request and the time, what happens. No links, sockets,
clock or logging in here, so every rule can be tested on plain data (tests/test_policy.py).

`Policy.decide(request, now, replayed)` returns the decision: a list, in order, of

- events (tuples: `E_*` state events, which the policy has already applied to `state` with
  `State.apply`, and the messages `M_*` of `hub.log`), for the hub to publish; and
- `Reply(cid, item)`: an answer for one client (a numeric, a FAIL, a refused nick or
  connection, a barrier, a forwarded item), for its worker only, and not published;
- `Ask(cid, item, kind)`: a question for the history store that this client may ask: a history
  query (CHATHISTORY, SEARCH) with whose history it may read, or read markers (MARKREAD), whose
  answer goes to the client's worker; or a REDACT's first step (S_LOOKUP: who wrote the message,
  and what is it?), whose answer comes back here as a request of its own (REDACT_FOUND), and
  the policy decides the REDACT on it. Both steps are pure; the hub only carries the answer.

The order is the order the asking worker must see them in: a request's outputs, then (for
R_BARRIER) the barrier that follows it. A rule reads the state as the rules before it left it:
MODE in particular applies its changes one at a time, each checked against the last.

A replayed request (re-sent after a hub restart, see `hub/hub.py`) gets no error replies (the
hub that died answered it, or it needs no answer now), and a state change that already took
effect changes nothing.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from accounts import names
from accounts.names import is_service_nick
from accounts.throttle import LoginThrottle
from chatstate.state import (BAN_LIST_LENGTH, E_ACCOUNT, E_AWAY, E_CHGHOST, E_CONNECTIONS, E_INVITE, E_JOIN, E_KICK, E_LOGIN, E_MODE,
                             E_NICK, E_PART, E_QUIT, E_RENAME, E_RESTORE, E_SETNAME, E_TOPIC, E_UMODE, E_USER, Channel,
                             State, User, host_of_wid, identity, wid_of)
from ircproto.modes import ACTING_LIST_MODES, LIST_MODES, OP_STATUS, STATUS_OF_MODE, STATUS_RANK
from hub.admission import Connections
from history.feed import S_LOOKUP, S_MARKREAD, S_QUERY
from hub.log import M_CHANMSG, M_REDACT, M_USERMSG, M_WALLOPS
from hub.refusals import join_refusal, rename_refusal, speak_refusal
from ipc import link
from ircproto import numerics as N
from ircproto import readmarker, redaction
from ircproto.chathistory import Record, query_target, refusal
from ircproto.casemap import casefold, is_channel_name, is_valid_nick
from ircproto.masks import normalize_list_mask

WORKER_LOST_REASON = "Server process exited"
NICK_RESERVED = "Nickname is reserved by a different account"  # 433's text for a registered nick (as ergo says)
SERVICE_RESERVED = "Nickname is reserved for a network service"  # 433's text for NickServ
THROTTLED = "Too many failed logins; try again in {} seconds"
LOGIN_FAILED = N.TEXTS[N.ERR_SASLFAIL]
# NickServ's answers to what the hub decides for it (GHOST, REGAIN, an account change), as its NOTICEs.
NOT_LOGGED_IN = "You are not logged in to an account"
NO_SUCH_NICK = "No such nick: {}"
GHOST_SELF = "You can't GHOST yourself (try /QUIT instead)"
REGAIN_SELF = "You already have the nick {}"
NOT_OWNER = "{} is not yours: it is not your account's nick, nor is its user logged in to your account"
GHOST_REASON = "GHOST command used by {}"  # the QUIT reason of a ghosted connection (as Anope says)
GHOSTED = "{} has been ghosted"
REGAINED = "You have regained the nick {}"
PASSWORD_CHANGED = "Your password has been changed"
CERT_ADDED = "Certificate fingerprint {} added to your account"
CERT_ALREADY = "Certificate fingerprint {} is already on your account"
CERT_TAKEN = "Certificate fingerprint {} is already on another account"
CERT_LIMIT = "An account may have at most {} certificate fingerprints"
CERT_REMOVED = "Certificate fingerprint {} removed from your account"
CERT_UNKNOWN = "Certificate fingerprint {} is not on your account"
DROPPED = "Account {} has been dropped; its name cannot be registered again"
MAX_CERTFPS = 5  # fingerprints per account (one per device is the usual use)
# The store's answer to a REDACT's first step, as a request of its own (the hub makes it of S_FOUND):
REDACT_FOUND = "redact found"  # (context, found): context as the first step left it, found as S_FOUND has it


class Reply(NamedTuple):
    """An item for the worker holding `cid` alone: an answer to that client's request."""
    cid: int
    item: tuple


class Ask(NamedTuple):
    """A question for the store, for the client `cid`, as the feed item `kind` (history.feed) holds
    it after its number. S_QUERY, a history query: item is (cid, owner, scope, channels, query),
    where scope is the (owner, target) whose rows the query reads ("" owns a channel's), or None
    for TARGETS and a SEARCH of every conversation, which read the asker's private rows and
    `channels`. S_MARKREAD and S_LOOKUP: as history.feed describes them."""
    cid: int
    item: tuple
    kind: str = S_QUERY


class Policy:
    def __init__(self, state: State, limits, connections: Connections | None = None, history: bool = True,
                 login_attempts: int = 3) -> None:
        self.state = state
        # Accounts live in the history database: no history, no accounts (the caps are not offered).
        self.accounts = history
        self.throttle = LoginThrottle(limit=login_attempts)
        self.checking: dict[int, tuple[str, str]] = {}  # cid -> (account key, address): password checks in flight
        self.limits = limits  # config.limits: chanlimit and the connection limits
        self.history = history  # a store answers Asks (else MARKREAD and REDACT are answered here)
        self.connections = connections if connections is not None else Connections()
        self.now = 0.0
        self.replayed = False
        self._out: list = []
        # Channels that had members when the whole server last stopped (history keeps them): each
        # comes back, as it was, with the first client to join it.
        self.dormant: dict[str, dict] = {}
        self._rules: dict[str, Callable[..., None]] = {
            link.R_CONNECT: self.connect, link.R_REGISTER: self.register, link.R_NICK: self.nick,
            link.R_JOIN: self.join, link.R_PART: self.part, link.R_QUIT: self.quit, link.R_TOPIC: self.topic,
            link.R_MODE: self.mode, link.R_UMODE: self.user_mode, link.R_OPER: self.oper, link.R_KICK: self.kick,
            link.R_INVITE: self.invite, link.R_AWAY: self.away, link.R_SETNAME: self.setname,
            link.R_CHGHOST: self.chghost, link.R_KILL: self.kill, link.R_WALLOPS: self.wallops,
            link.R_RENAME: self.rename, link.R_CHANMSG: self.channel_message, link.R_USERMSG: self.user_message,
            link.R_BARRIER: self.barrier, link.R_FORWARD: self.forward, link.R_HISTORY: self.history_query,
            link.R_REDACT: self.redact, REDACT_FOUND: self.redact_found, link.R_MARKREAD: self.markread,
            link.R_LOGIN: self.login, link.R_ACCOUNT_REGISTER: self.account_register,
            link.R_LOGIN_CHECK: self.login_check, link.R_ACCOUNT_CHANGE: self.account_change, link.R_GHOST: self.ghost,
        }

    def decide(self, request: tuple, now: float, replayed: bool = False) -> list:
        """The events and replies one request causes, in order (see the module docstring)."""
        self.now, self.replayed = now, replayed
        out = self._out = []
        self._rules[request[0]](*request[1:])
        return out

    # --- decisions the hub makes without a request ------------------------------------------
    def worker_lost(self, wid: int, now: float) -> list:
        """A worker's link reached EOF: the worker died, and every client it held quits."""
        self.now, self.replayed = now, False
        out = self._out = []
        for cid in self.connections.of_worker(wid):
            self.connections.forget(cid)
            self._end_check(cid)
        for cid in self.state.local_cids(wid):
            self._emit((E_QUIT, cid, WORKER_LOST_REASON, now))
        self._count_connections()
        return out

    def host_lost(self, host: int, now: float, reason: str) -> list:
        """A host of a cluster left it (its lease lapsed, or a new incarnation of it came up):
        every client it held quits, and a connection it still holds unregistered is refused
        (which only that host's own workers can act on)."""
        self.now, self.replayed = now, False
        out = self._out = []
        for cid in [c for c in self.connections.address if host_of_wid(wid_of(c)) == host]:
            self.connections.forget(cid)
            if cid not in self.state.users:
                out.append(Reply(cid, (link.D_REFUSE, cid, reason)))
        for cid in [c for c in self.state.users if host_of_wid(wid_of(c)) == host]:
            self._emit((E_QUIT, cid, reason, now))
        self._count_connections()
        return out

    def connection_count(self) -> list:
        """The connection count as this hub knows it, for replicas that had a dead hub's, or none."""
        out = self._out = []
        self._emit((E_CONNECTIONS, len(self.connections)))
        return out

    # --- output ------------------------------------------------------------------------------
    def _emit(self, event: tuple) -> None:
        self.state.apply(event)
        self._out.append(event)

    def _refuse(self, cid: int, numeric: str, *params: str) -> None:
        """Answer the asking client with a numeric; a fixed text comes from the numerics table."""
        if not self.replayed:
            self._out.append(Reply(cid, (link.D_NUMERIC, cid, numeric, N.with_text(numeric, params))))

    def _fail(self, cid: int, command: str, code: str, *params: str) -> None:
        """Refuse with an IRCv3 standard reply (FAIL <command> <code> ...) instead of a numeric."""
        if not self.replayed:
            self._out.append(Reply(cid, (link.D_FAIL, cid, command, code, params)))

    # --- connections and registration ----------------------------------------------------------
    def connect(self, cid: int, ip: str) -> None:
        """Admit a new connection, or refuse it when the server or its address is full."""
        if cid in self.connections:
            return  # already known from the worker's hello (it connected before the link was up)
        reason = self.connections.refusal(ip, self.limits)
        if reason is not None:
            self._out.append(Reply(cid, (link.D_REFUSE, cid, reason)))
            return
        self.connections.admit(cid, ip)
        self._count_connections()

    def _count_connections(self) -> None:
        """LUSERS on any worker counts the connections still registering on every worker, so
        each replica is told the total when it changes."""
        if len(self.connections) != self.state.connections:
            self._emit((E_CONNECTIONS, len(self.connections)))

    def register(self, cid: int, nick: str, user: str, host: str, realname: str, account: str = "") -> None:
        if cid not in self.connections or cid in self.state.users:
            return  # refused at the door, or already registered (a request replayed after a restart)
        record = self._account(account) if account else None
        if casefold(nick) in self.state.nicks:
            self._out.append(Reply(cid, (link.D_NICK_REFUSED, cid, nick)))
            return
        reserved = self._reserved(nick, account if record is not None else "")
        if reserved:
            self._out.append(Reply(cid, (link.D_NICK_REFUSED, cid, nick, reserved)))
            return
        address = self.connections.address[cid]
        if host == address:
            host = address  # the address's string, not one more copy per user
        self._emit((E_USER, cid, nick, user, host, realname, self.now))
        if record is not None:  # logged in before registering (SASL): the login follows the user
            self._emit((E_LOGIN, cid, record["name"]))

    def _reserved(self, nick: str, account_key: str) -> str:
        """Nick ownership (strict, as ergo's): a nick that names an account is for that account only,
        and a service's nick for nobody. The 433 text why, or "" when the nick may be used."""
        folded = casefold(nick)
        if is_service_nick(folded):
            return SERVICE_RESERVED
        return NICK_RESERVED if folded != account_key and self._account(folded) is not None else ""

    def _account(self, key: str) -> dict | None:
        """The account's record, unless there is none or it was dropped (a dropped account keeps its
        name, so private history kept under it never reaches whoever would register it next)."""
        record = self.state.accounts.get(key)
        return None if record is None or record.get("dropped") else record

    def nick(self, cid: int, new: str) -> None:
        user = self.state.users.get(cid)
        if user is None or user.nick == new:
            return  # nothing changes (or a replay of a change that already happened)
        holder = self.state.nicks.get(casefold(new))
        if holder is not None and holder != cid:
            self._out.append(Reply(cid, (link.D_NICK_REFUSED, cid, new)))
            return
        reserved = self._reserved(new, casefold(user.account)) if holder is None else ""
        if reserved:
            self._out.append(Reply(cid, (link.D_NICK_REFUSED, cid, new, reserved)))
            return
        self._emit((E_NICK, cid, new, self.now))

    # --- accounts: logins (SASL, PASS) and REGISTER ----------------------------------------------
    def login(self, cid: int, key: str, verified: bool, address: str) -> None:
        """The worker ran the SASL exchange and checked the credentials; the hub throttles failures
        (per account and per address), and logs in a registered client (E_LOGIN) or tells the
        worker of one still registering, whose R_REGISTER then names the account. Always answered
        (D_LOGIN), a replay too: its client may wait for it."""
        self._end_check(cid)
        user = self.state.users.get(cid)
        record = self._account(key) if self.accounts else None
        if user is not None and user.account:
            if self.replayed and record is not None and user.account == record["name"]:
                self._login_reply(cid, user.account, N.RPL_LOGGEDIN, "")
            else:
                self._login_reply(cid, "", N.ERR_SASLALREADY, N.TEXTS[N.ERR_SASLALREADY])
            return
        wait = self.throttle.allowed(key, address, self.now)
        if wait:
            self._login_reply(cid, "", N.ERR_SASLFAIL, THROTTLED.format(max(1, round(wait))))
            return
        if not verified or record is None:
            self.throttle.failed(key, address, self.now)
            self._login_reply(cid, "", N.ERR_SASLFAIL, LOGIN_FAILED)
            return
        self.throttle.succeeded(key, address, self.now)
        if user is not None:
            self._emit((E_LOGIN, cid, record["name"]))
        self._login_reply(cid, record["name"], N.RPL_LOGGEDIN, "")

    def _login_reply(self, cid: int, account: str, numeric: str, text: str) -> None:
        self._out.append(Reply(cid, (link.D_LOGIN, cid, account, numeric, text)))

    def login_check(self, cid: int, key: str, address: str) -> None:
        """A worker is about to check a password (argon2id: the costly part of a login): only if the
        throttle allows, counting the checks still in flight, so a throttled client costs no hash.
        The worker checks against the hash sent here, the hub's, so what it checks is what the hub
        had in log order (no replica that may be behind). Always answered: D_LOGIN_CHECK, or D_LOGIN."""
        user = self.state.users.get(cid)
        if user is not None and user.account:
            self._login_reply(cid, "", N.ERR_SASLALREADY, N.TEXTS[N.ERR_SASLALREADY])
            return
        self._end_check(cid)  # replayed after a restart: the new check stands for the one before
        wait = self.throttle.allowed(key, address, self.now)
        if wait:
            self._login_reply(cid, "", N.ERR_SASLFAIL, THROTTLED.format(max(1, round(wait))))
            return
        self.checking[cid] = (key, address)
        self.throttle.began(key, address)
        record = self._account(key) if self.accounts else None
        self._out.append(Reply(cid, (link.D_LOGIN_CHECK, cid, key, record["password"] if record else None)))

    def _end_check(self, cid: int) -> None:
        check = self.checking.pop(cid, None)
        if check is not None:
            self.throttle.ended(*check)

    def account_register(self, cid: int, name: str, email: str, record: dict, via: str = "") -> None:
        """REGISTER (draft/account-registration): the worker checked the name, password and email
        and made the record; the hub makes the account unless it exists, or the name is a nick
        someone else holds, and logs the client in to it. Always answered (D_ACCOUNT_REGISTER)."""
        key = casefold(name)
        user = self.state.users.get(cid)
        existing = self.state.accounts.get(key)
        holder = self.state.nicks.get(key)
        if self.replayed and existing == record:  # made before the restart: answer as then
            code = None
        elif not self.accounts:
            code = names.TEMPORARILY_UNAVAILABLE
        elif user is not None and user.account:
            code = names.ALREADY_AUTHENTICATED
        elif existing is not None or (holder is not None and holder != cid):
            code = names.ACCOUNT_EXISTS
        else:
            code = None
            self._emit((E_ACCOUNT, key, record))
            if user is not None:
                self._emit((E_LOGIN, cid, record["name"]))
        self._out.append(Reply(cid, (link.D_ACCOUNT_REGISTER, cid, record["name"] if code is None else name, code,
                                     via)))

    # --- NickServ: GHOST and REGAIN, and changes to one's own account ------------------------------
    def ghost(self, cid: int, nick: str, regain: bool) -> None:
        """GHOST: the connection holding `nick` quits, if the nick is the asker's account's or its
        user is logged in to that account (as ergo allows). REGAIN: the asker then takes the nick.
        Always answered (D_SERVICE), a replay too: the asker waits for it."""
        user = self.state.users.get(cid)
        if user is None:
            return  # only registered clients reach NickServ
        holder = self.state.nicks.get(casefold(nick))
        target = self.state.users.get(holder) if holder is not None else None
        mine = casefold(user.account)
        if not user.account:
            text = NOT_LOGGED_IN
        elif target is None:
            text = NO_SUCH_NICK.format(nick)
        elif target.cid == cid:
            text = (REGAIN_SELF if regain else GHOST_SELF).format(user.nick)
        elif casefold(target.nick) != mine and casefold(target.account) != mine:
            text = NOT_OWNER.format(target.nick)
        else:
            self._end_check(target.cid)
            self.connections.forget(target.cid)
            self._emit((E_QUIT, target.cid, GHOST_REASON.format(user.nick), self.now))
            self._count_connections()
            if regain and not self._reserved(target.nick, mine):
                # The answer first, then the nick: the E_NICK resumes the asker, so its later lines
                # come after the answer and carry the new nick.
                self._out.append(Reply(cid, (link.D_SERVICE, cid, REGAINED.format(target.nick), False)))
                self._emit((E_NICK, cid, target.nick, self.now))
                return
            text = GHOSTED.format(target.nick)
        self._out.append(Reply(cid, (link.D_SERVICE, cid, text, True)))

    def account_change(self, cid: int, key: str, change: tuple) -> None:
        """NickServ PASSWORD, CERT ADD, CERT DEL and DROP: a change to the account the asker is
        logged in to (the worker made the new hash off the loop). Always answered (D_SERVICE)."""
        user = self.state.users.get(cid)
        record = self._account(key)
        text = NOT_LOGGED_IN
        if user is not None and user.account and casefold(user.account) == key and record is not None:
            kind, args = change[0], change[1:]
            certfps = list(record.get("certfps") or ())
            new = None
            if kind == "password":
                new, text = {**record, "password": args[0], "scram": args[1]}, PASSWORD_CHANGED
            elif kind == "cert add":
                fingerprint = args[0]
                if fingerprint in certfps:
                    text = CERT_ALREADY.format(fingerprint)
                elif self.certificate_owner(fingerprint) is not None:
                    text = CERT_TAKEN.format(fingerprint)
                elif len(certfps) >= MAX_CERTFPS:
                    text = CERT_LIMIT.format(MAX_CERTFPS)
                else:
                    new, text = {**record, "certfps": certfps + [fingerprint]}, CERT_ADDED.format(fingerprint)
            elif kind == "cert del":
                fingerprint = args[0]
                if fingerprint in certfps:
                    certfps.remove(fingerprint)
                    new, text = {**record, "certfps": certfps}, CERT_REMOVED.format(fingerprint)
                else:
                    text = CERT_UNKNOWN.format(fingerprint)
            elif kind == "drop":
                for other in list(self.state.users.values()):
                    if other.account and casefold(other.account) == key:
                        self._emit((E_LOGIN, other.cid, ""))
                new = {"name": record["name"], "email": "", "password": None, "scram": None, "certfps": [],
                       "created": record.get("created"), "dropped": self.now}
                text = DROPPED.format(record["name"])
            if new is not None:
                self._emit((E_ACCOUNT, key, new))
        self._out.append(Reply(cid, (link.D_SERVICE, cid, text, True)))

    def certificate_owner(self, fingerprint: str) -> str | None:
        """The key of the account holding this certificate fingerprint, or None."""
        for key, record in self.state.accounts.items():
            if fingerprint in (record.get("certfps") or ()):
                return key
        return None

    def quit(self, cid: int, reason: str) -> None:
        self.connections.forget(cid)
        self._end_check(cid)
        if cid in self.state.users:
            self._emit((E_QUIT, cid, reason, self.now))
        self._count_connections()

    # --- channels -----------------------------------------------------------------------------
    def join(self, cid: int, name: str, key: str = "") -> None:
        user = self.state.users.get(cid)
        if user is None or casefold(name) in user.channels:
            return
        if len(user.channels) >= self.limits.chanlimit:
            self._refuse(cid, N.ERR_TOOMANYCHANNELS, name)
            return
        folded = casefold(name)
        chan = self.state.channels.get(folded)
        kept = self.dormant.get(folded) if chan is None else None
        if kept is not None:  # checked as it was: its bans, key and limit still hold
            chan = Channel.from_settings(folded, kept)
        refusal = join_refusal(chan, user, key) if chan is not None else None
        if refusal is not None:
            self._refuse(cid, refusal, chan.name)
            return
        if kept is not None:
            del self.dormant[folded]
            self._emit((E_RESTORE, folded, kept))
            name = kept["name"]
        self._emit((E_JOIN, cid, name, self.now))

    def _channel_of_member(self, cid: int, name: str) -> Channel | None:
        """The channel, if it exists and the client is in it; otherwise refuse (403 or 442)."""
        chan = self.state.channels.get(casefold(name))
        if chan is None:
            self._refuse(cid, N.ERR_NOSUCHCHANNEL, name)
        elif cid not in chan.members:
            self._refuse(cid, N.ERR_NOTONCHANNEL, name)
        else:
            return chan
        return None

    def part(self, cid: int, name: str, reason: str) -> None:
        if self._channel_of_member(cid, name):
            self._emit((E_PART, cid, casefold(name), reason))

    def topic(self, cid: int, name: str, text: str) -> None:
        chan = self._channel_of_member(cid, name)
        if chan is None:
            return
        if "t" in chan.modes and OP_STATUS not in chan.members[cid]:
            self._refuse(cid, N.ERR_CHANOPRIVSNEEDED, chan.name)
        elif self.replayed and chan.topic == text:
            return  # set before the restart already
        else:
            self._emit((E_TOPIC, cid, casefold(name), text, self.now))

    # --- channel operator commands ---------------------------------------------------------------
    def _operator_channel(self, cid: int, name: str) -> Channel | None:
        """The channel, if the client is one of its operators; otherwise refuse (403, 442, 482)."""
        chan = self._channel_of_member(cid, name)
        if chan is not None and OP_STATUS not in chan.members[cid]:
            self._refuse(cid, N.ERR_CHANOPRIVSNEEDED, chan.name)
            return None
        return chan

    def _target(self, cid: int, nick: str) -> User | None:
        target = self.state.user_by_nick(nick)
        if target is None:
            self._refuse(cid, N.ERR_NOSUCHNICK, nick)
        return target

    def mode(self, cid: int, name: str, changes: tuple) -> None:
        chan = self._operator_channel(cid, name)
        if chan is None:
            return
        key, now = casefold(chan.name), self.now
        applied = []
        for sign, letter, arg in changes:  # each checked against the state the previous ones left
            change = self._mode_change(cid, chan, sign == "+", letter, arg)
            if change is not None:
                self.state.apply((E_MODE, cid, key, (change,), now))
                applied.append(change)
        if applied:  # workers apply them together; the hub's state has them already
            self._out.append((E_MODE, cid, key, tuple(applied), now))

    def _mode_change(self, cid: int, chan: Channel, add: bool, letter: str, arg: str) -> tuple | None:
        """One change as it will take effect, or None when it changes nothing or is refused."""
        sign = "+" if add else "-"
        if letter in STATUS_OF_MODE:
            target = self._target(cid, arg)
            if target is None:
                return None
            if target.cid not in chan.members:
                self._refuse(cid, N.ERR_USERNOTINCHANNEL, target.nick, chan.name)
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
                self._refuse(cid, N.ERR_BANLISTFULL, chan.name, letter)
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

    def rename(self, cid: int, name: str, new_name: str, reason: str) -> None:
        """RENAME (IRCv3 draft/channel-rename), for the channel's operators."""
        chan = self._operator_channel(cid, name)
        if chan is None:
            return
        refusal = rename_refusal(self.state.channels, chan, new_name)
        if refusal is not None:
            self._fail(cid, "RENAME", refusal[0], chan.name, new_name, refusal[1])
        elif new_name != chan.name:  # else nothing changes (or a replayed rename already happened)
            self._emit((E_RENAME, cid, chan.folded, new_name, reason))

    def kick(self, cid: int, name: str, nick: str, reason: str) -> None:
        chan = self._operator_channel(cid, name)
        if chan is None:
            return
        target = self._target(cid, nick)
        if target is None:
            return
        if target.cid not in chan.members:
            self._refuse(cid, N.ERR_USERNOTINCHANNEL, target.nick, chan.name)
        else:
            self._emit((E_KICK, cid, casefold(chan.name), target.cid, reason))

    def invite(self, cid: int, nick: str, name: str) -> None:
        target = self._target(cid, nick)
        if target is None:
            return
        chan = self._channel_of_member(cid, name)
        if chan is None:
            return
        if "i" in chan.modes and OP_STATUS not in chan.members[cid]:
            self._refuse(cid, N.ERR_CHANOPRIVSNEEDED, chan.name)
        elif target.cid in chan.members:
            self._refuse(cid, N.ERR_USERONCHANNEL, target.nick, chan.name)
        else:
            self._emit((E_INVITE, cid, casefold(chan.name), target.cid))

    # --- user state ----------------------------------------------------------------------------
    def user_mode(self, cid: int, changes: str) -> None:
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
            self._emit((E_UMODE, cid, join_mode_changes(applied)))

    def oper(self, cid: int) -> None:
        """The worker has checked the password; the hub grants +o once."""
        user = self.state.users.get(cid)
        if user is not None and "o" not in user.modes:
            self._emit((E_UMODE, cid, "+o"))

    def away(self, cid: int, text: str) -> None:
        user = self.state.users.get(cid)
        if user is not None and not (self.replayed and user.away == text):
            self._emit((E_AWAY, cid, text))

    def setname(self, cid: int, realname: str) -> None:
        if cid in self.state.users:
            self._emit((E_SETNAME, cid, realname))

    # --- operator powers -----------------------------------------------------------------------
    def _operator(self, cid: int) -> User | None:
        user = self.state.users.get(cid)
        if user is not None and "o" not in user.modes:
            self._refuse(cid, N.ERR_NOPRIVILEGES)
            return None
        return user

    def kill(self, cid: int, nick: str, reason: str) -> None:
        oper = self._operator(cid)
        target = oper and self._target(cid, nick)
        if target:
            self.connections.forget(target.cid)
            self._end_check(target.cid)
            self._emit((E_QUIT, target.cid, f"Killed ({oper.nick} ({reason}))", self.now))
            self._count_connections()

    def wallops(self, cid: int, line: bytes) -> None:
        if self._operator(cid):
            self._out.append((M_WALLOPS, line))

    def chghost(self, cid: int, nick: str, user: str, host: str) -> None:
        target = self._operator(cid) and self._target(cid, nick)
        if target and (target.user, target.host) != (user, host):
            self._emit((E_CHGHOST, target.cid, user, host))

    # --- messages ------------------------------------------------------------------------------
    def channel_message(self, cid: int, name: str, line: bytes, origin: str, flags: int, tags: str) -> None:
        key = casefold(name)
        chan = self.state.channels.get(key)
        to_status = ""
        if chan is None:
            if name[:1] in STATUS_RANK:  # STATUSMSG (@#chan): routed under that key; workers pick recipients
                to_status, chan = name[0], self.state.channels.get(key[1:])
            if chan is None:
                if not flags & link.MSG_QUIET:
                    self._refuse(cid, N.ERR_NOSUCHCHANNEL, name[len(to_status):])
                return
        status = chan.members.get(cid)
        # The hot path skips the refusal check when it cannot refuse: a member is refused only for +m,
        # a ban or mute, a CTCP or a STATUSMSG (tests/test_channel_lists.py holds it to that).
        if status is None or flags & link.MSG_CTCP or to_status or \
                (not status and ("m" in chan.modes or chan.bans)):
            refusal = speak_refusal(chan, status, self.state.users.get(cid), bool(flags & link.MSG_CTCP),
                                    to_status)
            if refusal is not None:
                if not flags & link.MSG_QUIET:
                    self._refuse(cid, N.ERR_CANNOTSENDTOCHAN, chan.name, refusal)
                return
        self._out.append((M_CHANMSG, key, cid, line, origin, flags, tags))

    def user_message(self, cid: int, nick: str, line: bytes, origin: str, flags: int, tags: str) -> None:
        target = self.state.nicks.get(casefold(nick))
        if target is None:
            if not flags & link.MSG_QUIET:
                self._refuse(cid, N.ERR_NOSUCHNICK, nick)
            return
        self._out.append((M_USERMSG, target, cid, line, origin, flags, tags))
        away = self.state.users[target].away
        if away and not flags & (link.MSG_QUIET | link.MSG_TAGMSG):
            self._refuse(cid, N.RPL_AWAY, self.state.users[target].nick, away)

    # --- history (IRCv3 chathistory, soju.im/search) ---------------------------------------------
    def history_query(self, cid: int, query: tuple) -> None:
        """Nobody reads history they may not see: a channel's needs membership, and private rows
        are the asker's own (stored under each party, see chatstate.state.identity). Every query
        is answered, a replayed one too: its asker waits for the answer."""
        user = self.state.users.get(cid)
        if user is None:
            return
        owner = identity(user)
        target = query_target(query)
        scope = None
        if target is not None:
            if is_channel_name(target):
                if casefold(target) in user.channels:
                    scope = ("", casefold(target))
            elif is_valid_nick(target, self.limits.nicklen):
                scope = (owner, casefold(target))
            if scope is None:
                self._out.append(Reply(cid, (link.D_FAIL, cid, *refusal(query))))
                return
        self._out.append(Ask(cid, (cid, owner, scope, user.channels, query)))

    # --- message redaction (IRCv3 draft/message-redaction) ------------------------------------------
    def redact(self, cid: int, target: str, msgid: str, line: bytes, origin: str) -> None:
        """REDACT, first step: may the asker name this target at all? A channel's messages are
        looked up for its members (403, 442 otherwise); private ones in the asker's own history,
        with the current holder of the nick as the other party if it is the same person (its copy
        says so). The answer comes back as REDACT_FOUND. Every path ends with D_ANSWERED."""
        user = self.state.users.get(cid)
        place = None
        if user is not None:
            if is_channel_name(target):
                chan = self._channel_of_member(cid, target)
                if chan is not None:
                    place, peer = ("", chan.folded), ""
            else:
                holder = self.state.user_by_nick(target)
                place, peer = (identity(user), casefold(target)), identity(holder) if holder is not None else ""
        if place is not None:
            if self.history:
                context = (cid, target, msgid, line, origin, peer, self.replayed)
                self._out.append(Ask(cid, (msgid, place, peer, context), S_LOOKUP))
                return
            self._refuse_redact(cid, redaction.UNKNOWN_MSGID, target, msgid)  # nothing is kept
        self._answered(cid, redaction.REDACT)

    def redact_found(self, context: tuple, found: tuple | None) -> None:
        """REDACT, second step, on what the store found (`found`: the row at the looked-up place
        and the peer's copy, or None when the store failed): the author may redact a message, and
        so may an operator of its channel; only a PRIVMSG, NOTICE or TAGMSG. Membership is
        checked again: the state may have moved on while the store looked."""
        cid, target, msgid, line, origin, peer, self.replayed = context
        user = self.state.users.get(cid)
        if user is None:
            self._answered(cid, redaction.REDACT)
            return
        row, peer_row = (None, None) if found is None else (Record._make(r) if r else None for r in found)
        recipients: tuple[int, ...] = ()
        if is_channel_name(target):
            chan = self._channel_of_member(cid, target)
            if chan is None:
                self._answered(cid, redaction.REDACT)
                return
            key, operator = chan.folded, OP_STATUS in chan.members[cid]
        else:
            key, operator = "", False
            holder = self.state.user_by_nick(target)
            if holder is not None and holder.cid != cid and peer_row is not None and identity(holder) == peer:
                recipients = (holder.cid,)
        if found is None:
            code, text = redaction.REDACT_FORBIDDEN, "The message could not be deleted"
        elif row is None:
            code, text = redaction.UNKNOWN_MSGID, None
        elif row.kind not in redaction.REDACTABLE_KINDS:
            code, text = redaction.REDACT_FORBIDDEN, "Only a PRIVMSG, NOTICE or TAGMSG can be deleted"
        elif row.author != identity(user) and not operator:
            code, text = redaction.REDACT_FORBIDDEN, None
        else:
            code = text = None
            self._out.append((M_REDACT, key, cid, line, origin, msgid, recipients))
        if code is not None:
            self._refuse_redact(cid, code, target, msgid, text)
        self._answered(cid, redaction.REDACT)

    def _refuse_redact(self, cid: int, code: str, target: str, msgid: str, text: str | None = None) -> None:
        command, code, params = redaction.refusal(code, target, msgid, text)
        self._fail(cid, command, code, *params)

    def _answered(self, cid: int, command: str) -> None:
        """Everything answering the command the client waits for has been sent: it resumes. Sent
        for a replayed request too: its client may be waiting for it."""
        self._out.append(Reply(cid, (link.D_ANSWERED, cid, command)))

    # --- read markers (IRCv3 draft/read-marker) --------------------------------------------------------
    def markread(self, cid: int, targets: tuple[str, ...], time_us: int | None, joins: tuple | None) -> None:
        """MARKREAD sets (time_us) or gets the marker of targets[0]; before a JOIN, the markers of
        the channels joined. A marker is the asker's own (chatstate.state.identity), of any target
        it names: nobody else's is read. A set is clamped to now (readmarker.clamp). Answered with
        one D_MARKREAD, from the store or, without one, here."""
        user = self.state.users.get(cid)
        if time_us is not None:
            time_us = readmarker.clamp(time_us, self.now)
        if user is None or not self.history:
            times = None if time_us is not None else (None,) * len(targets)
            self._out.append(Reply(cid, (link.D_MARKREAD, cid, targets, times, joins)))
            return
        keys = tuple(casefold(target) for target in targets)
        self._out.append(Ask(cid, (cid, identity(user), keys, targets, time_us, joins), S_MARKREAD))

    def display_targets(self, rows: list) -> list:
        """TARGETS rows name conversations as the store keeps them (casefolded): shown as the
        channel or the online user spells itself now, when there is one."""
        shown = []
        for key, time_us in rows:
            chan = self.state.channels.get(key)
            if chan is not None:
                key = chan.name
            else:
                cid = self.state.nicks.get(key)
                if cid is not None:
                    key = self.state.users[cid].nick
            shown.append((key, time_us))
        return shown

    # --- plumbing for workers --------------------------------------------------------------------
    def barrier(self, cid: int, token: int) -> None:
        """Everything this client asked for before has been decided: its worker hears so after it."""
        self._out.append(Reply(cid, (link.D_BARRIER, cid, token)))

    def forward(self, cid: int, item: tuple) -> None:
        self._out.append(Reply(cid, item))


def join_mode_changes(changes: list[str]) -> str:
    """['+i', '+w', '-o'] -> '+iw-o'."""
    out, sign = [], ""
    for change in changes:
        if change[0] != sign:
            sign = change[0]
            out.append(sign)
        out.append(change[1])
    return "".join(out)
