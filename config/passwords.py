"""Password hashes for the configuration: scrypt, so a leaked config file does not leak passwords.

Format: scrypt$<n>$<r>$<p>$<salt, base64>$<hash, base64>. Make one with
`python -m hub --hash-password` (the password is read from stdin, or prompted for).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os

PREFIX = "scrypt"
N, R, P = 1 << 14, 8, 1


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return "$".join([PREFIX, str(N), str(R), str(P), base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def is_hash(text: str) -> bool:
    parts = text.split("$")
    if len(parts) != 6 or parts[0] != PREFIX or not all(p.isdigit() for p in parts[1:4]):
        return False
    try:
        return len(base64.b64decode(parts[4], validate=True)) >= 8 and len(base64.b64decode(parts[5], validate=True)) >= 16
    except ValueError:
        return False


def verify(password: str, hashed: str) -> bool:
    """Slow on purpose (tens of milliseconds): call it off the event loop."""
    if not is_hash(hashed):
        return False
    _, n, r, p, salt, digest = hashed.split("$")
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                            dklen=len(expected))
    return hmac.compare_digest(actual, expected)
