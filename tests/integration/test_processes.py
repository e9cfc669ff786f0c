"""The process model: balance, restarts after SIGKILL, shutdown, reload, orphans, crash loops."""
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter

import psutil
import pytest

from tests.integration.harness import (ROOT, Server, client_on_worker, join_all, motd_on_every_worker, registered,
                                       timed_wait, wait_for)


def chat_works(a, b, channel, text):
    a.send(f"PRIVMSG {channel} :{text}")
    assert b.expect("PRIVMSG", channel, where=lambda m: m.params[1] == text).source.startswith(a.nick + "!")


def test_connections_spread_evenly_over_workers():
    srv = Server(4)
    try:
        srv.wait_ready()
        clients = []
        for _burst in range(4):
            clients += [socket.create_connection(("127.0.0.1", srv.port)) for _ in range(100)]
        local_ports = {c.getsockname()[1] for c in clients}

        def spread():
            counts = Counter()
            for pid in srv.current_workers():
                for conn in psutil.Process(pid).net_connections("tcp"):
                    if conn.raddr and conn.raddr.port in local_ports:
                        counts[pid] += 1
            return counts if sum(counts.values()) == 400 else None

        counts = wait_for(spread, what="all 400 connections accepted")
        assert len(counts) == 4
        for pid, n in counts.items():
            assert 75 <= n <= 125, f"worker {pid} holds {n} of 400: {dict(counts)}"
        for c in clients:
            c.close()
    finally:
        srv.stop()


def test_killed_worker_is_replaced_and_others_keep_chatting():
    srv = Server(3)
    try:
        alice, bob, carol = registered(srv, "alice", "bob", "carol")
        join_all("#room", alice, bob, carol)
        victim = bob.worker_pid
        survivors = srv.current_workers() - {victim}
        killed = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        for watcher in (alice, carol):
            quit_msg = watcher.expect("QUIT")
            assert quit_msg.source.startswith("bob!")
        bob.expect_closed()
        timed_wait(lambda: victim not in srv.current_workers() and len(srv.current_workers()) == 3,
                   timeout=20, what="a replacement worker", since=killed)
        replacement, = srv.current_workers() - survivors
        chat_works(alice, carol, "#room", "still here")
        chat_works(carol, alice, "#room", "me too")
        # The replacement accepts on the same socket: a connection it holds registers (bob's
        # nick is free again) and chats with the others.
        newbob = client_on_worker(srv, replacement)
        newbob.register("bob")
        print(f"the replacement worker welcomed a client {time.monotonic() - killed:.2f}s after the kill")
        newbob.send("JOIN #room")
        for watcher in (alice, carol):
            watcher.expect("JOIN", "#room", where=lambda m: m.source.startswith("bob!"))
        chat_works(newbob, alice, "#room", "back on a new worker")
        chat_works(carol, newbob, "#room", "welcome back")
        assert srv.proc.poll() is None
    finally:
        srv.stop()


def test_killed_hub_is_replaced_and_nobody_notices():
    srv = Server(2)
    try:
        alice, bob = registered(srv, "alice", "bob")
        join_all("#room", alice, bob)
        alice.send("TOPIC #room :before the crash")
        bob.expect("TOPIC")
        old_hub = srv.current_hub()
        killed = time.monotonic()
        os.kill(old_hub, signal.SIGKILL)
        timed_wait(lambda: srv.current_hub() not in (None, old_hub), timeout=20, what="a new hub", since=killed)
        # Nobody was disconnected, and the rebuilt state is the old one.
        chat_works(alice, bob, "#room", "after the crash")
        chat_works(bob, alice, "#room", "indeed")
        alice.send("PRIVMSG bob :private still works")
        assert bob.expect("PRIVMSG", "bob").params[1] == "private still works"
        thief = srv.connect()
        thief.send("NICK alice")
        thief.send("USER t 0 * :t")
        thief.expect("433")
        thief.send("NICK carol")
        thief.expect("001")
        thief.send("JOIN #room")
        assert thief.expect("332").params[2] == "before the crash"
        names = thief.expect("353").params[-1].split()
        assert sorted(names) == ["@alice", "bob", "carol"]
        assert not alice.closed and not bob.closed
    finally:
        srv.stop()


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_a_stop_signal_tells_every_client_and_releases_the_port(how):
    """Ctrl-C sends SIGINT to the whole process group, the children included."""
    srv = Server(3, own_process_group=True)
    clients = [srv.connect() for _ in range(6)]
    for i, c in enumerate(clients):
        c.register(f"user{i}")
    children = srv.children()
    started = time.monotonic()
    if how == "SIGTERM":
        srv.proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(srv.pid, signal.SIGINT)
    for c in clients:
        assert c.expect("ERROR").params == ["Server shutting down"]
        c.expect_closed()
    assert srv.proc.wait(timeout=30) == 0  # a bounded stop, with room for a slow machine
    print(f"the server stopped {time.monotonic() - started:.2f}s after {how}")
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"children left: {alive}"
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("127.0.0.1", srv.port))  # the port is free again
    probe.close()
    srv.stop()
    assert "Traceback" not in srv.stderr and "KeyboardInterrupt" not in srv.stderr, srv.stderr[-3000:]
    assert f"received {'SIGTERM' if how == 'SIGTERM' else 'SIGINT'}: shutting down" in srv.stderr


def test_sighup_reloads_the_motd_without_dropping_anyone(tmp_path):
    conf = tmp_path / "hubchat.toml"
    conf.write_text('[server]\nmotd = "first edition"\n')
    srv = Server(2, "--config", str(conf))
    try:
        stay = srv.connect()
        stay.register("stayer")
        assert stay.since("372")[0].params[1] == "- first edition"
        conf.write_text('[server]\nmotd = "second edition"\n')
        srv.proc.send_signal(signal.SIGHUP)

        wait_for(lambda: set(motd_on_every_worker(srv)) == {"- second edition"}, what="the new MOTD on every worker")
        stay.sync()  # still connected
    finally:
        srv.stop()


def test_bad_config_on_sighup_keeps_the_old_one(tmp_path):
    conf = tmp_path / "hubchat.toml"
    conf.write_text('[server]\nmotd = "good"\n')
    srv = Server(1, "--config", str(conf))
    try:
        conf.write_text('[limits]\nnicklen = "long"\n')
        srv.proc.send_signal(signal.SIGHUP)
        assert "limits.nicklen" in srv.wait_for_log("configuration not reloaded")
        c = srv.connect()
        c.register("after")
        c.send("MOTD")
        assert c.expect("372").params[1] == "- good"
    finally:
        srv.stop()


def test_children_exit_when_the_supervisor_is_killed():
    srv = Server(2)
    srv.wait_ready()
    children = srv.children()
    c = srv.connect()
    c.register("orphan")
    os.kill(srv.pid, signal.SIGKILL)
    srv.proc.wait(timeout=5)
    gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"orphans left: {alive}"
    c.expect("ERROR")
    probe = socket.socket()
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind(("127.0.0.1", srv.port))  # nobody holds the port any more
    probe.close()
    srv.stop()


@pytest.mark.parametrize("role", ["hub", "worker"])
def test_a_child_failing_at_boot_stops_the_server_with_a_message(role):
    script = textwrap.dedent(f"""
        import sys
        import config
        from hub.supervisor import Supervisor, setup_logging
        def broken(cfg, ctl, **kw):
            raise RuntimeError("cannot start")
        setup_logging("info")
        cfg = config.load(env={{}}, overrides={{"server": {{"port": 0, "workers": 1}}, "web": {{"port": 0}}}})
        sys.exit(Supervisor(cfg, {role}_main=broken).run())
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 1
    label = r"hub" if role == "hub" else r"worker 0 \(wid \d+\)"
    assert re.search(rf"ERROR \S+ {label} failed 5 times in a row", proc.stderr), proc.stderr[-3000:]


def test_a_hung_worker_or_hub_is_killed_and_replaced():
    """SIGSTOP leaves a process alive but silent: the supervisor notices the missing heartbeat."""
    srv = Server(2, env={"HUBCHAT_SERVER_HANG_TIMEOUT": "2"})
    try:
        alice, bob = registered(srv, "alice", "bob")
        join_all("#hang", alice, bob)
        stuck = bob.worker_pid
        os.kill(stuck, signal.SIGSTOP)
        wait_for(lambda: stuck not in srv.current_workers() and len(srv.current_workers()) == 2, timeout=20,
                 what="the stopped worker to be replaced")
        bob.expect_closed()  # its clients go with it; nobody else does
        carol = srv.connect()
        carol.register("carol")
        carol.send("JOIN #hang")
        alice.expect("JOIN", "#hang", where=lambda m: m.source.startswith("carol!"))
        old_hub = srv.current_hub()
        os.kill(old_hub, signal.SIGSTOP)
        wait_for(lambda: srv.current_hub() not in (None, old_hub), timeout=20, what="the stopped hub to be replaced")
        carol.send("PRIVMSG #hang :after the hub came back")
        alice.expect("PRIVMSG", "#hang", "after the hub came back")
    finally:
        srv.stop()
    assert srv.stderr.count("has not stamped its heartbeat") == 2
