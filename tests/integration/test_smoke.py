"""The shortest path through the whole system: two clients on different workers chat."""
import pytest

from tests.integration.harness import Server, clients_on_distinct_workers


def chat_across_workers(server):
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


def test_two_clients_on_different_workers_chat(server):
    chat_across_workers(server)


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_either_event_loop_serves_across_workers(loop):
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    srv = Server(2, "--event-loop", loop)
    try:
        chat_across_workers(srv)
    finally:
        srv.stop()
    assert srv.stderr.count(f"{loop} event loop") == 4  # the hub, the store and both workers
