"""RENAME (IRCv3 draft/channel-rename) as users on different workers see it: with the capability
a RENAME line, without it the spec's fallback (PART, then JOIN with topic and names). Each client
is on its own worker process (proved by psutil), so the hub re-keys every replica."""
import pytest

from tests.integration.harness import Server, join_all, registered

CAP = "draft/channel-rename"


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()


def with_cap(client):
    client.send(f"CAP REQ {CAP}")
    assert client.expect("CAP").params[1:] == ["ACK", CAP]


def test_rename_with_and_without_the_capability(server):
    alice, bob, carol = registered(server, "rn_alice", "rn_bob", "rn_carol")
    with_cap(alice)
    with_cap(bob)
    join_all("#rn-old", alice, bob, carol)
    alice.send("TOPIC #rn-old :kept across the rename")
    carol.expect("TOPIC")
    alice.send("MODE #rn-old +vb rn_bob nobody")
    carol.expect("MODE", "#rn-old", "+vb")
    alice.send("RENAME #rn-old #rn-new :tidier")
    for client in (alice, bob):
        rename = client.expect("RENAME")
        assert rename.source.startswith("rn_alice!") and rename.params == ["#rn-old", "#rn-new", "tidier"]
    part = carol.expect("PART")
    assert part.source.startswith("rn_carol!") and part.params == ["#rn-old", "tidier"]
    assert carol.expect("JOIN").params == ["#rn-new"]
    assert carol.expect("332").params[1:] == ["#rn-new", "kept across the rename"]
    assert carol.expect("353").params[2:] == ["#rn-new", "@rn_alice +rn_bob rn_carol"]
    carol.expect("366", "rn_carol", "#rn-new")
    bob.send("PRIVMSG #rn-new :same channel, new name")
    carol.expect("PRIVMSG", "#rn-new", "same channel, new name")
    carol.send("MODE #rn-new +b")
    assert carol.expect("367").params[2] == "nobody!*@*"
    bob.send("PRIVMSG #rn-old :anyone?")
    assert bob.expect("403").params[1] == "#rn-old"
    alice.send("RENAME #rn-new #RN-NEW")  # a change of case: RENAME for the capable, nothing for others
    assert bob.expect("RENAME").params == ["#rn-new", "#RN-NEW", ""]
    alice.expect("RENAME", "#rn-new", "#RN-NEW")
    carol.send("NAMES #rn-new")
    assert carol.expect("353").params[2] == "#RN-NEW"
    assert len(carol.since("PART")) == 1 and not carol.since("RENAME")


def test_rename_refusals(server):
    alice, bob, carol = registered(server, "rf_alice", "rf_bob", "rf_carol")
    with_cap(alice)
    join_all("#rf-a", alice, bob)
    carol.send("JOIN #rf-b")
    carol.expect("366")
    bob.send("RENAME #rf-a #rf-c")
    assert bob.expect("482").params[1] == "#rf-a"
    carol.send("RENAME #rf-a #rf-c")
    assert carol.expect("442").params[1] == "#rf-a"
    carol.send("RENAME #rf-none #rf-c")
    assert carol.expect("403").params[1] == "#rf-none"
    alice.send("RENAME #rf-a #RF-B :taken")
    assert alice.expect("FAIL").params == ["RENAME", "CHANNEL_NAME_IN_USE", "#rf-a", "#RF-B",
                                           "The channel name is already taken"]
    alice.send("RENAME #rf-a :no spaces")
    assert alice.expect("FAIL").params[:3] == ["RENAME", "CANNOT_RENAME", "#rf-a"]
    alice.send("RENAME #rf-a")
    assert alice.expect("461").params[1] == "RENAME"
    carol.send("PART #rf-b")
    carol.expect("PART")
    alice.send("RENAME #rf-a #rf-b")  # free again once its last member left
    alice.expect("RENAME", "#rf-a", "#rf-b")
    bob.expect("PART", "#rf-a")
    bob.expect("JOIN", "#rf-b")
