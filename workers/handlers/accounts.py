"""Accounts on the worker: SASL (AUTHENTICATE, ircv3 sasl 3.1/3.2), REGISTER
(draft/account-registration) and PASS account:password, and the hub's answers to them.

The worker runs the exchange (`ircproto.sasl.Authentication`, one per session) against its
replica's accounts (`State.accounts`) and does the slow work off the loop (argon2id checks and
hashes: `ServerView.run_blocking`); the hub decides (hub/policy.py `login`, `account_register`):
it throttles failures and logs the client in, in log order. While the worker or the hub is busy
with one, the client's later lines wait (`Session.await_answer`), so answers stay in order.

Passwords never reach a log: they live only in the exchange's step (repr=False) and the
function hashing or checking them.
"""
from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Callable, NamedTuple

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

MECHANISMS = (sasl.PLAIN, sasl.SCRAM_SHA_256)  # EXTERNAL needs client certificates: not yet
PLAINTEXT_REFUSED = "SASL PLAIN is not allowed over an unencrypted connection; use TLS or SCRAM-SHA-256"


def enabled(s: Session) -> bool:
    """Accounts live in the history database: none without it."""
    return s.server.config.history.enabled


def _mask(s: Session) -> str:
    return f"{s.nick or '*'}!{s.user or '*'}@{s.host}"


def _plaintext_allowed(s: Session) -> bool:
    if s.tls or s.server.config.accounts.allow_plaintext:
        return True
    try:
        return ipaddress.ip_address(s.host.lstrip("0") if s.host.startswith("0:") else s.host).is_loopback
    except ValueError:
        return s.host == "localhost"


# --- AUTHENTICATE ----------------------------------------------------------------------------------
def authenticate(s: Session, msg: Message) -> None:
    if not enabled(s):
        s.numeric(N.ERR_SASLFAIL)
        return
    param = msg.params[0]
    if s.sasl is None:
        s.sasl = sasl.Authentication(mechanisms=MECHANISMS)
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
    elif isinstance(step, sasl.VerifyPassword):
        if not _plaintext_allowed(s):
            auth.fail("plaintext")
            s.numeric_as_given(N.ERR_SASLFAIL, PLAINTEXT_REFUSED)
            return
        record = s.server.state.accounts.get(step.account)
        s.await_answer()
        s.server.run_blocking(lambda ok: _verified(s, step, ok), credentials.verify_password,
                              record.get("password") if record else None, step.password)
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
    if s.closed:
        return
    step = s.sasl.verified(question, ok)
    if isinstance(step, (sasl.Success, sasl.Failure)) and (isinstance(step, sasl.Success) or step.account):
        s.request((link.R_LOGIN, s.cid, step.account, isinstance(step, sasl.Success), s.host))
        return  # D_LOGIN resumes the client
    if isinstance(step, sasl.Failure):
        s.numeric(step.numeric)
    s.resume()


# --- PASS account:password (as ergo allows, when the server has no password) --------------------------
class PassLogin(NamedTuple):
    """A login from PASS, held where a SASL exchange would be: once the hub has answered it,
    registration goes on (`then`), logged in or not."""
    then: Callable[[Session], None]


def pass_login_pending(s: Session) -> bool:
    """PASS gave account:password, the server wants no password of its own, and nobody is logged in."""
    return (bool(s.password) and ":" in s.password and not s.account and enabled(s)
            and not s.server.config.server.password)


def login_with_pass(s: Session, then: Callable[[Session], None]) -> None:
    account, _, secret = s.password.partition(":")  # type: ignore[union-attr]
    s.password = None  # used once
    if not _plaintext_allowed(s):
        s.numeric_as_given(N.ERR_SASLFAIL, PLAINTEXT_REFUSED)
        then(s)
        return
    key = casefold(account)
    record = s.server.state.accounts.get(key)
    s.sasl = PassLogin(then)
    s.await_answer()
    s.server.run_blocking(lambda ok: _pass_checked(s, key, ok), credentials.verify_password,
                          record.get("password") if record else None, secret)


def _pass_checked(s: Session, key: str, ok: bool) -> None:
    if not s.closed:
        s.request((link.R_LOGIN, s.cid, key, ok, s.host))  # D_LOGIN answers, and registration goes on


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
    from_pass = s.sasl if isinstance(s.sasl, PassLogin) else None
    if from_pass is not None:
        s.sasl = None
    if account:
        s.account = account
        s.numeric_as_given(N.RPL_LOGGEDIN, _mask(s), account, f"You are now logged in as {account}")
        if s.sasl is not None:
            s.numeric(N.RPL_SASLSUCCESS)
    else:
        s.numeric_as_given(numeric, text)
    s.resume()
    if from_pass is not None:
        from_pass.then(s)


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
    if s.account:
        _fail(s, names.ALREADY_AUTHENTICATED, s.account)
        return
    code = names.check_account_name(param, s.nick, nicklen=s.server.config.limits.nicklen)
    name = names.requested_account_name(param, s.nick) or param
    email = "" if email == "*" else email
    if code is None:
        if email and not names.check_email(email):
            code = names.INVALID_EMAIL
        elif not email and settings.registration_requires_email:
            code = names.INVALID_EMAIL
        else:
            code = names.check_password_strength(password)
    if code is None and names.account_key(name) in s.server.state.accounts:
        code = names.ACCOUNT_EXISTS
    if code is not None:
        _fail(s, code, name)
        return
    s.await_answer()
    s.server.run_blocking(lambda record: _hashed(s, name, email, record), make_record, name, email, password)


def _hashed(s: Session, name: str, email: str, record: dict) -> None:
    if not s.closed:
        s.request((link.R_ACCOUNT_REGISTER, s.cid, name, email, record))  # D_ACCOUNT_REGISTER resumes


def on_account_register(w: "HubItemTarget", cid: int, name: str, code: str | None) -> None:
    s = w.sessions.get(cid)
    if s is None or not s.waiting:
        return  # a second answer, to a request replayed after a hub restart
    if code is not None:
        _fail(s, code, name)
    else:
        s.account = name
        s.send("REGISTER", names.SUCCESS, name, names.MESSAGES[names.SUCCESS])
        s.numeric_as_given(N.RPL_LOGGEDIN, _mask(s), name, f"You are now logged in as {name}")
    s.resume()


def account_key(s: Session) -> str:
    return casefold(s.account) if s.account else ""
