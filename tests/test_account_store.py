"""Accounts on disk: written in one transaction, read back after a reopen, dropped."""
from accounts.store import AccountStore


def test_accounts_round_trip_across_a_reopen_and_are_dropped(tmp_path):
    path = str(tmp_path / "h.sqlite3")
    store = AccountStore(path)
    store.write({"alice": {"name": "Alice", "password": "$argon2id$x", "scram": None, "certfps": [], "email": ""},
                 "bob": {"name": "bob", "password": "$argon2id$y", "scram": None, "certfps": ["ab"], "email": "b@c.d"}})
    store.close()
    store = AccountStore(path)
    assert store.all()["alice"]["name"] == "Alice" and store.all()["bob"]["certfps"] == ["ab"]
    store.write({"alice": None, "bob": {"name": "bob", "password": "$argon2id$z", "scram": None, "certfps": [],
                                        "email": ""}})
    assert list(store.all()) == ["bob"] and store.all()["bob"]["password"] == "$argon2id$z"
    store.close()
