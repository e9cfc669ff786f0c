"""Account names and passwords for the tests of accounts: each password made here is
remembered, so that a test module can check at the end that none reached the server's log."""
from __future__ import annotations

import itertools
import os


class Credentials:
    def __init__(self) -> None:
        self.passwords: list[str] = []
        self._serial = itertools.count()

    def fresh(self, base: str) -> str:
        """A name no other test of the module uses."""
        return f"{base}{next(self._serial)}"

    def password(self, tag: str = "") -> str:
        value = f"pw-{tag}-{os.urandom(6).hex()}"
        self.passwords.append(value)
        return value

    def check_not_logged(self, log: str) -> None:
        for password in self.passwords:
            assert password not in log
