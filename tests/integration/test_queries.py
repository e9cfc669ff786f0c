"""User and server queries: WHO/WHOX, WHOIS, WHOWAS, ISON, USERHOST, AWAY, user modes, and the
server's information commands, asked by users on different workers."""
import time

import pytest

from config.passwords import hash_password
from tests.integration.harness import (Server, clients_on_distinct_workers, connections_on_distinct_workers,
                                       join_all, quit_through_the_hub, registered, stopped)
from workers.commands import COMMANDS


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()


def replies_until(client, end, *numerics):
    found = []
    while (msg := client.expect_any(end, *numerics)).command != end:
        found.append(msg)
    return found, msg


def test_who_for_a_channel_a_nick_and_a_mask_and_whox(server):
    alice, bob = registered(server, "qw_alice", "qw_bob")
    join_all("#who", alice, bob)
    bob.send("AWAY :lunch")
    bob.expect("306")
    alice.send("WHO #who")
    rows, end = replies_until(alice, "315", "352")
    assert end.params[1] == "#who"
    by_nick = {r.params[5]: r.params for r in rows}
    assert by_nick["qw_alice"][1:7] == ["#who", "~tester", "127.0.0.1", "hubchat.local", "qw_alice", "H@"]
    assert by_nick["qw_bob"][6] == "G" and by_nick["qw_bob"][7] == "0 Test User"
    alice.send("WHO qw_bob")
    rows, _ = replies_until(alice, "315", "352")
    assert [r.params[5] for r in rows] == ["qw_bob"]
    alice.send("WHO qw_*")
    rows, _ = replies_until(alice, "315", "352")
    assert {"qw_alice", "qw_bob"} <= {r.params[5] for r in rows}
    alice.send("WHO #who %tnfu,42")
    rows, _ = replies_until(alice, "315", "354")
    assert sorted(r.params[1:] for r in rows) == [["42", "~tester", "qw_alice", "H@"],
                                                   ["42", "~tester", "qw_bob", "G"]]


def test_whois_of_a_user_on_another_worker(server):
    alice, bob = registered(server, "qi_alice", "qi_bob")
    join_all("#whois", alice, bob)
    bob.send("AWAY :back soon")
    bob.expect("306")
    alice.send("WHOIS qi_bob")
    assert alice.expect("311").params[1:] == ["qi_bob", "~tester", "127.0.0.1", "*", "Test User"]
    assert alice.expect("319").params[1:] == ["qi_bob", "#whois"]
    assert alice.expect("312").params[1:3] == ["qi_bob", "hubchat.local"]
    assert alice.expect("301").params[1:] == ["qi_bob", "back soon"]
    idle = alice.expect("317")  # only bob's worker knows: asked through the hub
    assert idle.params[1] == "qi_bob" and 0 <= int(idle.params[2]) < 60 and int(idle.params[3]) > 0
    alice.expect("318", "qi_alice", "qi_bob")
    alice.send("WHOIS nobody_here")
    alice.expect("401", "qi_alice", "nobody_here")
    alice.expect("318", "qi_alice", "nobody_here")


def test_whowas_after_a_nick_change_and_a_quit(server):
    alice, bob = registered(server, "qh_alice", "qh_bob")
    bob.send("NICK qh_robert")
    bob.expect("NICK")
    bob.send("QUIT :bye")
    bob.expect_closed()
    alice.send("WHOWAS qh_robert")
    assert alice.expect("314").params[1:] == ["qh_robert", "~tester", "127.0.0.1", "*", "Test User"]
    alice.expect("369", "qh_alice", "qh_robert")
    alice.send("WHOWAS qh_bob")
    alice.expect("314", "qh_alice", "qh_bob")
    alice.send("WHOWAS never_seen_nick")
    alice.expect("406", "qh_alice", "never_seen_nick")
    alice.expect("369", "qh_alice", "never_seen_nick")


def test_ison_and_userhost(server):
    alice, bob = registered(server, "qs_alice", "qs_bob")
    alice.send("ISON qs_BOB nobody_here qs_alice")
    assert alice.expect("303").params[1] == "qs_bob qs_alice"
    bob.send("AWAY :gone")
    bob.expect("306")
    alice.send("USERHOST qs_bob qs_alice nobody_here")
    assert alice.expect("302").params[1] == "qs_bob=-~tester@127.0.0.1 qs_alice=+~tester@127.0.0.1"


def test_away_replies_and_the_away_reply_to_private_messages(server):
    alice, bob = registered(server, "qa_alice", "qa_bob")
    bob.send("AWAY :in a meeting")
    assert bob.expect("306").params == ["qa_bob", "You have been marked as being away"]
    alice.send("PRIVMSG qa_bob :ping?")
    assert alice.expect("301").params[1:] == ["qa_bob", "in a meeting"]
    bob.expect("PRIVMSG", "qa_bob", "ping?")
    alice.send("NOTICE qa_bob :no auto-reply to notices")
    bob.expect("NOTICE")
    alice.sync()
    assert len(alice.since("301")) == 1
    bob.send("AWAY")
    bob.expect("305", "qa_bob")
    alice.send("PRIVMSG qa_bob :back?")
    bob.expect("PRIVMSG", "qa_bob", "back?")
    alice.sync()
    assert len(alice.since("301")) == 1


def test_user_modes_and_invisible_users(server):
    alice, bob, carol = registered(server, "qu_alice", "qu_bob", "qu_carol")
    join_all("#vis", alice, bob)
    alice.send("MODE qu_alice +i")
    assert alice.expect("MODE").params == ["qu_alice", "+i"]
    alice.send("MODE qu_alice")
    assert alice.expect("221").params == ["qu_alice", "+i"]
    alice.send("MODE qu_alice +o")  # only OPER grants +o: ignored
    alice.send("MODE qu_alice +x")
    alice.expect("501")
    alice.send("MODE qu_alice")
    assert alice.expect("221").params == ["qu_alice", "+i"]
    assert [m.params for m in alice.since("MODE")] == [["qu_alice", "+i"]]
    assert not alice.since("381")
    carol.send("WHO qu_*")
    rows, _ = replies_until(carol, "315", "352")
    assert {r.params[5] for r in rows} == {"qu_bob", "qu_carol"}  # alice is invisible to carol
    bob.send("WHO qu_*")
    rows, _ = replies_until(bob, "315", "352")
    assert "qu_alice" in {r.params[5] for r in rows}  # but not to someone sharing a channel
    carol.send("LUSERS")
    assert "1 invisible" in carol.expect("251").params[1]


def test_a_query_sees_the_clients_own_earlier_change(server):
    """JOIN then WHO at once: the WHO waits for the hub to place the client in the channel."""
    alice, = registered(server, "qf_alice")
    alice.send("JOIN #fresh\r\nWHO #fresh\r\nMODE #fresh +s\r\nMODE #fresh\r\nAWAY :x\r\nWHO qf_alice")
    rows, _ = replies_until(alice, "315", "352")
    assert [r.params[5] for r in rows] == ["qf_alice"]
    assert alice.expect("324").params[2] == "+nst"
    rows, _ = replies_until(alice, "315", "352")
    assert rows[0].params[6] == "G"


def test_server_information_commands(server):
    alice, = registered(server, "qv_alice")
    alice.send("VERSION")
    assert alice.expect("351").params[1:3] == ["hubchat-0.2", "hubchat.local"]
    alice.expect("005")
    alice.send("TIME")
    assert alice.expect("391").params[1] == "hubchat.local"
    alice.send("ADMIN")
    for numeric in ("256", "257", "258", "259"):
        alice.expect(numeric)
    alice.send("INFO")
    alice.expect("371")
    alice.expect("374")
    alice.send("HELP")
    alice.expect("704", "qv_alice", "*")
    alice.expect("706")
    alice.send("HELP privmsg")
    assert alice.expect("704").params[1:] == ["PRIVMSG", "PRIVMSG <target>[,<target>] <text>"]
    assert alice.expect("705").params[1:] == ["PRIVMSG", "Send a message to a channel or a nick."]
    alice.expect("706", "qv_alice", "PRIVMSG")
    alice.send("HELP nonsense")
    alice.expect("524", "qv_alice", "nonsense")
    alice.send("MOTD")
    alice.expect("376")
    alice.send("LUSERS")
    alice.expect("266")


def test_whois_answers_without_the_idle_time_when_the_targets_worker_does_not(server):
    alice, bob = registered(server, "qt_alice", "qt_bob")
    with stopped(bob.worker_pid):
        asked = time.monotonic()
        alice.send("WHOIS qt_bob")
        rows, end = replies_until(alice, "318", "311", "312", "317", "319")
        waited = time.monotonic() - asked
    print(f"WHOIS answered without bob's worker after {waited:.2f}s")
    assert [r.command for r in rows] == ["311", "312"] and end.params[1] == "qt_bob"
    assert waited >= 2 * 0.9  # it did wait for bob's worker (the README's 2 s) before giving up
    alice.send("WHOIS qt_bob")  # the positive control: with the worker back, the idle time returns
    rows, _ = replies_until(alice, "318", "311", "312", "317", "319")
    assert [r.command for r in rows] == ["311", "312", "317"]


def test_who_masks_match_the_host_and_the_real_name(server):
    alice, bob = clients_on_distinct_workers(server, 2)
    alice.register("qm_alice")
    bob.register("qm_bob", realname="Zebedee Quux")
    alice.send("WHO Zebedee*")  # matches neither a nick nor nick!user@host: only the real name
    rows, end = replies_until(alice, "315", "352")
    assert [r.params[5] for r in rows] == ["qm_bob"] and end.params[1] == "Zebedee*"
    alice.send("WHO 127.0.0.*")  # only the host: nick!user@host starts with the nick
    rows, _ = replies_until(alice, "315", "352")
    assert {"qm_alice", "qm_bob"} <= {r.params[5] for r in rows}
    alice.send("WHO 10.0.0.*")  # the negative control: another host matches nobody
    rows, _ = replies_until(alice, "315", "352")
    assert rows == []


def lusers(client):
    client.send("LUSERS")
    rows, end = replies_until(client, "266", "251", "252", "253", "254", "255", "265")
    return {r.command: r.params[1:] for r in rows + [end]}


def unregistered_on(srv, pid):
    """The one unregistered connection on the server: on the worker `pid`."""
    held = connections_on_distinct_workers(srv, srv.nworkers, srv.connect, dispose=quit_through_the_hub)
    for holder, client in held.items():
        if holder != pid:
            quit_through_the_hub(client)
    held[pid].ping()  # its worker has read from it: the connection is known
    return held[pid]


@pytest.fixture
def counted(tmp_path):
    """A server of its own (the counts are exact), with an operator account."""
    conf = tmp_path / "ops.toml"
    conf.write_text(f'[operators]\nroot = "{hash_password("s3cret")}"\n')
    srv = Server(2, "--config", str(conf))
    yield srv
    srv.stop()


def test_lusers_counts_users_invisible_operators_unknown_connections_and_channels(counted):
    alice, bob = registered(counted, "qc_alice", "qc_bob")
    bob.send("MODE qc_bob +i\r\nOPER root s3cret\r\nJOIN #qc1,#qc2")
    bob.expect("366", "qc_bob", "#qc2")
    newcomer = unregistered_on(counted, alice.worker_pid)  # held open while LUSERS counts it
    counts = lusers(alice)
    assert counts["251"] == ["There are 1 users and 1 invisible on 1 servers"]
    assert counts["252"] == ["1", "operator(s) online"]
    assert counts["253"] == ["1", "unknown connection(s)"]
    assert counts["254"] == ["2", "channels formed"]
    assert counts["255"] == ["I have 2 clients and 0 servers"]
    # The most users at once counts the spare clients that placing the newcomer registered.
    assert counts["265"][0] == counts["266"][0] == "2" and int(counts["266"][1]) >= 2


def test_lusers_counts_unknown_connections_on_every_worker(counted):
    alice, = registered(counted, "qk_alice")
    other, = counted.current_workers() - {alice.worker_pid}
    newcomer = unregistered_on(counted, other)  # held open while LUSERS counts it
    assert lusers(alice).get("253") == ["1", "unknown connection(s)"]


def test_lusers_counts_the_whole_server_whichever_worker_answers(tmp_path):
    conf = tmp_path / "ops.toml"
    conf.write_text(f'[operators]\nroot = "{hash_password("hunter2")}"\n')
    srv = Server(2, "--config", str(conf))
    try:
        waiting = clients_on_distinct_workers(srv, 2)
        for client in waiting:  # behind a barrier, so the hub has counted the connection
            client.send("LUSERS")
            client.expect("451")
        alice, bob = registered(srv, "lu_alice", "lu_bob")
        bob.send("MODE lu_bob +i\r\nOPER root hunter2\r\nJOIN #one")
        bob.expect("366")
        alice.send("JOIN #two")
        assert lusers(alice) == {
            "251": ["There are 1 users and 1 invisible on 1 servers"], "252": ["1", "operator(s) online"],
            "253": ["2", "unknown connection(s)"], "254": ["2", "channels formed"],
            "255": ["I have 2 clients and 0 servers"], "265": ["2", "2", "Current local users 2, max 2"],
            "266": ["2", "2", "Current global users 2, max 2"]}
        bob.send("QUIT")
        bob.expect_closed()  # after the hub let him go, so before alice's next barrier
        after = lusers(alice)
        assert after["251"] == ["There are 1 users and 0 invisible on 1 servers"] and "252" not in after
        assert after["253"][0] == "2" and after["266"] == ["1", "2", "Current global users 1, max 2"]
        carol = srv.connect()  # the welcome burst counts the same way
        carol.register("lu_carol")
        welcome = {m.command: m.params[1:] for m in carol.received if m.command in ("253", "265")}
        assert welcome == {"253": ["2", "unknown connection(s)"], "265": ["2", "2", "Current local users 2, max 2"]}
    finally:
        srv.stop()


def test_helpop_is_another_name_for_help_and_help_lists_every_command(server):
    alice, = registered(server, "qh_alice")
    alice.send("HELPOP")
    rows, _ = replies_until(alice, "706", "704", "705")
    assert rows[0].params[1] == "*"
    assert {word for row in rows[1:-1] for word in row.params[2].split()} == set(COMMANDS)
    alice.send("HELPOP privmsg")
    assert alice.expect("704").params[1:] == ["PRIVMSG", "PRIVMSG <target>[,<target>] <text>"]
    alice.expect("706", "qh_alice", "PRIVMSG")
    alice.send("HELP HELPOP")
    assert alice.expect("704").params[1:] == ["HELPOP", "HELPOP [<command>]"]
    alice.send("HELPOP nonsense")
    assert alice.expect("524").params[1:] == ["nonsense", "No help available on this topic"]
