import pytest
from hypothesis import given, strategies as st

from ircproto.casemap import casefold, is_channel_name, is_valid_channel, is_valid_nick


def test_ascii_casemapping_folds_only_a_to_z():
    assert casefold("NiCk[]\\~") == "nick[]\\~"
    assert casefold("ÉCOLE") == "École"


@given(st.text())
def test_casefold_changes_exactly_a_to_z(name):
    folded = casefold(name)
    assert len(folded) == len(name)
    for before, after in zip(name, folded):
        assert after == (chr(ord(before) + 32) if "A" <= before <= "Z" else before)


@pytest.mark.parametrize("nick", ["alice", "A", "[bot]", "x-1", "_under", "a^b{c}|d`"])
def test_valid_nicks(nick):
    assert is_valid_nick(nick, 30)


@pytest.mark.parametrize("nick", ["", "1abc", "-x", "a b", "a,b", "a!b", "a@b", "#chan", ":x", "a*", "é", "x" * 31])
def test_invalid_nicks(nick):
    assert not is_valid_nick(nick, 30)


@pytest.mark.parametrize("name,ok", [("#a", True), ("#café", True), ("#", False), ("a", False), ("#a b", False),
                                     ("#a,b", False), ("#a\x07", False), ("#a:b", False), ("#" + "x" * 64, False)])
def test_channel_names(name, ok):
    assert is_valid_channel(name, 64) is ok


def test_channel_prefix():
    assert is_channel_name("#x") and not is_channel_name("x")
