"""Accounts on disk: one row per account in the history database (the store process's file), as
one JSON record, so the store holds everything that outlives a restart in one place.

A record is plain data: `{"name": display spelling, "email": str, "password": argon2id hash,
"scram": scram_credentials(...) or None, "certfps": [fingerprint, ...], "created": unix time}`;
a dropped account (NickServ DROP) keeps its row, with no credentials and `"dropped": unix time`,
so its name is never registered again.
The hub keeps every account in its state (loaded from here when the store says hello) and
decides every change; the store only writes what the hub's log says, like history. Used from the
store's writing thread only (an sqlite3 connection belongs to its thread).
"""
from __future__ import annotations

import json
import sqlite3
import time

from accounts import credentials

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    key TEXT PRIMARY KEY,  -- the casefolded account name
    record TEXT NOT NULL   -- JSON, see the module docstring
) WITHOUT ROWID;
"""


def make_record(name: str, email: str, password: str) -> dict:
    """An account's record, made off the event loop: argon2id and SCRAM are slow."""
    return {"name": name, "email": email, "password": credentials.hash_password(password),
            "scram": credentials.scram_credentials(password), "certfps": [], "created": time.time()}


class AccountStore:
    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def all(self) -> dict[str, dict]:
        return {key: json.loads(record) for key, record in self.db.execute("SELECT key, record FROM accounts")}

    def write(self, changes: dict[str, dict | None]) -> None:
        """Accounts made or changed (a record) and dropped (None), in one transaction."""
        if not changes:
            return
        with self.db:
            self.db.execute("BEGIN")
            for key, record in changes.items():
                if record is None:
                    self.db.execute("DELETE FROM accounts WHERE key = ?", (key,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO accounts (key, record) VALUES (?, ?)",
                                    (key, json.dumps(record, separators=(",", ":"))))

    def close(self) -> None:
        self.db.close()
