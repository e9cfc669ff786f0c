"""Ban and invite exceptions (+e, +I), extended bans, +C and STATUSMSG, as users on different
workers see them. Every client in a test is on its own worker process (proved by psutil), so
every decision here is the hub's and every line crosses it."""
import pytest

from tests.integration.harness import Server, isupport, join_all, registered


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()


def listing(client, channel, letter, entry, end):
    client.send(f"MODE {channel} +{letter}")
    rows = []
    while (msg := client.expect_any(entry, end)).command == entry:
        rows.append(msg.params[2:])
    assert msg.params[1] == channel
    return rows


def test_list_modes_are_advertised(server):
    client, = registered(server, "ad_alice")
    tokens = isupport(client)
    assert tokens["CHANMODES"].split(",")[0] == "beI"
    assert (tokens["EXCEPTS"], tokens["INVEX"]) == ("e", "I")
    assert tokens["MAXLIST"] == "b:100,e:100,I:100"


def test_a_ban_exception_lets_a_banned_user_join_and_speak(server):
    alice, bob, carol = registered(server, "ex_alice", "ex_bob", "ex_carol")
    alice.send("JOIN #except")
    alice.expect("366")
    alice.send("MODE #except +be ex_* ex_bob")  # both completed to nick!user@host
    assert alice.expect("MODE", "#except").params == ["#except", "+be", "ex_*!*@*", "ex_bob!*@*"]
    bob.send("JOIN #except")
    bob.expect("366", "ex_bob", "#except")
    carol.send("JOIN #except")
    assert carol.expect("474").params[1] == "#except"
    bob.send("PRIVMSG #except :I am excepted")
    alice.expect("PRIVMSG", "#except", "I am excepted")
    rows = listing(carol, "#except", "e", "348", "349")  # anyone who can see the channel may list
    assert [r[0] for r in rows] == ["ex_bob!*@*"] and rows[0][1].startswith("ex_alice!")
    bob.send("MODE #except -e ex_bob")
    assert bob.expect("482").params[1] == "#except"
    alice.send("MODE #except -e EX_BOB!*@*")
    bob.expect("MODE", "#except", "-e")
    bob.send("PRIVMSG #except :and now?")
    assert bob.expect("404").params[1] == "#except"
    assert listing(bob, "#except", "e", "348", "349") == []


def test_an_invite_exception_lets_a_user_past_invite_only_without_an_invite(server):
    alice, bob, carol = registered(server, "ix_alice", "ix_bob", "ix_carol")
    alice.send("JOIN #invex")
    alice.expect("366")
    alice.send("MODE #invex +iI ix_bob")
    alice.expect("MODE", "#invex", "+iI", "ix_bob!*@*")
    bob.send("JOIN #invex")
    bob.expect("366", "ix_bob", "#invex")
    carol.send("JOIN #invex")
    assert carol.expect("473").params[1] == "#invex"
    assert [r[0] for r in listing(carol, "#invex", "I", "346", "347")] == ["ix_bob!*@*"]
    carol.send("MODE #invex +I ix_carol")
    assert carol.expect("442").params[1] == "#invex"
    bob.send("MODE #invex +I ix_carol")
    assert bob.expect("482").params[1] == "#invex"
    alice.send("MODE #invex +b ix_bob")  # an invite exception is not a ban exception
    bob.expect("MODE", "#invex", "+b", "ix_bob!*@*")
    bob.send("PART #invex")
    bob.expect("PART")
    bob.send("JOIN #invex")
    bob.expect("474")


def test_a_list_mode_holds_at_most_maxlist_entries(server):
    alice, = registered(server, "lf_alice")
    alice.send("JOIN #full")
    alice.expect("366")
    for start in range(0, 100, 4):
        alice.send("MODE #full +IIII " + " ".join(f"m{i}!*@*" for i in range(start, start + 4)))
    alice.expect("MODE", "#full", "+IIII", "m96!*@*")
    alice.send("MODE #full +I one-too-many")
    assert alice.expect("478").params[1:] == ["#full", "I", "Channel list is full"]
    alice.send("MODE #full +e still-room")  # each list has its own limit
    alice.expect("MODE", "#full", "+e", "still-room!*@*")
    assert len(listing(alice, "#full", "I", "346", "347")) == 100


def test_a_mute_lets_a_user_join_but_not_speak_until_voiced_or_excepted(server):
    alice, bob, carol = registered(server, "xm_alice", "xm_bob", "xm_carol")
    assert isupport(alice)["EXTBAN"] == ",am"
    alice.send("JOIN #mute")
    alice.expect("366")
    alice.send("MODE #mute +b m:xm_bob")
    alice.expect("MODE", "#mute", "+b", "m:xm_bob!*@*")
    join_all("#mute", bob, carol)  # a mute is not a ban
    bob.send("PRIVMSG #mute :hello?")
    assert bob.expect("404").params[1:] == ["#mute", "Cannot send to channel (you are muted)"]
    bob.send("NOTICE #mute :quietly")  # NOTICE is dropped without a word
    bob.send("TAGMSG #mute")
    assert bob.expect("404").params[1] == "#mute"
    bob.sync()
    assert len(bob.since("404")) == 2  # PRIVMSG and TAGMSG only
    carol.send("PRIVMSG #mute :carol is not muted")
    alice.expect("PRIVMSG", "#mute", "carol is not muted")
    assert [r[0] for r in listing(carol, "#mute", "b", "367", "368")] == ["m:xm_bob!*@*"]
    alice.send("MODE #mute +e m:xm_bob!~tester@*")  # an exception from mutes only
    alice.expect("MODE", "#mute", "+e")
    bob.send("PRIVMSG #mute :excepted from mutes")
    carol.expect("PRIVMSG", "#mute", "excepted from mutes")
    assert not [m for m in carol.since("NOTICE") if m.params[0] == "#mute"]
    alice.send("MODE #mute -e m:xm_bob!~tester@*")
    alice.expect("MODE", "#mute", "-e")
    alice.send("MODE #mute +v xm_bob")
    bob.expect("MODE", "#mute", "+v", "xm_bob")
    bob.send("PRIVMSG #mute :voiced speaks through a mute")
    carol.expect("PRIVMSG", "#mute", "voiced speaks through a mute")


def test_account_and_unknown_extended_bans(server):
    alice, bob = registered(server, "xa_alice", "xa_bob")
    join_all("#xa", alice, bob)
    alice.send("MODE #xa +b a:xa_bob")  # stored; matches nobody until hubchat has accounts
    alice.expect("MODE", "#xa", "+b", "a:xa_bob")
    bob.send("PRIVMSG #xa :no account, no match")
    alice.expect("PRIVMSG", "#xa", "no account, no match")
    alice.send("MODE #xa +b z:what")
    assert alice.expect("696").params[1:] == ["#xa", "b", "z:what", "Unknown or invalid extended ban"]
    alice.send("MODE #xa +I m:xa_bob")  # a mute means nothing in an invite exception
    assert alice.expect("696").params[1:3] == ["#xa", "I"]


def test_no_ctcp_mode_lets_action_through_and_refuses_other_ctcp(server):
    alice, bob = registered(server, "nc_alice", "nc_bob")
    assert isupport(alice)["CHANMODES"].split(",")[3] == "Cimnst"
    join_all("#noctcp", alice, bob)
    alice.send("MODE #noctcp +C")
    bob.expect("MODE", "#noctcp", "+C")
    bob.send("PRIVMSG #noctcp :\x01VERSION\x01")
    refusal = bob.expect("404")
    assert refusal.params[1] == "#noctcp" and "CTCP" in refusal.params[2]
    alice.send("PRIVMSG #noctcp :\x01PING 123\x01")  # the operator too
    alice.expect("404", "nc_alice", "#noctcp")
    bob.send("NOTICE #noctcp :\x01VERSION hubchat\x01")  # dropped without a word
    bob.send("PRIVMSG #noctcp :\x01ACTION waves\x01")
    assert alice.expect("PRIVMSG", "#noctcp").params[1] == "\x01ACTION waves\x01"
    assert [m.params[1] for m in alice.since("PRIVMSG") + alice.since("NOTICE")] == ["\x01ACTION waves\x01"]
    bob.sync()
    assert len(bob.since("404")) == 1
    alice.send("MODE #noctcp")
    assert alice.expect("324").params[2] == "+Cnt"


def channel_lines(client, channel):
    """(command, target, text) of every PRIVMSG and NOTICE this client got for the channel."""
    return [(m.command, m.params[0], m.params[1]) for m in client.received
            if m.command in ("PRIVMSG", "NOTICE") and m.params[0].lstrip("@+") == channel]


def test_statusmsg_reaches_only_members_with_that_status_on_every_worker(server):
    alice, bob, carol = registered(server, "sm_alice", "sm_bob", "sm_carol")
    assert isupport(alice)["STATUSMSG"] == "@+"
    join_all("#status", alice, bob, carol)
    alice.send("MODE #status +ov sm_bob sm_carol")
    carol.expect("MODE", "#status", "+ov")
    alice.send("PRIVMSG @#status :for operators")
    alice.send("NOTICE +#STATUS :for the voiced too")  # the channel's own name is shown
    alice.send("PRIVMSG #status :for everyone")
    assert bob.expect("PRIVMSG", "@#status").source.startswith("sm_alice!")
    bob.expect("PRIVMSG", "#status", "for everyone")
    carol.expect("PRIVMSG", "#status", "for everyone")
    assert channel_lines(bob, "#status") == [("PRIVMSG", "@#status", "for operators"),
                                             ("NOTICE", "+#status", "for the voiced too"),
                                             ("PRIVMSG", "#status", "for everyone")]
    assert channel_lines(carol, "#status") == [("NOTICE", "+#status", "for the voiced too"),
                                               ("PRIVMSG", "#status", "for everyone")]
    bob.send("CAP REQ echo-message")
    bob.expect("CAP")
    bob.send("PRIVMSG @+#status :the lowest prefix counts")
    carol.expect("PRIVMSG", "+#status", "the lowest prefix counts")
    bob.expect("PRIVMSG", "+#status", "the lowest prefix counts")  # its echo
    alice.send("MODE #status -v sm_carol")
    carol.expect("MODE", "#status", "-v", "sm_carol")
    carol.send("NOTICE @#status :no voice, no whisper")  # dropped without a word
    carol.send("PRIVMSG +#status :no voice, no whisper")
    refusal = carol.expect("404")
    assert refusal.params[1] == "#status" and "+#status" in refusal.params[2]
    carol.send("PRIVMSG @#status-nowhere :hello")
    assert carol.expect("403").params[1] == "#status-nowhere"
    alice.send("PRIVMSG #status :after the refusals")
    bob.expect("PRIVMSG", "#status", "after the refusals")
    assert not [line for line in channel_lines(bob, "#status") if "whisper" in line[2]]
    carol.sync()
    assert len(carol.since("404")) == 1
