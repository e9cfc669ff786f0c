"""Limits on what one client can do to the others: flood control, connection limits, bad input."""
import signal
import socket
import time

import psutil
import pytest

from tests.integration.harness import Server, clients_on_distinct_workers, connections_on_distinct_workers, \
    quit_through_the_hub, worker_pid_of

FLOOD = {"HUBCHAT_LIMITS_FLOOD_BURST": "5", "HUBCHAT_LIMITS_FLOOD_RATE": "20"}


def test_fakelag_slows_a_flooder_without_dropping_it_or_others():
    srv = Server(1, env=FLOOD, flood_control=True)
    try:
        flooder, bystander = srv.connect(), srv.connect()
        flooder.register("flooder")
        bystander.register("bystander")
        lines = 45
        started = time.monotonic()
        flooder.send(b"".join(f"PING :n{i}\r\n".encode() for i in range(lines)))
        first = flooder.expect("PONG", where=lambda m: m.params[-1] == "n0")
        assert first
        bystander.sync()  # answered while the flooder's backlog is still being worked off
        assert len(flooder.since("PONG")) < lines
        flooder.expect("PONG", where=lambda m: m.params[-1] == f"n{lines - 1}")
        elapsed = time.monotonic() - started
        # 5 at once, then 20 a second: the last of 45 cannot be answered before 2 s.
        assert elapsed >= (lines - 5) / 20 * 0.9
        assert [m.params[-1] for m in flooder.since("PONG")] == [f"n{i}" for i in range(lines)]
        assert not flooder.closed
    finally:
        srv.stop()


def test_no_flood_control_answers_a_burst_in_full():
    srv = Server(1, env=FLOOD, flood_control=False)
    try:
        c = srv.connect()
        c.register("trusted")
        c.send(b"".join(f"PING :n{i}\r\n".encode() for i in range(200)))
        c.expect("PONG", where=lambda m: m.params[-1] == "n199")
        assert len(c.since("PONG")) == 200
    finally:
        srv.stop()


def held_on_every_worker(srv):
    """One registered client on each worker, and no other connection that the hub counts."""
    held = connections_on_distinct_workers(srv, srv.nworkers, srv.connect, dispose=quit_through_the_hub)
    for i, client in enumerate(held.values()):
        client.register(f"held{i}")
    return list(held.values())


def tighten(srv, conf, limits):
    """Set a limit once the held clients are placed: placing them may take spare connections."""
    conf.write_text("[limits]\n" + limits)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_for_log("hub reloaded its configuration")


@pytest.mark.parametrize("limits,refusal", [
    ("max_clients_per_ip = 3\nexempt_loopback = false\n", "Too many connections from your address"),
    ("max_clients = 3\n", "The server is full"),
])
def test_a_connection_limit_holds_across_workers(tmp_path, limits, refusal):
    """Each worker holds one of the three connections: only the hub's count can refuse a fourth."""
    conf = tmp_path / "limits.toml"
    conf.write_text("")
    srv = Server(3, "--config", str(conf))
    try:
        held = held_on_every_worker(srv)
        tighten(srv, conf, limits)
        extra = srv.connect()
        assert refusal in extra.expect("ERROR").params[0]
        extra.expect_closed()
        held[0].send("QUIT")
        held[0].expect_closed()  # the hub has stopped counting it (see quit_through_the_hub)
        again = srv.connect()  # a place was freed
        again.register("again")
    finally:
        srv.stop()


def test_loopback_is_exempt_from_the_per_address_limit_by_default():
    srv = Server(3, env={"HUBCHAT_LIMITS_MAX_CLIENTS_PER_IP": "2"})
    try:
        clients = clients_on_distinct_workers(srv, 3) + [srv.connect() for _ in range(2)]
        for i, client in enumerate(clients):
            client.register(f"local{i}")  # five from 127.0.0.1, over a limit of two
    finally:
        srv.stop()


def test_an_http_request_gets_one_clear_line():
    srv = Server(1)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            reply = b""
            while chunk := sock.recv(4096):
                reply += chunk
        assert reply == b"ERROR :This is an IRC server, not a web server: connect to it with an IRC client\r\n"
    finally:
        srv.stop()


def test_too_many_commands_before_registration():
    srv = Server(1)
    try:
        c = srv.connect()
        c.send(b"".join(b"PING :x\r\n" for _ in range(100)))
        assert c.expect("ERROR").params == ["Too many commands before registration"]
        c.expect_closed()
    finally:
        srv.stop()


def test_bytes_without_a_line_ending_end_the_connection(server):
    c = server.connect()
    c.register("rambler")
    c.sock.sendall(b"PRIVMSG #x :" + b"y" * 20000)  # no newline, ever
    assert "Input line too long" in c.expect("ERROR").params[0]
    c.expect_closed()


def test_cr_lf_and_nul_never_reach_another_client(server):
    alice, bob = clients_on_distinct_workers(server, 2)
    alice.register("alice")
    bob.register("bob")
    alice.send(b"PRIVMSG bob :one\rPRIVMSG bob :two\x00three\nPRIVMSG bob :four\r\n")
    assert alice.expect("400").params[-1] == "Line contains a NUL byte"
    assert bob.expect("PRIVMSG").params == ["bob", "one"]
    assert bob.expect("PRIVMSG").params == ["bob", "four"]
    assert [m.params[1] for m in bob.since("PRIVMSG")] == ["one", "four"]


def test_a_client_that_stops_reading_is_dropped_and_the_worker_stays_small():
    srv = Server(2, env={"HUBCHAT_LIMITS_SENDQ": "65536"})
    try:
        sleeper = srv.connect(rcvbuf=4096)
        talker, listener = srv.connect(), srv.connect()
        for c, nick in ((sleeper, "sleeper"), (talker, "talker"), (listener, "listener")):
            c.register(nick)
            c.send("JOIN #busy")
            c.expect("366")
        worker = psutil.Process(worker_pid_of(srv, sleeper))
        before = worker.memory_info().rss
        text = "z" * 440
        # The kernel's loopback buffers absorb a few MB first; keep talking (at most ~9 MB)
        # until the worker gives up on the sleeper.
        dropped, rounds = None, 0
        while dropped is None and rounds < 400:
            talker.send(b"".join(f"PRIVMSG #busy :{rounds} {i} {text}\r\n".encode() for i in range(50)))
            listener.expect("PRIVMSG", where=lambda m, r=rounds: m.params[1].startswith(f"{r} 49 "))
            rounds += 1
            dropped = next((m for m in listener.since("QUIT") if m.source.startswith("sleeper!")), None)
        assert dropped is not None and dropped.params == ["SendQ exceeded"]
        assert len(listener.since("PRIVMSG")) == rounds * 50  # the others were not held back
        growth = worker.memory_info().rss - before
        assert growth < 8 * 1024 * 1024, f"the worker grew by {growth} bytes"
    finally:
        srv.stop()
