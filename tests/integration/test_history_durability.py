"""History against process deaths: what the server accepted is stored, whatever dies. A clean
stop loses nothing, and channels keep their settings; SIGKILL of the store, of its writer or of
the hub loses nothing (what was not committed is sent again or done again, and a copy is dropped
by msgid); SIGKILL of every
process loses at most the commit interval. And retention: the store keeps what it is told to."""
from __future__ import annotations

import os
import re
import signal
import time

import psutil

from tests.integration.harness import Server, wait_for
from tests.integration.test_faults import stream
from tests.integration.test_history import CAPS, ask, join, say, texts, with_caps

LARGE = {"HUBCHAT_HISTORY_MAX_QUERY": "5000"}  # one query reads a whole stream
COMMIT_INTERVAL = 0.02  # history.commit_interval's default


def streamed(srv: Server, channel: str, count: int, kill=None) -> tuple:
    """alice streams `count` numbered messages to `channel`, where bob (on another worker) reads
    them; `kill()` runs when bob has read a fifth of them. Returns both once bob has them all."""
    alice, bob = with_caps(srv, ("alice", CAPS), ("bob", CAPS))
    join(channel, alice, bob)
    sender = stream(alice, channel, count, "n")
    bob.expect("PRIVMSG", where=lambda m: m.params[-1] == f"n {count // 5}", timeout=30)
    if kill is not None:
        kill()
    sender.join(60)
    bob.expect("PRIVMSG", where=lambda m: m.params[-1] == f"n {count - 1}", timeout=30)
    return alice, bob


def stored(client, channel: str) -> list[str]:
    _, got = ask(client, f"CHATHISTORY LATEST {channel} * 5000")
    return texts(got)


def test_a_clean_restart_keeps_history_and_channel_settings(tmp_path):
    srv = Server(2, data_dir=str(tmp_path), env=LARGE)
    try:
        alice, bob = with_caps(srv, ("alice", CAPS), ("bob", CAPS))
        join("#keep", alice, bob)
        alice.send("TOPIC #keep :what we keep\r\nMODE #keep +kl door 9\r\nMODE #keep +b nobody!*@*")
        alice.expect("MODE", "#keep", "+b")
        sent = [say(alice, "#keep", f"said {i}", bob) for i in range(5)]
        mine = say(alice, "bob", "between us", bob)
    finally:
        assert srv.stop() == 0
    again = Server(2, data_dir=str(tmp_path), env=LARGE)
    try:
        carol, = with_caps(again, ("carol", CAPS))
        carol.send("JOIN #keep")
        carol.expect("475", "carol", "#keep")  # the key is still set
        carol.send("JOIN #keep door")
        assert carol.expect("332").params[-1] == "what we keep"
        carol.expect("366")
        carol.send("MODE #keep\r\nMODE #keep b")
        assert carol.expect("324").params[2:] == ["+klnt", "door", "9"]
        assert carol.expect("367").params[2] == "nobody!*@*"
        _, got = ask(carol, "CHATHISTORY LATEST #keep * 50")
        assert [(m.params[-1], m.tags["msgid"], m.tags["time"]) for m in got] == \
            [(m["text"], m["msgid"], m["time"]) for m in sent]
        _, private = ask(carol, "CHATHISTORY LATEST bob * 50")
        assert private == [] and mine["msgid"]  # carol is neither party: alice's private history is not hers
    finally:
        again.stop()


def writer_of(srv: Server) -> tuple[int, int]:
    """The store and its idle-priority writer process (history/writer.py)."""
    wait_for(lambda: srv.current_store() is not None and psutil.Process(srv.current_store()).children(), 20,
             "the store and its writer")
    store = srv.current_store()
    (writer,) = psutil.Process(store).children()
    return store, writer.pid


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_store_killed_mid_stream_loses_nothing_and_leaves_no_writer_behind():
    srv = Server(2, env=LARGE)
    try:
        killed = []

        def kill_store():
            killed.extend(writer_of(srv))
            os.kill(killed[0], signal.SIGKILL)
        alice, bob = streamed(srv, "#s", 1500, kill_store)
        wait_for(lambda: srv.current_store() not in (None, killed[0]), 20, "a new store")
        assert stored(bob, "#s") == [f"n {i}" for i in range(1500)]
        # The kill landed mid-stream: the new store was sent items the dead one had not finished.
        resent = re.search(r"sending it the (\d+) items", srv.wait_for_log("the store is back"))
        assert resent and int(resent.group(1)) > 0
        wait_for(lambda: gone(killed[1]), 20, "the dead store's writer to exit")
    finally:
        srv.stop()


def test_the_stores_writer_killed_mid_stream_loses_nothing_and_the_store_lives_on():
    srv = Server(2, env=LARGE)
    try:
        store, writer = writer_of(srv)
        alice, bob = streamed(srv, "#w", 1500, lambda: os.kill(writer, signal.SIGKILL))
        srv.wait_for_log("the idle writer exited")
        assert stored(bob, "#w") == [f"n {i}" for i in range(1500)]
        assert srv.current_store() == store
    finally:
        srv.stop()


def test_the_hub_killed_mid_stream_loses_and_doubles_nothing_in_history():
    srv = Server(2, env=LARGE)
    try:
        hubs = []

        def kill_hub():
            hubs.append(srv.current_hub())
            os.kill(hubs[0], signal.SIGKILL)
        alice, bob = streamed(srv, "#h", 1500, kill_hub)
        assert srv.current_hub() not in (None, hubs[0])
        assert stored(alice, "#h") == [f"n {i}" for i in range(1500)]  # replays stored once, by msgid
    finally:
        srv.stop()


def test_sigkill_of_every_process_loses_at_most_the_commit_interval(tmp_path):
    srv = Server(2, data_dir=str(tmp_path), env=LARGE, own_process_group=True)
    try:
        streamed(srv, "#all", 300)
        time.sleep(3 * COMMIT_INTERVAL)  # the claim is about time: what is older than the interval is on disk
        os.killpg(srv.pid, signal.SIGKILL)
        srv.proc.wait(10)
    finally:
        srv.stop()
    again = Server(2, data_dir=str(tmp_path), env=LARGE)
    try:
        reader, = with_caps(again, ("reader", CAPS))
        join("#all", reader)
        assert stored(reader, "#all") == [f"n {i}" for i in range(300)]
    finally:
        again.stop()


def test_retention_keeps_the_newest_per_conversation(tmp_path):
    env = {**LARGE, "HUBCHAT_HISTORY_MAX_PER_TARGET": "5"}
    srv = Server(2, data_dir=str(tmp_path), env=env)
    try:
        alice, bob = with_caps(srv, ("alice", CAPS), ("bob", CAPS))
        join("#short", alice, bob)
        for i in range(12):
            say(alice, "#short", f"m {i}", bob)
    finally:
        srv.stop()
    again = Server(2, data_dir=str(tmp_path), env=env)  # the store prunes as it starts
    try:
        reader, = with_caps(again, ("reader", CAPS))
        join("#short", reader)
        # The newest five rows of #short: m 9 to m 11, then alice's and bob's QUITs as the server stopped
        # (events count toward the limit too; a client without event-playback is shown the messages).
        assert stored(reader, "#short") == ["m 9", "m 10", "m 11"]
    finally:
        again.stop()


def test_with_history_off_there_is_no_store_and_a_query_is_refused(tmp_path):
    srv = Server(2, "--no-history", data_dir=str(tmp_path / "unused"))
    try:
        assert srv.store_pid is None and len(srv.children()) == 3  # the hub and two workers
        client = srv.connect()
        client.send("CAP LS 302")
        offered = {name.partition("=")[0] for m in [client.expect("CAP")] for name in m.params[-1].split()}
        assert "server-time" in offered and not offered & {"draft/chathistory", "soju.im/search", "sasl",
                                                           "draft/read-marker", "draft/message-redaction"}
        client.send("CAP END")
        client.register("nohist")
        tokens = [p.partition("=")[0] for m in client.since("005") for p in m.params[1:-1]]
        assert "NETWORK" in tokens and "CHATHISTORY" not in tokens and "MSGREFTYPES" not in tokens
        client.send("CHATHISTORY LATEST nohist * 10")
        fail = client.expect("FAIL")
        assert fail.params[:2] == ["CHATHISTORY", "MESSAGE_ERROR"]
        client.sync()  # still connected, and answered in order
    finally:
        srv.stop()
    assert not (tmp_path / "unused").exists()


def test_with_search_off_search_is_refused_and_a_restart_with_it_on_finds_what_was_said_meanwhile(tmp_path):
    srv = Server(2, data_dir=str(tmp_path), env={"HUBCHAT_HISTORY_SEARCH": "false"})
    try:
        probe = srv.connect()
        probe.send("CAP LS 302")
        offered = {name.partition("=")[0] for name in probe.expect("CAP").params[-1].split()}
        assert "draft/chathistory" in offered and "soju.im/search" not in offered
        probe.close()
        alice, bob = with_caps(srv, ("alice", CAPS), ("bob", CAPS))
        join("#words", alice, bob)
        sent = say(alice, "#words", "a needle in the haystack", bob)
        alice.send("SEARCH in=#words;text=needle")
        assert alice.expect("FAIL").params[:3] == ["SEARCH", "MESSAGE_ERROR", "SEARCH"]
        _, got = ask(alice, "CHATHISTORY LATEST #words * 10")  # history itself is kept, and in order
        assert texts(got) == [sent["text"]]
    finally:
        assert srv.stop() == 0
    again = Server(2, data_dir=str(tmp_path))
    try:
        again.wait_for_log("indexed the words of 1 messages stored while it was off")
        carol, = with_caps(again, ("carol", CAPS + " soju.im/search"))
        join("#words", carol)
        header, found = ask(carol, "SEARCH in=#words;text=needle")
        assert header == ["soju.im/search"] and [m.tags["msgid"] for m in found] == [sent["msgid"]]
    finally:
        again.stop()
