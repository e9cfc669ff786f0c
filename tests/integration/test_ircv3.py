"""IRCv3 capabilities, each seen by clients on different workers: CAP 302, message-tags, TAGMSG,
server-time, msgid, echo-message, extended-join, userhost-in-names, away-notify, invite-notify,
setname, chghost, batch with labeled-response, and UTF8ONLY."""
import re

import pytest

from config.passwords import hash_password
from tests.integration.harness import Server, clients_on_distinct_workers, join_all, stopped

ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    conf = tmp_path_factory.mktemp("v3") / "ops.toml"
    conf.write_text(f'[operators]\nroot = "{hash_password("hunter2")}"\n')
    srv = Server(3, "--config", str(conf))
    yield srv
    srv.stop()


def with_caps(server, count, *nick_caps):
    """Registered clients on distinct workers, each having negotiated its own capabilities."""
    clients = clients_on_distinct_workers(server, count)
    for client, (nick, caps) in zip(clients, nick_caps):
        client.nick = nick
        client.send("CAP LS 302")
        client.expect("CAP")
        if caps:
            client.send(f"CAP REQ :{caps}")
            assert client.expect("CAP").params[1:] == ["ACK", caps]
        client.send(f"NICK {nick}\r\nUSER u 0 * :Real {nick}\r\nCAP END")
        client.expect("376")
    return clients


def test_cap_negotiation(server):
    c = server.connect()
    c.send("CAP LS 302")
    assert "labeled-response" in c.expect("CAP").params[2].split()
    c.send("CAP REQ :server-time nonexistent")  # all or nothing
    assert c.expect("CAP").params[1:] == ["NAK", "server-time nonexistent"]
    c.send("CAP REQ :server-time echo-message")
    c.expect("CAP", "*", "ACK")
    c.send("CAP REQ :-echo-message")
    c.expect("CAP", "*", "ACK")
    c.send("CAP LIST")
    assert set(c.expect("CAP").params[2].split()) == {"cap-notify", "server-time"}  # cap-notify: implied by 302
    c.send("CAP FOO")
    c.expect("410")
    c.send("NICK v3_cap\r\nUSER u 0 * :x\r\nCAP END")
    c.expect("001")
    c.send("CAP REQ :multi-prefix")  # after registration too
    c.expect("CAP", "v3_cap", "ACK")


def test_tags_time_msgid_and_client_tags_reach_only_those_who_asked(server):
    alice, tagged, plain = with_caps(server, 3, ("v3_alice", "message-tags"),
                                     ("v3_tagged", "message-tags server-time"), ("v3_plain", ""))
    join_all("#tags", alice, tagged, plain)
    alice.send("@+draft/reply=abc;+example.org/x=a\\sb PRIVMSG #tags :hello")
    got = tagged.expect("PRIVMSG", "#tags")
    assert ISO_TIME.match(got.tags["time"])
    assert got.tags["+draft/reply"] == "abc" and got.tags["+example.org/x"] == "a b"
    plain_got = plain.expect("PRIVMSG", "#tags")
    assert plain_got.tags == {} and plain_got.params == ["#tags", "hello"]
    alice.send("@+typing=active TAGMSG #tags")
    assert tagged.expect("TAGMSG").tags["+typing"] == "active"
    alice.send("PRIVMSG #tags :after the tagmsg")
    plain.expect("PRIVMSG", "#tags", "after the tagmsg")
    assert not plain.since("TAGMSG")  # TAGMSG is only for clients with message-tags
    alice.send("@+typing=done TAGMSG v3_tagged")
    assert tagged.expect("TAGMSG", "v3_tagged").tags["+typing"] == "done"


def test_one_msgid_for_every_recipient_and_echo_message(server):
    alice, bob, carol = with_caps(server, 3, ("v3e_alice", "echo-message message-tags"),
                                  ("v3e_bob", "message-tags"), ("v3e_carol", "message-tags"))
    join_all("#echo", alice, bob, carol)
    alice.send("PRIVMSG #echo :one id")
    echoed = alice.expect("PRIVMSG", "#echo", "one id")
    assert echoed.source.startswith("v3e_alice!")
    ids = {echoed.tags["msgid"], bob.expect("PRIVMSG", "#echo").tags["msgid"],
           carol.expect("PRIVMSG", "#echo").tags["msgid"]}
    assert len(ids) == 1
    alice.send("PRIVMSG v3e_bob :private")
    mine = alice.expect("PRIVMSG", "v3e_bob", "private")
    assert mine.tags["msgid"] == bob.expect("PRIVMSG", "v3e_bob").tags["msgid"]
    bob.send("PRIVMSG #echo :bob has no echo")
    alice.expect("PRIVMSG", "#echo", "bob has no echo")
    bob.sync()
    assert [m.params[1] for m in bob.since("PRIVMSG")] == ["one id", "private"]


def test_extended_join_userhost_in_names_and_away_notify(server):
    watcher, joiner = with_caps(server, 2, ("v3j_watch", "extended-join away-notify userhost-in-names"),
                                ("v3j_join", ""))
    watcher.send("JOIN #ext")
    watcher.expect("366")
    joiner.send("AWAY :not here")
    joiner.expect("306")
    joiner.send("JOIN #ext")
    join = watcher.expect("JOIN")
    assert join.params == ["#ext", "*", "Real v3j_join"]
    assert watcher.expect("AWAY").params == ["not here"]  # a joining user who is away says so
    joiner.send("AWAY")
    away = watcher.expect("AWAY")
    assert away.source.startswith("v3j_join!") and away.params == []
    watcher.send("NAMES #ext")
    assert watcher.expect("353").params[3] == "@v3j_watch!~u@127.0.0.1 v3j_join!~u@127.0.0.1"


def test_invite_notify_tells_the_other_operators(server):
    op1, op2, guest = with_caps(server, 3, ("v3i_op1", ""), ("v3i_op2", "invite-notify"), ("v3i_guest", ""))
    join_all("#inv", op1, op2)
    op1.send("MODE #inv +o v3i_op2")
    op2.expect("MODE", "#inv", "+o")
    op1.send("INVITE v3i_guest #inv")
    guest.expect("INVITE", "v3i_guest", "#inv")
    note = op2.expect("INVITE")
    assert note.source.startswith("v3i_op1!") and note.params == ["v3i_guest", "#inv"]


def test_setname_and_chghost(server):
    alice, bob = with_caps(server, 2, ("v3s_alice", "setname chghost"), ("v3s_bob", "setname"))
    join_all("#names", alice, bob)
    bob.send("SETNAME :Robert Tables")
    assert bob.expect("SETNAME").params == ["Robert Tables"]
    seen = alice.expect("SETNAME")
    assert seen.source.startswith("v3s_bob!") and seen.params == ["Robert Tables"]
    alice.send("WHOIS v3s_bob")
    assert alice.expect("311").params[5] == "Robert Tables"
    bob.send("SETNAME :")
    assert bob.expect("FAIL").params[:2] == ["SETNAME", "INVALID_REALNAME"]
    bob.send("CHGHOST v3s_bob bob cloak.example")
    bob.expect("481")
    bob.send("OPER root hunter2")
    bob.expect("381")
    bob.send("CHGHOST v3s_bob bob cloak.example")
    change = alice.expect("CHGHOST")
    assert change.source == "v3s_bob!~u@127.0.0.1" and change.params == ["bob", "cloak.example"]
    bob.send("WHOIS v3s_bob")  # behind a barrier: bob's own worker has the change too (alice's news says not)
    assert bob.expect("311").params[2:4] == ["bob", "cloak.example"]
    bob.send("PRIVMSG #names :new host")
    assert alice.expect("PRIVMSG", "#names").source == "v3s_bob!bob@cloak.example"


def test_labeled_response(server):
    alice, bob = with_caps(server, 2, ("v3l_alice", "labeled-response batch message-tags"), ("v3l_bob", ""))
    alice.send("@label=p1 PING tok")
    pong = alice.expect("PONG")
    assert pong.tags["label"] == "p1" and pong.params[-1] == "tok"
    alice.send("@label=nothing PONG tok")  # no reply at all: an ACK carries the label
    assert alice.expect("ACK").tags["label"] == "nothing"
    alice.send("@label=j1 JOIN #labels")  # several replies, from the hub's event: one batch
    start = alice.expect("BATCH")
    assert start.tags["label"] == "j1" and start.params[1] == "labeled-response"
    ref = start.params[0][1:]
    inside = []
    while (msg := alice.expect_any("JOIN", "353", "366", "BATCH")).command != "BATCH":
        assert msg.tags["batch"] == ref
        inside.append(msg.command)
    assert inside == ["JOIN", "353", "366"] and msg.params == ["-" + ref]
    alice.send("@label=m1 PRIVMSG nobody_here :hi")  # the hub's refusal is the labelled answer
    assert alice.expect("401").tags["label"] == "m1"
    bob.send("JOIN #labels")
    alice.send("@label=w1 WHOIS v3l_bob")
    assert alice.expect("BATCH").tags["label"] == "w1"
    whois = [alice.expect_any("311", "312", "317", "318", "319") for _ in range(5)]
    assert {m.command for m in whois} == {"311", "312", "317", "318", "319"}


def test_invalid_utf8_is_refused_and_never_relayed(server):
    alice, bob = with_caps(server, 2, ("v3u_alice", ""), ("v3u_bob", ""))
    join_all("#utf8", alice, bob)
    alice.send(b"PRIVMSG #utf8 :caf\xe9 au lait\r\n")
    fail = alice.expect("FAIL")
    assert fail.params[:2] == ["PRIVMSG", "INVALID_UTF8"]
    alice.send("PRIVMSG #utf8 :café au lait")
    assert bob.expect("PRIVMSG", "#utf8").params[1] == "café au lait"  # the first one never arrived
    alice.send(b"TOPIC #utf8 :\xff\xfe\r\n")
    assert alice.expect("FAIL").params[:2] == ["TOPIC", "INVALID_UTF8"]


def test_without_chghost_a_host_change_shows_no_fake_quit_and_join(server):
    alice, bob, carol = with_caps(server, 3, ("v3c_alice", "chghost"), ("v3c_bob", ""), ("v3c_carol", ""))
    join_all("#cloak", alice, bob, carol)
    bob.send("OPER root hunter2")
    bob.expect("381")
    # One write: the message is rendered only once bob's own change has taken effect.
    bob.send("CHGHOST v3c_bob cloaked new.host\r\nPRIVMSG #cloak :under a new host")
    assert alice.expect("CHGHOST").params == ["cloaked", "new.host"]
    # The hub relays in one order: whatever carol was sent about the change came before this.
    assert carol.expect("PRIVMSG", "#cloak").source == "v3c_bob!cloaked@new.host"
    for client in (bob, carol):
        assert not client.since("CHGHOST") and not client.since("QUIT")
        assert [m.source.split("!")[0] for m in client.since("JOIN")][-1] == "v3c_carol"


def test_a_labelled_response_leaves_other_peoples_messages_outside_its_batch(server):
    alice, bob, carol = with_caps(server, 3, ("v3o_alice", "labeled-response batch message-tags"),
                                  ("v3o_bob", ""), ("v3o_carol", ""))
    # With bob's worker frozen, alice's WHOIS of bob waits for his idle time (up to the
    # server's 2 s) before it can finish: carol's message arrives while it runs.
    with stopped(bob.worker_pid):
        alice.send("@label=slow WHOIS v3o_bob")
        carol.send("PRIVMSG v3o_alice :meanwhile")
        meanwhile = alice.expect("PRIVMSG", "v3o_alice", "meanwhile")
        assert "batch" not in meanwhile.tags and "label" not in meanwhile.tags
        assert not alice.since("BATCH")  # sent at once, not held behind the command
        start = alice.expect("BATCH")
        assert start.tags["label"] == "slow" and start.params[1] == "labeled-response"
        ref = start.params[0][1:]
        inside = []
        while (msg := alice.expect_any("PRIVMSG", "311", "312", "317", "318", "319", "BATCH")).command != "BATCH":
            assert msg.tags.get("batch") == ref, msg
            inside.append(msg.command)
        assert msg.params == ["-" + ref]
        assert inside == ["311", "312", "318"]  # no 317: bob's worker never answered


def test_tagmsg_reaches_only_clients_with_message_tags(server):
    alice, timed, plain = with_caps(server, 3, ("v3t_alice", "message-tags echo-message"),
                                    ("v3t_timed", "server-time"), ("v3t_plain", ""))
    (tagged,) = with_caps(server, 1, ("v3t_tagged", "message-tags"))  # shares a worker with one of them
    join_all("#typing", alice, timed, plain, tagged)
    alice.send("@+typing=active TAGMSG #typing")
    assert tagged.expect("TAGMSG", "#typing").tags["+typing"] == "active"
    assert alice.expect("TAGMSG", "#typing").tags["+typing"] == "active"  # the echo
    alice.send("@+typing=paused TAGMSG v3t_timed\r\n@+typing=paused TAGMSG v3t_plain")
    alice.expect("TAGMSG", "v3t_plain")
    alice.send("PRIVMSG #typing :typed\r\nPRIVMSG v3t_timed :typed\r\nPRIVMSG v3t_plain :typed")
    for client in timed, plain:  # the last of alice's lines to each: everything before has arrived
        client.expect("PRIVMSG", client.nick, "typed")
        assert [m.params[0] for m in client.since("PRIVMSG")] == ["#typing", client.nick]
        assert not client.since("TAGMSG")


def test_4094_bytes_of_client_tags_are_relayed_intact_and_one_more_gets_417(server):
    alice, bob, carol = with_caps(server, 3, ("v3b_alice", "message-tags echo-message"),
                                  ("v3b_bob", "message-tags server-time"), ("v3b_carol", ""))
    join_all("#bigtags", alice, bob, carol)
    value = "a\\sb" + "v" * (4094 - len("+big=a\\sb"))  # 4094 bytes of tag data, as sent
    alice.send(f"@+big={value} PRIVMSG #bigtags :exactly")
    for client in alice, bob:  # the echo too; the server's time and msgid come on top
        got = client.expect("PRIVMSG", "#bigtags", "exactly")
        assert got.tags["+big"] == "a b" + "v" * (4094 - len("+big=a\\sb")) and "msgid" in got.tags
    assert carol.expect("PRIVMSG", "#bigtags", "exactly").tags == {}
    alice.send(f"@+big={value}v PRIVMSG #bigtags :one byte more")
    assert alice.expect("417").params == ["v3b_alice", "Input line was too long"]
    alice.send("PRIVMSG #bigtags :after")
    for client in alice, bob, carol:
        client.expect("PRIVMSG", "#bigtags", "after")
        assert [m.params[1] for m in client.since("PRIVMSG")] == ["exactly", "after"]


def test_bot_mode_tags_the_bots_messages_and_shows_in_whois_and_who(server):
    bot, tagged, plain = with_caps(server, 3, ("v3bot_bot", ""), ("v3bot_tagged", "message-tags"),
                                   ("v3bot_plain", ""))
    assert "BOT=B" in [token for m in bot.since("005") for token in m.params[1:-1]]
    assert "B" in bot.since("004")[0].params[3]  # among the user modes
    join_all("#bots", bot, tagged, plain)
    bot.send("MODE v3bot_bot +B")
    assert bot.expect("MODE").params == ["v3bot_bot", "+B"]
    bot.send("PRIVMSG #bots :beep\r\nNOTICE #bots :boop\r\nTAGMSG #bots\r\nPRIVMSG v3bot_tagged :psst")
    for command, target in [("PRIVMSG", "#bots"), ("NOTICE", "#bots"), ("TAGMSG", "#bots"),
                            ("PRIVMSG", "v3bot_tagged")]:
        got = tagged.expect(command, target)
        assert got.tags["bot"] == "" and "msgid" in got.tags  # a tag without a value (IRCv3 bot-mode)
    assert plain.expect("NOTICE", "#bots").tags == {}
    tagged.send("PRIVMSG #bots :not a bot")
    assert "bot" not in plain.expect("PRIVMSG", "#bots", "not a bot").tags
    tagged.send("WHOIS v3bot_bot")
    assert tagged.expect("335").params == ["v3bot_tagged", "v3bot_bot", "is a bot"]
    tagged.expect("318")
    plain.send("WHO #bots")
    flags = {}
    while (row := plain.expect_any("352", "315")).command == "352":
        flags[row.params[5]] = row.params[6]
    assert flags == {"v3bot_bot": "H@B", "v3bot_tagged": "H", "v3bot_plain": "H"}
    bot.send("MODE v3bot_bot -B")
    assert bot.expect("MODE").params == ["v3bot_bot", "-B"]
    bot.send("PRIVMSG #bots :human again")
    assert "bot" not in tagged.expect("PRIVMSG", "#bots", "human again").tags
    tagged.send("WHOIS v3bot_bot")
    whois = [tagged.expect_any("311", "312", "317", "318", "319", "335") for _ in range(5)]
    assert "335" not in [m.command for m in whois] and whois[-1].command == "318"


def test_a_message_right_after_mode_plus_b_carries_the_bot_tag(server):
    bot, tagged = with_caps(server, 2, ("v3bb_bot", ""), ("v3bb_tagged", "message-tags"))
    join_all("#botnow", bot, tagged)
    bot.send("MODE v3bb_bot +B\r\nPRIVMSG #botnow :first as a bot")  # one write: the MODE is still at the hub
    assert "bot" in tagged.expect("PRIVMSG", "#botnow", "first as a bot").tags
    bot.send("MODE v3bb_bot -B\r\nPRIVMSG #botnow :human again")
    assert "bot" not in tagged.expect("PRIVMSG", "#botnow", "human again").tags


def test_a_rename_seen_during_a_labelled_command_stays_outside_its_batch(server):
    alice, bob, carol = with_caps(server, 3, ("v3r_alice", "labeled-response batch"), ("v3r_bob", ""),
                                  ("v3r_carol", ""))
    join_all("#before", carol, alice)
    carol.send("TOPIC #before :kept")
    alice.expect("TOPIC", "#before")
    asked = len(alice.received)
    with stopped(bob.worker_pid):  # alice's WHOIS of bob waits for his worker (up to 2 s)
        alice.send("@label=slow WHOIS v3r_bob")
        carol.send("RENAME #before #after :tidy")
        alice.expect("366", "v3r_alice", "#after")  # no rename cap: PART, JOIN, topic and names
        assert not alice.since("BATCH")  # the WHOIS is still waiting
    assert alice.expect("BATCH").tags["label"] == "slow"
    fallback = [m for m in alice.received[asked:] if {"#before", "#after"} & set(m.params)]
    assert [m.command for m in fallback] == ["PART", "JOIN", "332", "333", "353", "366"]
    assert all("batch" not in m.tags for m in fallback), fallback
