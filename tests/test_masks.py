"""ircproto.masks: wildcard masks under the ascii casemapping."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ircproto.masks import matches, normalize_ban


@pytest.mark.parametrize("mask, text, expected", [
    ("*", "", True),
    ("*!*@*", "nick!user@host", True),
    ("nick!*@*", "NICK!u@h", True),
    ("n?ck!*@*", "nack!u@h", True),
    ("n?ck!*@*", "nck!u@h", False),
    ("*@*.example", "a!b@c.example", True),
    ("*@*.example", "a!b@example", False),
    ("a.b", "axb", False),  # '.' is literal, not a regex
    ("[x]", "[X]", True),  # ascii casemapping: '[' is not '{'
    ("[x]", "{x}", False),
    ("bob", "bobby", False),  # the whole text must match
])
def test_table(mask, text, expected):
    assert matches(mask, text) is expected


@pytest.mark.parametrize("given_mask, full", [
    ("bob", "bob!*@*"), ("u@h", "*!u@h"), ("n!u", "n!u@*"), ("n!u@h", "n!u@h"),
])
def test_ban_masks_are_completed(given_mask, full):
    assert normalize_ban(given_mask) == full


@given(st.text(alphabet="ab*?!@.", max_size=20))
def test_a_mask_without_wildcards_matches_only_itself_and_star_matches_all(text):
    assert matches("*", text)
    if "*" not in text and "?" not in text:
        assert matches(text, text.upper()) and not matches(text, text + "x")
