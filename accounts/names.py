"""The rules of ircv3 `draft/account-registration` (REGISTER) that need no store: account names,
password strength, email addresses, the FAIL codes and the capability's value.

An account name is a valid nick (`ircproto.casemap.is_valid_nick`, at most NICKLEN), and two
names are the same account when they casefold alike (`account_key`, the project's ascii
casemapping). Unless the server offers `custom-account-name`, the name must be the client's
current nick (`REGISTER * ...` or `REGISTER <its nick> ...`).
"""
from __future__ import annotations

import re

from ircproto.casemap import casefold, is_valid_nick

CAPABILITY = "draft/account-registration"

# Replies of REGISTER and VERIFY (`REGISTER SUCCESS <account> :<message>`, ...).
SUCCESS = "SUCCESS"
VERIFICATION_REQUIRED = "VERIFICATION_REQUIRED"

# FAIL REGISTER / FAIL VERIFY codes, all those of the spec.
ACCOUNT_EXISTS = "ACCOUNT_EXISTS"  # <account>: someone already registered the name
BAD_ACCOUNT_NAME = "BAD_ACCOUNT_NAME"  # <account>: invalid, or otherwise not allowed
ACCOUNT_NAME_MUST_BE_NICK = "ACCOUNT_NAME_MUST_BE_NICK"  # <account>: no custom-account-name here
NEED_NICK = "NEED_NICK"  # *: REGISTER before NICK (only with before-connect)
ALREADY_AUTHENTICATED = "ALREADY_AUTHENTICATED"  # <account>: the client is logged in already
WEAK_PASSWORD = "WEAK_PASSWORD"  # <account>
UNACCEPTABLE_PASSWORD = "UNACCEPTABLE_PASSWORD"  # <account>: invalid for a reason other than weakness
INVALID_EMAIL = "INVALID_EMAIL"  # <account>: no mail can be sent to that address
UNACCEPTABLE_EMAIL = "UNACCEPTABLE_EMAIL"  # <account>: valid, but not accepted for registration
COMPLETE_CONNECTION_REQUIRED = "COMPLETE_CONNECTION_REQUIRED"  # (no account): before connection registration
INVALID_CODE = "INVALID_CODE"  # <account>: VERIFY with a wrong or expired code
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"  # <account>

FAIL_CODES = (ACCOUNT_EXISTS, BAD_ACCOUNT_NAME, ACCOUNT_NAME_MUST_BE_NICK, NEED_NICK, ALREADY_AUTHENTICATED,
              WEAK_PASSWORD, UNACCEPTABLE_PASSWORD, INVALID_EMAIL, UNACCEPTABLE_EMAIL,
              COMPLETE_CONNECTION_REQUIRED, INVALID_CODE, TEMPORARILY_UNAVAILABLE)

# The human-readable last parameter hubchat sends with each (clients must not parse it).
MESSAGES = {
    SUCCESS: "Account created",
    VERIFICATION_REQUIRED: "Account created; check your email for the code",
    ACCOUNT_EXISTS: "That account name is already registered",
    BAD_ACCOUNT_NAME: "An account name must be a valid nickname",
    ACCOUNT_NAME_MUST_BE_NICK: "The account name must be your current nickname",
    NEED_NICK: "Choose a nickname (NICK) before registering",
    ALREADY_AUTHENTICATED: "You are already logged in",
    WEAK_PASSWORD: "The password must be at least 8 characters long",
    UNACCEPTABLE_PASSWORD: "The password may not contain control characters",
    INVALID_EMAIL: "That is not a valid email address",
    UNACCEPTABLE_EMAIL: "That email address cannot be used to register",
    COMPLETE_CONNECTION_REQUIRED: "Finish connecting (NICK and USER) before registering",
    INVALID_CODE: "That code is wrong or has expired",
    TEMPORARILY_UNAVAILABLE: "Registration is not available right now; try again later",
}

# NIST SP 800-63B's minimum for a password a person chooses; no rules of composition (the same
# guidance advises against them). Counted in characters (code points), not bytes.
MIN_PASSWORD_LENGTH = 8
_CONTROL = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")  # C0 controls, DEL and lone surrogates


# The nicks of the network's services (hubchat has NickServ): nobody may use one, or name an account so.
NICKSERV = "NickServ"
NICKSERV_SOURCE = "NickServ!NickServ@services."  # the source of its NOTICEs (ergo: NickServ!NickServ@localhost)
SERVICE_NICKS = frozenset({"nickserv"})


def is_service_nick(nick: str) -> bool:
    return casefold(nick) in SERVICE_NICKS


def account_key(name: str) -> str:
    """The form every account is looked up and stored under."""
    return casefold(name)


def is_valid_account_name(name: str, nicklen: int) -> bool:
    return isinstance(name, str) and is_valid_nick(name, nicklen)


def requested_account_name(param: str, nick: str | None) -> str | None:
    """REGISTER's first parameter as a name: `*` is the current nick (None before NICK)."""
    return nick if param == "*" else param


def check_account_name(param: str, nick: str | None, *, nicklen: int, custom_account_name: bool = False) -> str | None:
    """The FAIL code for REGISTER's account parameter, or None when it is acceptable (whether
    it is free is the store's to say: ACCOUNT_EXISTS). `nick` is the client's current nick,
    None before it sent NICK."""
    if nick is None:
        return NEED_NICK
    name = requested_account_name(param, nick)
    if not is_valid_account_name(name, nicklen) or is_service_nick(name):
        return BAD_ACCOUNT_NAME
    if not custom_account_name and account_key(name) != account_key(nick):
        return ACCOUNT_NAME_MUST_BE_NICK
    return None


def check_password_strength(password: str) -> str | None:
    """WEAK_PASSWORD for fewer than MIN_PASSWORD_LENGTH characters, UNACCEPTABLE_PASSWORD for a
    control character (NUL would cut a SASL PLAIN response short; none can be typed), else
    None. No upper bound: REGISTER's line (512 bytes) bounds it, and argon2's cost does not
    grow with the length."""
    if not isinstance(password, str) or _CONTROL.search(password):
        return UNACCEPTABLE_PASSWORD
    if len(password) < MIN_PASSWORD_LENGTH:
        return WEAK_PASSWORD
    return None


# local@domain: the local part is 1-64 printable ASCII characters other than space, '@', ',',
# '"', '(', ')', '<', '>', '[', ']', ';', ':' and '\' (what RFC 5322's dot-atom allows,
# without its quoted forms), with no dot first, last or twice in a row; the domain is at least
# two labels of letters, digits and hyphens (1-63 each, no hyphen first or last; IDNs in their
# xn-- form), the last one not all digits. At most 254 characters in all (RFC 5321's path limit).
_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\Z")


def check_email(email: str) -> bool:
    """A simple check that mail could be sent to `email` (see above): it accepts every address
    people ordinarily use and refuses typos and junk, not every address RFC 5322 allows (quoted
    local parts, IP literals, non-ASCII mailboxes). Whether mail really arrives is for a
    verification code to find out."""
    if not isinstance(email, str) or len(email) > 254 or email.count("@") != 1:
        return False
    local, domain = email.split("@")
    if len(local) > 64 or not _LOCAL.match(local):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_LABEL.match(label) for label in labels) and not labels[-1].isdigit()


def capability_value(*, before_connect: bool = False, email_required: bool = False,
                     custom_account_name: bool = False) -> str:
    """The value of `draft/account-registration` in CAP LS 302: the keys that apply, in the
    spec's order, comma-separated ("" for none: then the capability is advertised bare).
    `before_connect`: REGISTER is accepted before connection registration ends;
    `email_required`: REGISTER must give an email; `custom_account_name`: the account may be
    named other than the current nick."""
    keys = [key for key, on in (("before-connect", before_connect), ("email-required", email_required),
                                ("custom-account-name", custom_account_name)) if on]
    return ",".join(keys)
