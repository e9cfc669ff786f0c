"""NickServ, for clients that speak neither SASL nor REGISTER: `/msg NickServ <command> [args]`,
or the NS and NICKSERV commands. Its commands are one table (`SUBCOMMANDS`); HELP shows their
syntax and help as written there.

NickServ is no user: every worker answers it itself, so a PRIVMSG to it never reaches the hub,
the log or history (it carries passwords), and it works alike from every worker. It uses the
same store and the same rules as REGISTER and SASL (workers/handlers/accounts.py): account names
and password strength (`accounts.names`), the plaintext rule, the throttle before any password
hash, and the hub's decisions (GHOST and REGAIN, and changes to one's own account, in
hub/policy.py). A message to NickServ waits for a barrier first, as AUTHENTICATE does
(`addressed`), so what it reads from the replica (INFO, CERT LIST, a certificate's account) is
what the hub had. Its nick is reserved (433 for anyone who asks for it), and WHOIS answers for it.
Answers are NOTICEs from `NickServ!NickServ@services.`, as ergo's are from its NickServ.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from accounts import credentials, names
from ipc import link
from ircproto import numerics as N
from ircproto.casemap import casefold, is_valid_nick
from ircproto.message import Message
from workers.handlers import accounts
from workers.handlers.accounts import notice_from_nickserv as notice
from workers.session import Session

if TYPE_CHECKING:
    from workers.item_target import HubItemTarget

INTRO = "NickServ lets you register, log in to, and manage an account. Commands:"
UNKNOWN = "Unknown command {}. Send HELP for the list"
SYNTAX = "Syntax: {}"
NOT_LOGGED_IN = "You are not logged in to an account"
UNAVAILABLE = "Accounts are not available on this server"
REGISTRATION_DISABLED = "Registration is disabled on this server"
ALREADY_LOGGED_IN = "You are already logged in as {}"
NO_CERTIFICATE = "You are not using a TLS client certificate"
NO_CERTIFICATE_OWNER = "No account holds your TLS client certificate"
BAD_FINGERPRINT = "That is not a SHA-256 certificate fingerprint (64 hexadecimal digits)"
NOT_REGISTERED = "Account {} is not registered"
WAS_DROPPED = "Account {} was dropped; its name cannot be registered again"
LOGGED_IN = "You are now logged in as {}"
_FINGERPRINT = re.compile(r"[0-9a-f]{64}\Z")


@dataclass(frozen=True, slots=True)
class Subcommand:
    handler: Callable[[Session, list[str]], None]
    syntax: str
    help: str  # what HELP <command> shows after the syntax
    short: str  # its line in HELP
    min_args: int = 0
    max_args: int | None = None
    login: bool = False  # only for a client logged in to an account


def fingerprint(text: str) -> str | None:
    """A SHA-256 fingerprint as hubchat keeps it (64 lowercase hex digits), from hex with or
    without colons, in any case; None if it is not one."""
    folded = text.replace(":", "").lower()
    return folded if _FINGERPRINT.match(folded) else None


def route(text: str) -> tuple[str, list[str], str | None]:
    """A message to NickServ as (command, arguments, what is wrong with them, or None). Pure.
    SET PASSWORD and PASSWD are PASSWORD."""
    words = text.split()
    if not words:
        return "", [], UNKNOWN.format("(none)")
    name, args = words[0].upper(), words[1:]
    if name == "SET" and args and args[0].upper() == "PASSWORD":
        name, args = "PASSWORD", args[1:]
    elif name == "PASSWD":
        name = "PASSWORD"
    found = SUBCOMMANDS.get(name)
    if found is None:
        return name, args, UNKNOWN.format(name)
    if len(args) < found.min_args or (found.max_args is not None and len(args) > found.max_args):
        return name, args, SYNTAX.format(found.syntax)
    return name, args, None


def addressed(msg: Message) -> bool:
    """A PRIVMSG to NickServ (a reads_state test of the command table: it is cheap for all others)."""
    params = msg.params
    return bool(params) and params[0][:1] in "Nn" and names.is_service_nick(params[0])


def message(s: Session, text: str) -> None:
    """What the client said to NickServ."""
    name, args, problem = route(text)
    if problem is not None:
        notice(s, problem)
        return
    if not accounts.enabled(s):
        notice(s, UNAVAILABLE)
        return
    found = SUBCOMMANDS[name]
    if found.login and not s.account:
        notice(s, NOT_LOGGED_IN)
        return
    found.handler(s, args)


def command(s: Session, msg: Message) -> None:
    """NS and NICKSERV: the same as a message to NickServ."""
    message(s, " ".join(msg.params))


def whois(s: Session) -> None:
    """WHOIS NickServ: a service, always there."""
    s.numeric(N.RPL_WHOISUSER, names.NICKSERV, names.NICKSERV, "services.", "*", "Account services")
    s.numeric(N.RPL_WHOISSERVER, names.NICKSERV, s.server.server_name, "Network services")
    s.numeric(N.RPL_ENDOFWHOIS, names.NICKSERV)


def on_service(w: "HubItemTarget", cid: int, text: str, resume: bool) -> None:
    """D_SERVICE: the hub's answer to GHOST, REGAIN or an account change."""
    s = w.sessions.get(cid)
    if s is None or not s.waiting:
        return  # a second answer, to a request replayed after a hub restart
    notice(s, text)
    if resume:
        s.resume()


# --- the commands ----------------------------------------------------------------------------------
def register(s: Session, args: list[str]) -> None:
    password, email = args[0], args[1] if len(args) > 1 else "*"
    if not s.server.config.accounts.registration_enabled:
        notice(s, REGISTRATION_DISABLED)
        return
    refusal = accounts.registration_refusal(s, "*", email, password)
    if refusal is None:
        accounts.start_registration(s, s.nick, "" if email == "*" else email, password, via=names.NICKSERV)
    elif refusal == names.ALREADY_AUTHENTICATED:
        notice(s, ALREADY_LOGGED_IN.format(s.account))
    else:
        notice(s, names.MESSAGES.get(refusal, refusal))


class Identify(accounts.OtherLogin):
    """IDENTIFY's login, answered by NickServ (and 900, which clients show as a login)."""
    __slots__ = ()

    def answered(self, s: Session, account: str, numeric: str, text: str) -> None:
        if account:
            s.numeric_as_given(N.RPL_LOGGEDIN, f"{s.nick}!{s.user}@{s.host}", account, LOGGED_IN.format(account))
            notice(s, LOGGED_IN.format(account))
        else:
            notice(s, text)


def identify(s: Session, args: list[str]) -> None:
    if s.account:
        notice(s, ALREADY_LOGGED_IN.format(s.account))
        return
    if not args:  # the client certificate alone, as SASL EXTERNAL
        if not s.certfp:
            notice(s, SYNTAX.format(SUBCOMMANDS["IDENTIFY"].syntax))
            return
        owner = accounts.certificate_owner(s, s.certfp)
        if owner is None:
            notice(s, NO_CERTIFICATE_OWNER)
            return
        s.sasl = Identify()
        s.ask_hub((link.R_LOGIN, s.cid, casefold(owner), True, s.host))  # D_LOGIN answers
        return
    account, password = (s.nick, args[0]) if len(args) == 1 else (args[0], args[1])
    if not accounts.plaintext_allowed(s):
        notice(s, accounts.PASSWORD_PLAINTEXT_REFUSED)
        return
    accounts.check_password(s, casefold(account), password, Identify())  # D_LOGIN answers


def ghost(s: Session, args: list[str]) -> None:
    _ghost(s, args[0], regain=False)


def regain(s: Session, args: list[str]) -> None:
    _ghost(s, args[0] if args else s.account, regain=True)


def _ghost(s: Session, nick: str, regain: bool) -> None:
    if not is_valid_nick(nick, s.server.config.limits.nicklen):
        notice(s, f"No such nick: {nick}")
        return
    s.ask_hub((link.R_GHOST, s.cid, nick, regain))  # D_SERVICE answers


def drop(s: Session, args: list[str]) -> None:
    s.ask_hub((link.R_ACCOUNT_CHANGE, s.cid, casefold(s.account), ("drop",)))


def password(s: Session, args: list[str]) -> None:
    new = args[0]
    if not accounts.plaintext_allowed(s):
        notice(s, accounts.PASSWORD_PLAINTEXT_REFUSED)
        return
    weak = names.check_password_strength(new)
    if weak is not None:
        notice(s, names.MESSAGES[weak])
        return
    key = casefold(s.account)
    s.await_answer()
    s.server.run_blocking(lambda made: _password_made(s, key, made), _credentials, new)


def _credentials(password: str) -> tuple[str, dict | None]:
    return credentials.hash_password(password), credentials.scram_credentials(password)


def _password_made(s: Session, key: str, made: tuple[str, dict | None]) -> None:
    if not s.closed:
        s.request((link.R_ACCOUNT_CHANGE, s.cid, key, ("password", *made)))  # D_SERVICE resumes


def info(s: Session, args: list[str]) -> None:
    name = args[0] if args else s.account
    if not name:
        notice(s, NOT_LOGGED_IN)
        return
    record = s.server.state.accounts.get(casefold(name))
    if record is None:
        notice(s, NOT_REGISTERED.format(name))
        return
    if record.get("dropped"):
        notice(s, WAS_DROPPED.format(record["name"]))
        return
    own = bool(s.account) and casefold(s.account) == casefold(name)
    notice(s, f"Account: {record['name']}")
    if record.get("created"):
        notice(s, "Registered: " + time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(record["created"])))
    if own and record.get("email"):
        notice(s, f"Email: {record['email']}")
    if own:
        notice(s, f"Certificate fingerprints: {len(record.get('certfps') or ())}")
    online = sorted(u.nick for u in s.server.state.users.values() if u.account and casefold(u.account) == casefold(name))
    notice(s, "Online as: " + (", ".join(online) if online else "nobody"))


def cert(s: Session, args: list[str]) -> None:
    sub = args[0].upper()
    if sub == "LIST" and len(args) == 1:
        record = s.server.state.accounts.get(casefold(s.account)) or {}
        fingerprints = record.get("certfps") or ()
        notice(s, f"Certificate fingerprints of {s.account}: {len(fingerprints)}")
        for found in fingerprints:
            notice(s, found)
        return
    if sub not in ("ADD", "DEL") or len(args) > 2:
        notice(s, SYNTAX.format(SUBCOMMANDS["CERT"].syntax))
        return
    if len(args) == 2:
        chosen = fingerprint(args[1])
        if chosen is None:
            notice(s, BAD_FINGERPRINT)
            return
    elif s.certfp:
        chosen = s.certfp
    else:
        notice(s, NO_CERTIFICATE)
        return
    s.ask_hub((link.R_ACCOUNT_CHANGE, s.cid, casefold(s.account), ("cert " + sub.lower(), chosen)))


def help_(s: Session, args: list[str]) -> None:
    if args:
        name = args[0].upper()
        found = SUBCOMMANDS.get(name)
        if found is None:
            notice(s, UNKNOWN.format(name))
            return
        notice(s, SYNTAX.format(found.syntax))
        notice(s, found.help)
        return
    notice(s, INTRO)
    for name, found in SUBCOMMANDS.items():
        notice(s, f"{name}: {found.short}")


SUBCOMMANDS: dict[str, Subcommand] = {
    "REGISTER": Subcommand(
        register, "REGISTER <password> [email]",
        "REGISTER makes an account named after your current nick and logs you in to it; from then on "
        "the nick is the account's only. The rules are REGISTER's (draft/account-registration): a "
        "password of at least 8 characters, sent only over TLS or from this machine.",
        "makes an account of your nick", 1, 2),
    "IDENTIFY": Subcommand(
        identify, "IDENTIFY [account] <password>",
        "IDENTIFY logs you in to an account: your current nick's unless you name one. Without a "
        "password, the TLS client certificate you connected with logs you in to the account it was "
        "added to (CERT ADD).",
        "logs you in to your account", 0, 2),
    "GHOST": Subcommand(
        ghost, "GHOST <nick>",
        "GHOST disconnects the connection using the nick, if the nick is your account's or its user "
        "is logged in to your account, so you can take it back.",
        "disconnects an old connection of yours", 1, 1, login=True),
    "REGAIN": Subcommand(
        regain, "REGAIN [nick]",
        "REGAIN disconnects the connection using the nick (your account's, unless you name another "
        "held by a connection logged in to your account), as GHOST does, and gives you the nick.",
        "takes your nick back from an old connection", 0, 1, login=True),
    "DROP": Subcommand(
        drop, "DROP",
        "DROP deletes the account you are logged in to, and logs out everyone logged in to it. Its "
        "name can never be registered again, so nobody else reads what was kept for it.",
        "deletes your account", 0, 0, login=True),
    "PASSWORD": Subcommand(
        password, "PASSWORD <new password>",
        "PASSWORD (or SET PASSWORD) changes the password of the account you are logged in to.",
        "changes your password", 1, 1, login=True),
    "INFO": Subcommand(
        info, "INFO [account]",
        "INFO tells about an account (yours unless you name one): when it was registered and who is "
        "logged in to it now.",
        "tells about an account", 0, 1),
    "CERT": Subcommand(
        cert, "CERT <LIST | ADD [fingerprint] | DEL [fingerprint]>",
        "CERT lists, adds or removes the SHA-256 fingerprints of the TLS client certificates that log "
        "in to your account (SASL EXTERNAL, or IDENTIFY alone). Without a fingerprint, ADD and DEL "
        "use the certificate you are connected with.",
        "manages the certificates that log you in", 1, 2, login=True),
    "HELP": Subcommand(
        help_, "HELP [command]", "HELP lists the commands, or tells about one.", "this list", 0, 1),
}
