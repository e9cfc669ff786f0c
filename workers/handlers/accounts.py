"""Accounts on the worker: SASL (AUTHENTICATE, ircv3 sasl 3.1/3.2), REGISTER
(draft/account-registration) and PASS account:password, and the hub's answers to them; NickServ
(workers/handlers/nickserv.py) logs in and registers through the same functions.

The worker runs the exchange (`ircproto.sasl.Authentication`, one per session) against its
replica's accounts (`State.accounts`; AUTHENTICATE waits for a barrier first, so the replica
holds what the hub had) and does the slow work off the loop (argon2id checks and hashes:
`ServerView.run_blocking`); the hub decides (hub/policy.py `login`, `account_register`): it
throttles failures and logs the client in, in log order. A password is checked only once the hub
has allowed it (`check_password`: R_LOGIN_CHECK, then D_LOGIN_CHECK with the hub's own hash), so
a throttled client costs no argon2 computation, and PASS and NickServ IDENTIFY, which wait for no
barrier, still check against the account as the hub has it. While the worker or the hub is busy
with one, the client's later lines wait (`Session.await_answer`), so answers stay in order.

Passwords never reach a log: they live only in the exchange's step (repr=False) and the
function hashing or checking them.
"""
from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from accounts import credentials, names
from accounts.store import make_record
from ipc import link
from ircproto import numerics as N
from ircproto import sasl
from ircproto.casemap import casefold
from ircproto.message import Message
from workers.session import Session

if TYPE_CHECKING:
    from workers.item_target import HubItemTarget

log = logging.getLogger("hubchat.accounts")

# EXTERNAL is offered on every connection, as ergo does (the caps table is one for all); without a
# client certificate it fails at once with 904.
MECHANISMS = (sasl.PLAIN, sasl.SCRAM_SHA_256, sasl.EXTERNAL)
PLAINTEXT_REFUSED = "SASL PLAIN is not allowed over an unencrypted connection; use TLS or SCRAM-SHA-256"
PASSWORD_PLAINTEXT_REFUSED = "A password may not be sent over an unencrypted connection; use TLS"


def enabled(s: Session) -> bool:
    """Accounts live in the history database: none without it."""
    return s.server.config.history.enabled


def _mask(s: Session) -> str:
    return f"{s.nick or '*'}!{s.user or '*'}@{s.host}"


def notice_from_nickserv(s: Session, text: str) -> None:
    s.send("NOTICE", s.display_nick, text, source=names.NICKSERV_SOURCE)


def plaintext_allowed(s: Session) -> bool:
    """A password may cross this connection: TLS, loopback, or `accounts.allow_plaintext`."""
    if s.tls or s.server.config.accounts.allow_plaintext:
        return True
    try:
        ip = ipaddress.ip_address(s.host.lstrip("0") if s.host.startswith("0:") else s.host)
        return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback  # a dual-stack listener's ::ffff:127.0.0.1
    except ValueError:
        return s.host == "localhost"


def certificate_owner(s: Session, fingerprint: str | None, authzid: str | None = None) -> str | None:
    """The name of the account in the replica holding this certificate fingerprint (the one
    `authzid` names, when given, if it holds it), or None."""
    if not fingerprint:
        return None
    accounts = s.server.state.accounts
    if authzid is not None:
        record = accounts.get(casefold(authzid))
        candidates = [record] if record is not None else []
    else:
        candidates = accounts.values()
    for record in candidates:
        if fingerprint in (record.get("certfps") or ()) and not record.get("dropped"):
            return record["name"]
    return None


# --- a password check: the hub's throttle first, then the hash ---------------------------------------
class OtherLogin:
    """A login outside SASL (PASS, NickServ IDENTIFY), held in `s.sasl` while the hub answers it."""

    def answered(self, s: Session, account: str, numeric: str, text: str) -> None:
        if account:
            s.numeric_as_given(N.RPL_LOGGEDIN, _mask(s), account, f"You are now logged in as {account}")
        else:
            s.numeric_as_given(numeric, text)

    def after(self, s: Session) -> None:
        """What follows the answer, once the client is resumed."""


@dataclass(eq=False, slots=True)
class PasswordCheck:
    """A password waiting for the hub's leave to be checked, then being checked: held in `s.sasl`
    meanwhile (the client's lines wait), and `restore` (what `s.sasl` held: the SASL exchange,
    or an `OtherLogin`) goes back once the check is over. `question` is the SASL exchange's, if
    it is one."""
    key: str
    password: str = field(repr=False)
    restore: Any
    question: sasl.VerifyPassword | None = None
    hashing: bool = False


def check_password(s: Session, key: str, password: str, restore: Any,
                   question: sasl.VerifyPassword | None = None) -> None:
    s.sasl = PasswordCheck(key, password, restore, question)
    s.ask_hub((link.R_LOGIN_CHECK, s.cid, key, s.host))  # D_LOGIN_CHECK, or D_LOGIN refusing it


def on_login_check(w: "HubItemTarget", cid: int, key: str, hashed: str | None) -> None:
    """D_LOGIN_CHECK: the hub allows the check; the hash is computed off the loop."""
    s = w.sessions.get(cid)
    check = s.sasl if s is not None else None
    if not isinstance(check, PasswordCheck) or check.hashing or check.key != key or not s.waiting:
        return  # a second answer, to a request replayed after a hub restart
    check.hashing = True
    log.debug("client %x: checking a password", cid)  # tests count these: a throttled client gets none
    s.server.run_blocking(lambda ok: _checked(s, check, ok), credentials.verify_password, hashed, check.password)


def _checked(s: Session, check: PasswordCheck, ok: bool) -> None:
    if s.closed or s.sasl is not check:
        return
    s.sasl = check.restore
    if check.question is not None:
        _verified(s, check.question, ok)
    else:
        s.request((link.R_LOGIN, s.cid, check.key, ok, s.host))  # D_LOGIN answers


# --- AUTHENTICATE ----------------------------------------------------------------------------------
def authenticate(s: Session, msg: Message) -> None:
    if not enabled(s):
        s.numeric(N.ERR_SASLFAIL)
        return
    param = msg.params[0]
    if not isinstance(s.sasl, sasl.Authentication):
        s.sasl = sasl.Authentication(mechanisms=MECHANISMS, fingerprint=s.certfp)
    if s.account and not s.sasl.in_progress:
        s.numeric(N.ERR_SASLABORTED if param == "*" else N.ERR_SASLALREADY)
        return
    _step(s, s.sasl.receive(param))


def _step(s: Session, step: sasl.Step) -> None:
    """Do what the exchange says; a step answered later (a hash, the hub) holds the client."""
    auth = s.sasl
    if isinstance(step, sasl.Challenge):
        for line in step.lines():
            s.send("AUTHENTICATE", line)
    elif isinstance(step, sasl.NeedCredentials):
        record = s.server.state.accounts.get(step.account)
        _step(s, auth.credentials(step, credentials.scram_keys(record.get("scram") if record else None)))
    elif isinstance(step, sasl.NeedCertificateOwner):
        _step(s, auth.credentials(step, certificate_owner(s, step.fingerprint, step.authzid)))
    elif isinstance(step, sasl.VerifyPassword):
        if not plaintext_allowed(s):
            auth.fail("plaintext")
            s.numeric_as_given(N.ERR_SASLFAIL, PLAINTEXT_REFUSED)
            return
        check_password(s, step.account, step.password, auth, step)
    elif isinstance(step, sasl.Success):
        s.ask_hub((link.R_LOGIN, s.cid, step.account, True, s.host))
    elif isinstance(step, sasl.Failure):
        log.debug("client %x: SASL failed: %s", s.cid, step.reason)  # never a password: reasons name none
        if step.mechanisms:
            s.numeric(N.RPL_SASLMECHS, ",".join(MECHANISMS))
        if step.account is not None:  # wrong credentials: the hub counts them (and answers 904)
            s.ask_hub((link.R_LOGIN, s.cid, step.account, False, s.host))
        else:
            s.numeric(step.numeric)
    elif isinstance(step, sasl.Aborted):
        s.numeric(N.ERR_SASLABORTED)


def _verified(s: Session, question: sasl.VerifyPassword, ok: bool) -> None:
    """The password check is back (on the loop): the hub decides; the client still waits."""
    if s.closed or not isinstance(s.sasl, sasl.Authentication):
        return
    step = s.sasl.verified(question, ok)
    if isinstance(step, (sasl.Success, sasl.Failure)) and (isinstance(step, sasl.Success) or step.account):
        s.request((link.R_LOGIN, s.cid, step.account, isinstance(step, sasl.Success), s.host))
        return  # D_LOGIN resumes the client
    if isinstance(step, sasl.Failure):
        s.numeric(step.numeric)
    s.resume()


# --- PASS account:password (as ergo allows, when the server has no password) --------------------------
class PassLogin(OtherLogin):
    """A login from PASS: once the hub has answered it, registration goes on (`then`), logged in or not."""
    __slots__ = ("then",)

    def __init__(self, then: Callable[[Session], None]) -> None:
        self.then = then

    def after(self, s: Session) -> None:
        self.then(s)


def pass_login_pending(s: Session) -> bool:
    """PASS gave account:password, the server wants no password of its own, and nobody is logged in."""
    return (bool(s.password) and ":" in s.password and not s.account and enabled(s)
            and not s.server.config.server.password)


def login_with_pass(s: Session, then: Callable[[Session], None]) -> None:
    account, _, secret = s.password.partition(":")  # type: ignore[union-attr]
    s.password = None  # used once
    if not plaintext_allowed(s):
        s.numeric_as_given(N.ERR_SASLFAIL, PLAINTEXT_REFUSED)
        then(s)
        return
    check_password(s, casefold(account), secret, PassLogin(then))  # D_LOGIN answers, and registration goes on


def abort_on_registration(s: Session) -> None:
    """sasl-3.1: a client that ends registration mid-exchange has aborted it."""
    if isinstance(s.sasl, sasl.Authentication) and s.sasl.in_progress:
        s.sasl.abort()
        s.numeric(N.ERR_SASLABORTED)


def on_login(w: "HubItemTarget", cid: int, account: str, numeric: str, text: str) -> None:
    """D_LOGIN: the hub's decision on a login this worker asked for."""
    s = w.sessions.get(cid)
    if s is None or not s.waiting:
        return  # a second answer, to a request replayed after a hub restart
    if isinstance(s.sasl, PasswordCheck):  # refused before the hash (the throttle)
        s.sasl = s.sasl.restore
    if account:
        s.account = account
    pending = s.sasl
    if isinstance(pending, OtherLogin):
        s.sasl = None
        pending.answered(s, account, numeric, text)
        s.resume()
        pending.after(s)
        return
    if isinstance(pending, sasl.Authentication) and pending.in_progress:
        pending.fail("refused by the hub")  # the exchange waited for the password check
    if account:
        s.numeric_as_given(N.RPL_LOGGEDIN, _mask(s), account, f"You are now logged in as {account}")
        if pending is not None:
            s.numeric(N.RPL_SASLSUCCESS)
    else:
        s.numeric_as_given(numeric, text)
    s.resume()


# --- REGISTER ------------------------------------------------------------------------------------------
def _fail(s: Session, code: str, account: str) -> None:
    s.send("FAIL", "REGISTER", code, account or "*", names.MESSAGES[code])


def register(s: Session, msg: Message) -> None:
    """REGISTER <account> <email | *> <password>."""
    settings = s.server.config.accounts
    param = msg.params[0] if msg.params else "*"
    if not enabled(s) or not settings.registration_enabled:
        _fail(s, names.TEMPORARILY_UNAVAILABLE, param)
        return
    if len(msg.params) < 3:
        s.send("FAIL", "REGISTER", "NEED_MORE_PARAMS", "Usage: REGISTER <account> <email | *> <password>")
        return
    if not s.registered and not settings.registration_before_connect:
        s.send("FAIL", "REGISTER", names.COMPLETE_CONNECTION_REQUIRED, "*",
               names.MESSAGES[names.COMPLETE_CONNECTION_REQUIRED])
        return
    _, email, password = msg.params[:3]
    name = names.requested_account_name(param, s.nick) or param
    code = registration_refusal(s, param, email, password)
    if code == PASSWORD_PLAINTEXT_REFUSED:
        s.send("FAIL", "REGISTER", names.UNACCEPTABLE_PASSWORD, name, code)
    elif code is not None:
        _fail(s, code, s.account if code == names.ALREADY_AUTHENTICATED else name)
    else:
        start_registration(s, name, "" if email == "*" else email, password)


def registration_refusal(s: Session, param: str, email: str, password: str) -> str | None:
    """Why REGISTER (or NickServ REGISTER) must refuse: a FAIL REGISTER code, or
    PASSWORD_PLAINTEXT_REFUSED (the same rule as SASL PLAIN's: a password crosses only TLS or
    loopback unless `accounts.allow_plaintext`); None when the worker may hash and ask the hub."""
    if s.account:
        return names.ALREADY_AUTHENTICATED
    code = names.check_account_name(param, s.nick, nicklen=s.server.config.limits.nicklen)
    name = names.requested_account_name(param, s.nick) or param
    email = "" if email == "*" else email
    if code is None:
        if email and not names.check_email(email):
            code = names.INVALID_EMAIL
        elif not email and s.server.config.accounts.registration_requires_email:
            code = names.INVALID_EMAIL
        else:
            code = names.check_password_strength(password)
    if code is None and not plaintext_allowed(s):
        return PASSWORD_PLAINTEXT_REFUSED
    if code is None and names.account_key(name) in s.server.state.accounts:
        code = names.ACCOUNT_EXISTS
    return code


def start_registration(s: Session, name: str, email: str, password: str, via: str = "") -> None:
    """Hash off the loop, then ask the hub (D_ACCOUNT_REGISTER answers; the client waits)."""
    s.await_answer()
    s.server.run_blocking(lambda record: _hashed(s, name, email, record, via), make_record, name, email, password)


def _hashed(s: Session, name: str, email: str, record: dict, via: str) -> None:
    if not s.closed:
        s.request((link.R_ACCOUNT_REGISTER, s.cid, name, email, record, via))  # D_ACCOUNT_REGISTER resumes


REGISTERED_VIA_NICKSERV = "Account {} registered; you are now logged in"


def on_account_register(w: "HubItemTarget", cid: int, name: str, code: str | None, via: str = "") -> None:
    s = w.sessions.get(cid)
    if s is None or not s.waiting:
        return  # a second answer, to a request replayed after a hub restart
    if code is not None:
        if via:
            notice_from_nickserv(s, names.MESSAGES[code])
        else:
            _fail(s, code, name)
    else:
        s.account = name
        if via:
            notice_from_nickserv(s, REGISTERED_VIA_NICKSERV.format(name))
        else:
            s.send("REGISTER", names.SUCCESS, name, names.MESSAGES[names.SUCCESS])
        s.numeric_as_given(N.RPL_LOGGEDIN, _mask(s), name, f"You are now logged in as {name}")
    s.resume()


def account_key(s: Session) -> str:
    return casefold(s.account) if s.account else ""
