"""Account credentials: the argon2id hash PLAIN logins are checked against, and the SCRAM-SHA-256
keys SCRAM logins are checked against, both made from the password at registration. Neither
keeps the password.

**Slow on purpose: run `hash_password`, `verify_password` and `scram_credentials` off the event
loop** (`loop.run_in_executor`, or the worker's blocking-check thread), never in a worker's or
the hub's loop. Measured on the 2-core development machine (Python 3.11, argon2-cffi 25.1,
`python -m pytest -rA tests/test_accounts.py -k timings` prints them again):
`hash_password` and `verify_password` 15-17 ms each with `ARGON2`, `scram_credentials` about
1 ms (4096 PBKDF2 rounds). A SCRAM login costs the server only a few HMACs: the client does the
PBKDF2.

Why these argon2id parameters (`ARGON2`: t=2, m=19 MiB, p=1, the minimum OWASP's Password
Storage Cheat Sheet gives for argon2id): argon2-cffi's default, RFC 9106's "second recommended"
profile (t=3, m=64 MiB, p=4), took 92 ms per hash here. On two shared cores a reconnect storm,
say 10,000 clients logging in with PLAIN after a restart, would cost 15 minutes of CPU with it
and under 3 with these; and each hash in flight holds its whole memory cost (19 MiB here, so a
pool of 4 threads peaks near 80 MiB). Hashes carry their own parameters, so verifying older
ones keeps working; `needs_rehash` says when to replace one after a successful login.

Passwords are hashed as their UTF-8 bytes, exactly as given (ircv3 account-registration:
passwords are opaque), any length (a 300-character password is tested). SCRAM's keys are made
from the password after SASLprep (RFC 4013, which scramp applies, as every SCRAM client must):
a password SASLprep refuses (a control character, a code point unassigned in Unicode 3.2, such
as most emoji) gets no SCRAM keys (`scram_credentials` returns None), and that account logs in
with PLAIN only.
"""
from __future__ import annotations

import base64
import functools
import os
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from scramp import ScramMechanism

from ircproto.sasl import SCRAM_ITERATIONS, SCRAM_SALT_BYTES, SCRAM_SHA_256, ScramKeys


@dataclass(frozen=True)
class Argon2Params:
    time_cost: int
    memory_cost: int  # KiB
    parallelism: int
    hash_len: int = 32
    salt_len: int = 16

    def hasher(self) -> PasswordHasher:
        return _hasher(self)


ARGON2 = Argon2Params(time_cost=2, memory_cost=19 * 1024, parallelism=1)  # see the docstring


@functools.lru_cache(maxsize=8)
def _hasher(params: Argon2Params) -> PasswordHasher:
    return PasswordHasher(time_cost=params.time_cost, memory_cost=params.memory_cost,
                          parallelism=params.parallelism, hash_len=params.hash_len,
                          salt_len=params.salt_len, type=Type.ID)


def hash_password(password: str, params: Argon2Params = ARGON2) -> str:
    """The argon2id hash to store, in the PHC string format (`$argon2id$v=19$m=...`).
    Tests may pass cheaper `params`; production code passes nothing."""
    return params.hasher().hash(password.encode("utf-8"))


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password(os.urandom(16).hex())


def verify_password(hashed: str | None, password: str) -> bool:
    """True when `password` is the one `hashed` was made from. A malformed hash, or a password
    that cannot be encoded, is False, never an exception. Pass None for an account that does not
    exist: the same work is done against a throwaway hash (so a login's time does not tell
    whether the account exists), and the answer is False. The comparison itself is argon2's,
    in constant time."""
    if hashed is None:
        candidate, expected = _dummy_hash(), False
    else:
        candidate, expected = hashed, True
    try:
        data = password.encode("utf-8")
        # The hash says its own parameters; any PasswordHasher verifies any argon2 hash.
        return _hasher(ARGON2).verify(candidate, data) and expected
    except Exception:  # argon2's VerifyMismatchError, InvalidHashError, VerificationError; bad types
        return False


def needs_rehash(hashed: str, params: Argon2Params = ARGON2) -> bool:
    """True when `hashed` was made with other parameters than `params` (or is not an argon2id
    hash at all): after a successful login, hash the password again and store the new hash."""
    try:
        return not hashed.startswith("$argon2id$") or params.hasher().check_needs_rehash(hashed)
    except Exception:
        return True


def scram_credentials(password: str, iterations: int = SCRAM_ITERATIONS) -> dict | None:
    """The SCRAM-SHA-256 record to store beside the hash, as plain JSON-serialisable data:
    `{"mechanism": "SCRAM-SHA-256", "salt": b64, "stored_key": b64, "server_key": b64,
    "iterations": int}`. None when SASLprep refuses the password (see the docstring), or scramp
    the iteration count (below 4096 or above 10 million)."""
    try:
        salt, stored_key, server_key, count = ScramMechanism(SCRAM_SHA_256).make_auth_info(
            password, iteration_count=iterations, salt=os.urandom(SCRAM_SALT_BYTES))
    except Exception:  # scramp's ScramException: SASLprep refused the password
        return None
    encode = lambda raw: base64.b64encode(raw).decode("ascii")  # noqa: E731
    return {"mechanism": SCRAM_SHA_256, "salt": encode(salt), "stored_key": encode(stored_key),
            "server_key": encode(server_key), "iterations": count}


def scram_keys(record: object) -> ScramKeys | None:
    """What `ircproto.sasl` checks a SCRAM exchange against (`credentials(question, keys)`), from
    a stored record; None when there is none or it is malformed (the exchange then fails at the
    proof, as for an unknown account)."""
    if not isinstance(record, dict) or record.get("mechanism") != SCRAM_SHA_256:
        return None
    try:
        salt, stored_key, server_key = (base64.b64decode(record[key], validate=True)
                                        for key in ("salt", "stored_key", "server_key"))
        iterations = record["iterations"]
    except Exception:
        return None
    if (type(iterations) is not int or not SCRAM_ITERATIONS <= iterations <= 10_000_000
            or len(salt) < 12 or len(stored_key) != 32 or len(server_key) != 32):
        return None
    return ScramKeys(salt, stored_key, server_key, iterations)
