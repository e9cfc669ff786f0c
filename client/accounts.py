"""Logging in, sans-I/O: the client's side of SASL (PLAIN and SCRAM-SHA-256) and the words for
what the server answers to logins, REGISTER and reserved nicknames.

`SaslLogin(account, password, offered)` picks the mechanism (SCRAM-SHA-256 when the server's
`sasl=` value lists it, PLAIN otherwise) and is fed each AUTHENTICATE parameter the server
sends; it returns the AUTHENTICATE parameters to send back, or raises `LoginError` when the
server cannot prove it knows the password (SCRAM's server signature). The password lives only
in this object and is never part of any text it returns for display.
"""
from __future__ import annotations

import base64
import binascii

from scramp import ScramClient

from ircproto.sasl import encode_challenge

SCRAM = "SCRAM-SHA-256"
PLAIN = "PLAIN"
CHUNK = 400

LOGIN_FAILED = "login failed: wrong account or password"
NICK_RESERVED_TEXT = "that nickname belongs to an account; log in with --account or pick another"
PASSWORD_VARIABLE = "HUBCHAT_PASSWORD"

REGISTER_FAIL = {
    "ACCOUNT_EXISTS": "an account with that name already exists",
    "BAD_ACCOUNT_NAME": "that account name is not allowed",
    "ACCOUNT_NAME_MUST_BE_NICK": "the account is named after your current nickname",
    "NEED_NICK": "choose a nickname first",
    "ALREADY_AUTHENTICATED": "you are logged in already",
    "WEAK_PASSWORD": "the password is too weak; choose a longer one",
    "UNACCEPTABLE_PASSWORD": "that password is not accepted",
    "INVALID_EMAIL": "that email address is not valid",
    "UNACCEPTABLE_EMAIL": "that email address is not accepted",
    "COMPLETE_CONNECTION_REQUIRED": "wait until you are connected",
    "TEMPORARILY_UNAVAILABLE": "registration is unavailable right now; try again later",
}


class LoginError(Exception):
    """The exchange cannot go on; the message is for the user."""


def mechanisms(offered_value: str) -> list[str]:
    """The mechanisms in a `sasl=` capability value (empty: the server did not say)."""
    return [m for m in offered_value.split(",") if m]


def choose_mechanism(offered_value: str) -> str:
    listed = mechanisms(offered_value)
    return SCRAM if SCRAM in listed else PLAIN


def plain_response(account: str, password: str) -> list[str]:
    """AUTHENTICATE parameters carrying PLAIN's `authzid NUL authcid NUL password` (no authzid)."""
    return encode_challenge(f"\0{account}\0{password}".encode())


class SaslLogin:
    def __init__(self, account: str, password: str, offered_value: str = "") -> None:
        self.account = account
        self._password = password
        self.mechanism = choose_mechanism(offered_value)
        self._scram: ScramClient | None = None
        self._buffer = ""
        self._stage = 0  # SCRAM: 0 nothing yet, 1 client-first sent, 2 client-final sent, 3 done

    def __repr__(self) -> str:  # never shows the password
        return f"SaslLogin({self.account!r}, {self.mechanism})"

    def first_line(self) -> str:
        return self.mechanism

    def receive(self, param: str) -> list[str]:
        """One AUTHENTICATE parameter from the server; the parameters to answer with."""
        if param != "+":
            self._buffer += param
            if len(param) == CHUNK:
                return []  # more to come
        data, self._buffer = self._buffer, ""
        try:
            decoded = base64.b64decode(data, validate=True).decode() if data else ""
        except (binascii.Error, UnicodeDecodeError):
            raise LoginError("the server's login message could not be read") from None
        if self.mechanism == PLAIN:
            return plain_response(self.account, self._password)
        return self._scram_step(decoded)

    def _scram_step(self, decoded: str) -> list[str]:
        try:
            if self._stage == 0:
                self._scram = ScramClient([SCRAM], self.account, self._password)
                self._stage = 1
                return encode_challenge(self._scram.get_client_first().encode())
            assert self._scram is not None
            if self._stage == 1:
                self._scram.set_server_first(decoded)
                self._stage = 2
                return encode_challenge(self._scram.get_client_final().encode())
            if self._stage == 2:
                self._scram.set_server_final(decoded)
                self._stage = 3
                return ["+"]
        except LoginError:
            raise
        except Exception:  # scramp refuses what the server sent: it did not prove it knows the password
            raise LoginError("the server could not prove it knows your password") from None
        return []


SECRET_COMMANDS = ("/login", "/register")


def carries_password(typed: str) -> bool:
    """A typed line with a password in it: kept out of the input history."""
    return typed.split(" ", 1)[0].lower() in SECRET_COMMANDS


def register_fail_text(code: str, description: str) -> str:
    return REGISTER_FAIL.get(code, description or code.lower().replace("_", " "))
