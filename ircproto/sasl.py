"""SASL for IRC (ircv3 sasl-3.1 and 3.2), sans-I/O: the AUTHENTICATE chunking and the PLAIN,
EXTERNAL and SCRAM-SHA-256 mechanisms as small state machines.

Nothing here touches a socket, the store, a thread or the clock. Every input is an
AUTHENTICATE parameter (or the answer to a question this module asked), every output a `Step`
that says what to do next:

| Step | the caller |
|---|---|
| `Challenge(data)` | sends `AUTHENTICATE <line>` for each of `step.lines()` |
| `NoReply()` | sends nothing (a 400-byte chunk was buffered, or an answer came too late) |
| `NeedCredentials(account)` | fetches the account's SCRAM keys from the store, then calls `credentials(step, keys or None)` |
| `NeedCertificateOwner(fingerprint, authzid)` | looks up the account holding that certificate, then calls `credentials(step, name or None)` |
| `VerifyPassword(account, password)` | checks the password against the account's hash on a thread (it is slow on purpose), then calls `verified(step, ok)` |
| `Success(account)` | logs the client in: 900 RPL_LOGGEDIN, then 903 RPL_SASLSUCCESS |
| `Failure(reason, numeric)` | sends `numeric` (904 ERR_SASLFAIL or 905 ERR_SASLTOOLONG), after 908 RPL_SASLMECHS when `mechanisms` is set; `reason` is for the log |
| `Aborted()` | sends 906 ERR_SASLABORTED |

`Authentication` is one connection's state and the usual entry point: feed it each
AUTHENTICATE parameter with `receive`. It owns an `AuthenticateBuffer` (the chunking) and the
current `Exchange` (`start(mechanism)`), which can also be driven directly.

Every answer is given back with the question it answers (`credentials(step, ...)`,
`verified(step, ...)`): an answer to a question that is no longer open (the client aborted,
or started again, while the store or the hash was busy) changes nothing and returns
`NoReply()`, so a late "yes" can never log in a connection that has moved on.

What this module decides, and why:
- A client's response may be at most `MAX_PAYLOAD` (8 KiB) once decoded: far more than any of
  the three mechanisms needs (a PLAIN response with a 300-character password of 4-byte
  characters and two 30-character names is about 1.3 KB; SCRAM's messages are under 300
  bytes), room for a token mechanism such as OAUTHBEARER later, and it bounds what an
  unauthenticated connection can make a worker hold (10,924 base64 characters). Past it, the
  exchange fails with 904. A single parameter longer than 400 bytes is 905, as sasl-3.1 says.
- Base64 is checked strictly (RFC 4648 alphabet and padding, nothing after the padding); a
  parameter that is not is a failure (904), as is an empty parameter (an empty response is
  `+`).
- `AUTHENTICATE *` aborts whatever is in progress (906), and is answered with 906 even when
  nothing is.
- Account names are compared casefolded (`ircproto.casemap.casefold`), and `Success.account`
  is always the casefolded name: the caller shows the spelling the store keeps.
- SCRAM: no channel binding is offered (`SCRAM-SHA-256-PLUS` is not advertised), so a client
  asking for it fails; an authzid in the GS2 header fails too (scramp does not take one). An
  unknown account is not revealed early: the exchange goes on with a made-up salt, derived
  from the name so that it is the same every time it is asked for, and fails at the proof,
  exactly like a wrong password. Any exception the parsing or scramp raises on the client's
  input is a failure, never an escape.
- PLAIN: `authzid NUL authcid NUL password`, each UTF-8; an empty authcid or password fails,
  and so does an authzid that names anyone but the authcid (no one may act as someone else).
- EXTERNAL: the identity is the TLS client certificate's fingerprint, which the caller passes
  in; the client's response is an optional authzid, which must then name the certificate's
  account. Without a certificate the exchange fails at once.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from typing import NamedTuple, Union

from scramp import ScramMechanism

from ircproto.casemap import casefold
from ircproto.numerics import ERR_SASLFAIL, ERR_SASLTOOLONG

PLAIN = "PLAIN"
SCRAM_SHA_256 = "SCRAM-SHA-256"
EXTERNAL = "EXTERNAL"
# The value of `sasl=` in CAP LS 302 is ",".join(MECHANISMS).
MECHANISMS = (PLAIN, SCRAM_SHA_256, EXTERNAL)

CHUNK = 400  # bytes of base64 per AUTHENTICATE line, both ways (sasl-3.1)
MAX_PAYLOAD = 8192  # decoded bytes of one client response; see the module's docstring
# What `accounts.credentials.scram_credentials` makes, and what an unknown account appears to
# have: RFC 7677's minimum iteration count (also PostgreSQL's and ergo's default), 16-byte salts.
SCRAM_ITERATIONS = 4096
SCRAM_SALT_BYTES = 16

_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?\Z")
_MECHANISM_NAME = re.compile(r"[A-Z0-9_-]{1,20}\Z")  # RFC 4422 section 3.1


class ScramKeys(NamedTuple):
    """What the server keeps to check a SCRAM-SHA-256 exchange (RFC 5802 section 3); never the
    password. `accounts.credentials.scram_keys` makes one from the stored record."""
    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


# Steps ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send the client this server response (possibly empty), as `AUTHENTICATE` lines."""
    data: bytes

    def lines(self) -> list[str]:
        return encode_challenge(self.data)


@dataclass(frozen=True, slots=True)
class NoReply:
    """Nothing to send."""


@dataclass(frozen=True, slots=True, eq=False)
class NeedCredentials:
    """SCRAM: fetch `account`'s `ScramKeys`, then answer with `credentials(this, keys or None)`."""
    account: str


@dataclass(frozen=True, slots=True, eq=False)
class NeedCertificateOwner:
    """EXTERNAL: find the account this certificate fingerprint belongs to, then answer with
    `credentials(this, account_name or None)`. `authzid` is the account the client asked for,
    if it named one (the caller may use it to narrow the look-up; the exchange checks it)."""
    fingerprint: str
    authzid: str | None


@dataclass(frozen=True, slots=True, eq=False)
class VerifyPassword:
    """PLAIN: check `password` against `account`'s stored hash (off the event loop:
    `accounts.credentials.verify_password`, with None for an unknown account), then answer
    with `verified(this, ok)`."""
    account: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Success:
    account: str  # casefolded


@dataclass(frozen=True, slots=True)
class Failure:
    """The exchange is over and failed. `account` is set when credentials for that account
    were checked and were wrong (what a login throttle counts); `mechanisms` asks for 908
    RPL_SASLMECHS before the numeric (an unknown mechanism)."""
    reason: str
    numeric: str = ERR_SASLFAIL
    account: str | None = None
    mechanisms: bool = False


@dataclass(frozen=True, slots=True)
class Aborted:
    """The client aborted (`AUTHENTICATE *`) or the caller did: 906 ERR_SASLABORTED."""


Request = Union[NeedCredentials, NeedCertificateOwner, VerifyPassword]
Step = Union[Challenge, NoReply, NeedCredentials, NeedCertificateOwner, VerifyPassword, Success, Failure, Aborted]
FINAL = (Success, Failure, Aborted)


# Chunking ------------------------------------------------------------------------------------


def encode_challenge(data: bytes) -> list[str]:
    """The AUTHENTICATE parameters that carry `data`: base64 in 400-byte chunks, and `+` for
    an empty response or after a last chunk of exactly 400 bytes. (The same rule holds for a
    client's response, so tests build those with it too.)"""
    text = base64.b64encode(data).decode("ascii")
    chunks = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)]
    if not chunks or len(chunks[-1]) == CHUNK:
        chunks.append("+")
    return chunks


class AuthenticateBuffer:
    """Reassembles one client response from its AUTHENTICATE parameters.

    `feed(param)` returns the decoded response (bytes) once it is complete, `NoReply()` while
    more is to come (a chunk of exactly 400 bytes), `Aborted()` for `*`, or a `Failure` (a
    parameter over 400 bytes: 905; bad base64, an empty parameter, or more than `max_payload`
    bytes in all: 904). After anything but `NoReply()` the buffer is empty again.
    """
    __slots__ = ("max_payload", "max_encoded", "_chunks", "_size")

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self.max_payload = max_payload
        self.max_encoded = -(-max_payload // 3) * 4  # the base64 length of max_payload bytes
        self._chunks: list[str] = []
        self._size = 0

    @property
    def pending(self) -> bool:
        return bool(self._chunks)

    def reset(self) -> None:
        self._chunks.clear()
        self._size = 0

    def feed(self, param: str) -> bytes | NoReply | Aborted | Failure:
        if param == "*":
            self.reset()
            return Aborted()
        if len(param) > CHUNK or len(param.encode("utf-8", "surrogatepass")) > CHUNK:
            self.reset()
            return Failure("an AUTHENTICATE parameter over 400 bytes", ERR_SASLTOOLONG)
        if param == "+":
            text = "".join(self._chunks)
            self.reset()
            return self._decode(text)
        if not param:
            self.reset()
            return Failure("an empty AUTHENTICATE parameter (an empty response is '+')")
        if self._size + len(param) > self.max_encoded:
            self.reset()
            return Failure(f"a response over {self.max_encoded} base64 characters")
        if len(param) == CHUNK:
            self._chunks.append(param)
            self._size += CHUNK
            return NoReply()
        text = "".join(self._chunks) + param
        self.reset()
        return self._decode(text)

    def _decode(self, text: str) -> bytes | Failure:
        if not _BASE64.match(text):
            return Failure("a response that is not base64")
        data = base64.b64decode(text)
        if len(data) > self.max_payload:  # the base64 cap lets up to 2 bytes more through
            return Failure(f"a response over {self.max_payload} bytes")
        return data


# Mechanisms ----------------------------------------------------------------------------------


def _text(data: bytes) -> str | None:
    """Strict UTF-8 with no NUL, or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


class Exchange:
    """One mechanism's conversation. `begin()` gives the server's first response; then each
    complete client response goes to `step(data)`, and the answer to a `NeedCredentials` or
    `NeedCertificateOwner` to `credentials(answer)`, to a `VerifyPassword` to `verified(ok)`.
    Once a final step (Success, Failure) has been returned, `done` is true and every later call
    fails. No call raises: input out of order, or of the wrong kind, is a `Failure`."""
    mechanism = ""

    def __init__(self) -> None:
        self.done = False
        self._expect = "begin"

    def _fail(self, reason: str, account: str | None = None) -> Failure:
        self.done = True
        self._expect = "nothing"
        return Failure(reason, account=account)

    def _succeed(self, account: str) -> Success:
        self.done = True
        self._expect = "nothing"
        return Success(account)

    def _out_of_order(self, call: str) -> Failure:
        return self._fail(f"{self.mechanism}: {call} while expecting {self._expect}")

    @property
    def awaiting_answer(self) -> bool:
        """True between a question (NeedCredentials, ...) and its answer."""
        return self._expect in ("credentials", "certificate owner", "password check")

    def begin(self) -> Step:
        if self._expect != "begin":
            return self._out_of_order("begin")
        self._expect = "response"
        return Challenge(b"")  # all three mechanisms are client-first: an empty challenge

    def step(self, data: bytes) -> Step:
        return self._out_of_order("a client response")

    def credentials(self, answer: object) -> Step:
        return self._out_of_order("credentials")

    def verified(self, ok: bool) -> Step:
        return self._out_of_order("a password check")


class PlainExchange(Exchange):
    """RFC 4616: one response, `[authzid] NUL authcid NUL password`."""
    mechanism = PLAIN

    def __init__(self) -> None:
        super().__init__()
        self.account: str | None = None

    def step(self, data: bytes) -> Step:
        if self._expect != "response" or not isinstance(data, bytes):
            return self._out_of_order("a client response")
        parts = data.split(b"\x00")
        if len(parts) != 3:
            return self._fail("PLAIN: not authzid NUL authcid NUL password")
        authzid, authcid, password = (_text(part) for part in parts)
        if authzid is None or authcid is None or password is None:
            return self._fail("PLAIN: not UTF-8")
        if not authcid or not password:
            return self._fail("PLAIN: an empty account name or password")
        self.account = casefold(authcid)
        if authzid and casefold(authzid) != self.account:
            return self._fail("PLAIN: the authzid names another account")
        self._expect = "password check"
        return VerifyPassword(self.account, password)

    def verified(self, ok: bool) -> Step:
        if self._expect != "password check":
            return self._out_of_order("a password check")
        if ok is True:
            return self._succeed(self.account)
        return self._fail("PLAIN: wrong password or unknown account", self.account)


class ExternalExchange(Exchange):
    """RFC 4422 appendix A: the identity comes from outside (the client certificate); the one
    response is an optional authzid."""
    mechanism = EXTERNAL

    def __init__(self, fingerprint: str | None) -> None:
        super().__init__()
        self.fingerprint = fingerprint or None
        self.authzid: str | None = None

    def begin(self) -> Step:
        if self._expect == "begin" and self.fingerprint is None:
            return self._fail("EXTERNAL: no client certificate")
        return super().begin()

    def step(self, data: bytes) -> Step:
        if self._expect != "response" or not isinstance(data, bytes):
            return self._out_of_order("a client response")
        authzid = _text(data)
        if authzid is None:
            return self._fail("EXTERNAL: the authzid is not UTF-8")
        self.authzid = authzid or None
        self._expect = "certificate owner"
        return NeedCertificateOwner(self.fingerprint, self.authzid)

    def credentials(self, answer: object) -> Step:
        if self._expect != "certificate owner":
            return self._out_of_order("credentials")
        if not isinstance(answer, str) or not answer:
            return self._fail("EXTERNAL: no account holds this certificate")
        owner = casefold(answer)
        if self.authzid is not None and casefold(self.authzid) != owner:
            return self._fail("EXTERNAL: the authzid names another account", casefold(self.authzid))
        return self._succeed(owner)


def _scram_unescape(name: str) -> str | None:
    """RFC 5802 saslname: ',' and '=' travel as '=2C' and '=3D'; any other '=' is malformed."""
    if re.search(r"=(?!2C|3D)", name):
        return None
    return name.replace("=2C", ",").replace("=3D", "=")


_PROCESS_FAKE_KEY = os.urandom(32)


class ScramExchange(Exchange):
    """RFC 5802 / RFC 7677, the server side by scramp. In IRC the server's final message
    (`v=...`) travels as a challenge, and the client answers it with an empty response, after
    which the exchange succeeds:

        C: client-first  -> NeedCredentials -> S: server-first
        C: client-final  -> S: server-final (or Failure on a wrong proof)
        C: (empty)       -> Success
    """
    mechanism = SCRAM_SHA_256

    def __init__(self, fake_salt_key: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> None:
        super().__init__()
        self.account: str | None = None
        self._fake_salt_key = fake_salt_key or _PROCESS_FAKE_KEY
        self._fake_iterations = iterations
        self._client_first = ""
        self._server = None
        self._fake = False

    def step(self, data: bytes) -> Step:
        if not isinstance(data, bytes):
            return self._out_of_order("a client response")
        if self._expect == "response":
            return self._client_first_message(data)
        if self._expect == "client final":
            return self._client_final_message(data)
        if self._expect == "end":
            if data:
                return self._fail("SCRAM: data after the server's final message", self.account)
            return self._succeed(self.account)
        return self._out_of_order("a client response")

    def _client_first_message(self, data: bytes) -> Step:
        text = _text(data)
        if text is None:
            return self._fail("SCRAM: client-first is not UTF-8")
        parts = text.split(",", 3)
        if len(parts) < 4:
            return self._fail("SCRAM: malformed client-first")
        flag, authzid, name, _rest = parts
        if flag.startswith("p="):
            return self._fail("SCRAM: channel binding is not offered")
        if flag not in ("n", "y"):
            return self._fail("SCRAM: malformed GS2 header")
        if authzid:
            return self._fail("SCRAM: an authzid is not supported")
        if not name.startswith("n=") or (user := _scram_unescape(name[2:])) is None or not user:
            return self._fail("SCRAM: malformed user name")
        self.account = casefold(user)
        self._client_first = text
        self._expect = "credentials"
        return NeedCredentials(self.account)

    def credentials(self, answer: object) -> Step:
        if self._expect != "credentials":
            return self._out_of_order("credentials")
        keys = answer if isinstance(answer, ScramKeys) else None
        if keys is None:  # unknown account (or unusable keys): go on, and fail at the proof
            self._fake = True
            salt = hmac.new(self._fake_salt_key, self.account.encode("utf-8", "surrogatepass"),
                            hashlib.sha256).digest()[:SCRAM_SALT_BYTES]
            keys = ScramKeys(salt, os.urandom(32), os.urandom(32), self._fake_iterations)
        account = self.account

        def auth_fn(user: str) -> tuple[bytes, bytes, bytes, int]:
            if casefold(user) != account:  # scramp's SASLprep changed the name: not the one asked for
                raise ValueError("user name changed by SASLprep")
            return tuple(keys)

        try:
            server = ScramMechanism(SCRAM_SHA_256).make_server(auth_fn)
            server.set_client_first(self._client_first)
            server_first = server.get_server_first()
        except Exception as e:  # scramp's ScramException, or anything the input provoked
            return self._fail(f"SCRAM: client-first refused ({e})")
        self._server = server
        self._expect = "client final"
        return Challenge(server_first.encode("utf-8"))

    def _client_final_message(self, data: bytes) -> Step:
        text = _text(data)
        if text is None:
            return self._fail("SCRAM: client-final is not UTF-8", self.account)
        try:
            self._server.set_client_final(text)
            server_final = self._server.get_server_final()
        except Exception as e:  # a wrong proof is scramp's ScramException; malformed input too
            return self._fail(f"SCRAM: client-final refused ({e})", self.account)
        if self._fake:  # cannot happen (the made-up keys are random), but never log in on them
            return self._fail("SCRAM: unknown account", self.account)
        self._server = None
        self._expect = "end"
        return Challenge(server_final.encode("utf-8"))


def start(mechanism: str, *, fingerprint: str | None = None, fake_salt_key: bytes | None = None,
          scram_iterations: int = SCRAM_ITERATIONS) -> Exchange | None:
    """A new exchange for `mechanism` (case-insensitive), or None if it is not one of
    MECHANISMS. `fingerprint` is the TLS client certificate's, for EXTERNAL. For SCRAM's
    unknown accounts: `fake_salt_key` makes their salts (give every process the same one, from
    the configuration, so that no two answers for one name differ; by default each process
    draws its own) and `scram_iterations` is the count they show (make it the one real
    accounts get)."""
    name = mechanism.upper() if isinstance(mechanism, str) else ""
    if name == PLAIN:
        return PlainExchange()
    if name == SCRAM_SHA_256:
        return ScramExchange(fake_salt_key, scram_iterations)
    if name == EXTERNAL:
        return ExternalExchange(fingerprint)
    return None


# One connection ------------------------------------------------------------------------------


class Authentication:
    """One connection's SASL: feed it every AUTHENTICATE parameter with `receive(param)` and
    give back the answers to its questions with `credentials(question, answer)` and
    `verified(question, ok)`. Each call returns the next `Step`; none raises.

    The first parameter names the mechanism; later ones are the client's responses, until a
    final step (Success, Failure, Aborted), after which the next parameter names a mechanism
    again (a client may retry after 904). The caller keeps what this does not: whether the
    client is already logged in (907 ERR_SASLALREADY), throttling, and aborting when the
    client finishes registering mid-exchange (`abort()`).
    """

    def __init__(self, *, fingerprint: str | None = None, mechanisms: tuple[str, ...] = MECHANISMS,
                 fake_salt_key: bytes | None = None, scram_iterations: int = SCRAM_ITERATIONS,
                 max_payload: int = MAX_PAYLOAD) -> None:
        self.fingerprint = fingerprint
        self.mechanisms = tuple(m.upper() for m in mechanisms)
        self.fake_salt_key = fake_salt_key
        self.scram_iterations = scram_iterations
        self.buffer = AuthenticateBuffer(max_payload)
        self.exchange: Exchange | None = None
        self.waiting: Request | None = None  # the question whose answer the exchange awaits

    @property
    def in_progress(self) -> bool:
        return self.exchange is not None

    def _end(self, step: Step) -> Step:
        if isinstance(step, FINAL):
            self.exchange = None
            self.waiting = None
            self.buffer.reset()
        if isinstance(step, (NeedCredentials, NeedCertificateOwner, VerifyPassword)):
            self.waiting = step
        return step

    def receive(self, param: str) -> Step:
        if not isinstance(param, str):
            param = ""
        self.waiting = None  # a question still open is answered too late from now on
        if self.exchange is None:
            if param == "*":
                return Aborted()
            name = param.upper()
            exchange = start(name, fingerprint=self.fingerprint, fake_salt_key=self.fake_salt_key,
                             scram_iterations=self.scram_iterations) \
                if name in self.mechanisms and _MECHANISM_NAME.match(name) else None
            if exchange is None:
                return Failure("unknown mechanism", mechanisms=True)
            self.exchange = exchange
            return self._end(exchange.begin())
        if self.exchange.awaiting_answer:
            # The client spoke while the store or the hash was busy with its last response.
            if param == "*":
                return self._end(Aborted())
            return self._end(Failure("AUTHENTICATE while the last response was being checked"))
        result = self.buffer.feed(param)
        if not isinstance(result, bytes):
            return self._end(result)
        return self._end(self.exchange.step(result))

    def credentials(self, question: Request, answer: object) -> Step:
        if question is None or question is not self.waiting or self.exchange is None:
            return NoReply()
        self.waiting = None
        return self._end(self.exchange.credentials(answer))

    def verified(self, question: Request, ok: bool) -> Step:
        if question is None or question is not self.waiting or self.exchange is None:
            return NoReply()
        self.waiting = None
        return self._end(self.exchange.verified(ok))

    def fail(self, reason: str) -> Step:
        """End the exchange in progress as failed (e.g. the throttle said no to its account)."""
        self.waiting = None
        if self.exchange is None:
            return NoReply()
        return self._end(Failure(reason))

    def abort(self) -> Step:
        """End the exchange in progress (sasl-3.1: the client completed registration during
        it): `Aborted()` if there was one, else `NoReply()`."""
        self.waiting = None
        if self.exchange is None:
            return NoReply()
        return self._end(Aborted())
