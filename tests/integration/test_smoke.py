from tests.integration.harness import clients_on_distinct_workers


def test_two_clients_on_different_workers_chat(server):
    alice, bob = clients_on_distinct_workers(server, 2)
    assert alice.worker_pid != bob.worker_pid
    alice.register("alice")
    bob.register("bob")
    alice.send("JOIN #room")
    alice.expect("366", "alice", "#room")
    bob.send("JOIN #room")
    bob.expect("366")
    alice.expect("JOIN", "#room", where=lambda m: m.source.startswith("bob!"))
    bob.send("PRIVMSG #room :hello")
    msg = alice.expect("PRIVMSG", "#room")
    assert msg.params == ["#room", "hello"] and msg.source.startswith("bob!")
