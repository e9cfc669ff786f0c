"""Processes dying under load: what clients see, and that nothing accepted is lost or doubled."""
import os
import signal
import threading
import time

from tests.integration.harness import Server, client_on_worker, join_all, registered, wait_for


def stream(client, target, count, label, pause=0.002):
    """Send numbered messages from a thread, steadily, so a kill lands mid-stream."""
    def run():
        for i in range(count):
            client.send(f"PRIVMSG {target} :{label} {i}")
            time.sleep(pause)  # pacing the load, not synchronisation
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def numbers(client, label):
    return [int(m.params[1].split()[1]) for m in client.since("PRIVMSG") if m.params[1].startswith(label + " ")]


def test_hub_killed_under_load_loses_and_doubles_nothing():
    srv = Server(2)
    try:
        alice, bob = registered(srv, "alice", "bob")
        join_all("#stream", alice, bob)
        count = 1500
        senders = [stream(alice, "#stream", count, "a"), stream(bob, "alice", count, "b")]
        bob.expect("PRIVMSG", where=lambda m: m.params[1] == "a 100")  # well under way
        old_hub = srv.current_hub()
        os.kill(old_hub, signal.SIGKILL)
        for t in senders:
            t.join(60)
        bob.expect("PRIVMSG", where=lambda m: m.params[1] == f"a {count - 1}", timeout=30)
        alice.expect("PRIVMSG", where=lambda m: m.params[1] == f"b {count - 1}", timeout=30)
        bob.sync()
        alice.sync()
        assert numbers(bob, "a") == list(range(count)), "channel messages lost, doubled or reordered"
        assert numbers(alice, "b") == list(range(count)), "private messages lost, doubled or reordered"
        assert not alice.closed and not bob.closed
        assert srv.current_hub() not in (None, old_hub)
    finally:
        srv.stop()


def test_worker_killed_under_load_costs_only_its_own_clients():
    srv = Server(3)
    try:
        talker, victim, listener = registered(srv, "talker", "victim", "listener")
        join_all("#stream", talker, victim, listener)
        count = 1000
        sender = stream(talker, "#stream", count, "t")
        listener.expect("PRIVMSG", where=lambda m: m.params[1] == "t 100")
        dead = victim.worker_pid
        os.kill(dead, signal.SIGKILL)
        sender.join(60)
        listener.expect("PRIVMSG", where=lambda m: m.params[1] == f"t {count - 1}", timeout=30)
        assert numbers(listener, "t") == list(range(count))
        quits = [m for m in listener.since("QUIT")]
        assert [m.source.split("!")[0] for m in quits] == ["victim"]
        victim.expect_closed()
        wait_for(lambda: dead not in srv.current_workers() and len(srv.current_workers()) == 3,
                 what="a replacement worker")
        newcomer = srv.connect()
        newcomer.register("newcomer")
        assert not talker.closed and not listener.closed
    finally:
        srv.stop()


def test_channel_modes_bans_away_and_operators_survive_a_hub_restart():
    srv = Server(2)
    try:
        alice, bob = registered(srv, "alice", "bob")
        join_all("#kept", alice, bob)
        alice.send("MODE #kept +kb sesame evil!*@*\r\nMODE #kept +v bob\r\nTOPIC #kept :still here\r\nAWAY :out")
        bob.expect("MODE", "#kept", "+v", "bob")
        alice.expect("306")
        old_hub = srv.current_hub()
        os.kill(old_hub, signal.SIGKILL)
        wait_for(lambda: srv.current_hub() not in (None, old_hub), what="a new hub")
        carol, = registered(srv, "carol")
        carol.send("JOIN #kept")
        carol.expect("475", "carol", "#kept")
        carol.send("WHOIS alice")
        assert carol.expect("301").params[1:] == ["alice", "out"]
        carol.send("NICK evil\r\nJOIN #kept sesame")
        carol.expect("474", "evil", "#kept")
        bob.send("MODE #kept")
        assert bob.expect("324").params[2:] == ["+knt", "sesame"]
        bob.send("NAMES #kept")
        assert sorted(bob.expect("353").params[3].split()) == ["+bob", "@alice"]
        bob.send("TOPIC #kept")
        assert bob.expect("332").params[2] == "still here"
    finally:
        srv.stop()


def test_a_replacement_worker_knows_everyone_already_there():
    srv = Server(2)
    try:
        alice, bob = registered(srv, "alice", "bob")
        join_all("#here", alice, bob)
        os.kill(bob.worker_pid, signal.SIGKILL)
        alice.expect("QUIT", where=lambda m: m.source.startswith("bob!"))
        wait_for(lambda: bob.worker_pid not in srv.current_workers() and len(srv.current_workers()) == 2,
                 what="a replacement worker")
        replacement, = srv.current_workers() - {alice.worker_pid}
        newcomer = client_on_worker(srv, replacement)
        newcomer.register("newcomer")
        newcomer.send("WHOIS alice")
        assert newcomer.expect_any("311", "401").command == "311"
        newcomer.send("NAMES #here")
        assert newcomer.expect_any("353", "366").params[1:] == ["=", "#here", "@alice"]
        newcomer.send("LUSERS")
        assert newcomer.expect("251").params[1] == "There are 2 users and 0 invisible on 1 servers"
    finally:
        srv.stop()
