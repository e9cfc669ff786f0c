"""Several hosts that are one network, through a real Redis (issue 18).

Three hubchat servers on 127.0.0.2, .3 and .4 share one `redis-server` started here (AOF on).
Every client's host is proved: it connected to that server's address and port, and psutil
finds its socket in one of that server's workers. Waits are for what clients see, or for a
line the server logs; each test bounds its time.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import psutil
import pytest

from tests.integration.cluster import Proxy, RedisServer, start_hosts, stopped_all
from tests.integration.harness import Client, Server, wait_for, worker_pid_of
from tests.integration.test_history import join

LEASE = 2.0
pytestmark = pytest.mark.timeout(120)


def on(host: Server, nick: str | None = None) -> Client:
    """A client of this host (proved), registered as `nick` if given."""
    client = host.connect()
    assert client.sock.getpeername() == (host.host, host.port)
    assert worker_pid_of(host, client) in host.current_workers()
    if nick:
        client.register(nick)
    return client


@pytest.fixture(scope="module")
def redis_server():
    server = RedisServer()
    yield server
    server.close()


@pytest.fixture(scope="module")
def hosts(redis_server):
    servers = start_hosts([redis_server.url] * 3, workers=2, lease=LEASE)
    yield servers
    stopped_all(servers)


def test_a_nick_claimed_on_two_hosts_at_once_goes_to_exactly_one(hosts):
    a_host, b_host, c_host = hosts
    for round_ in range(6):
        nick = f"race{round_}"
        a, b = on(a_host), on(b_host)
        for client in (a, b):
            client.send(f"NICK {nick}\r\nUSER u 0 * :u")  # both lines sent as close together as we can
        a_said, b_said = a.expect_any("001", "433"), b.expect_any("001", "433")
        assert sorted((a_said.command, b_said.command)) == ["001", "433"], (a_said, b_said)
        winner = a if a_said.command == "001" else b
        winner_host = a_host if winner is a else b_host
        watcher = on(c_host, f"watch{round_}")
        watcher.send(f"WHOIS {nick}")
        assert watcher.expect("311").params[1] == nick  # the third host agrees there is one holder
        watcher.send(f"PRIVMSG {nick} :which host?")
        assert winner.expect("PRIVMSG").params[1] == "which host?"
        assert worker_pid_of(winner_host, winner) in winner_host.current_workers()
        for client in (a, b, watcher):
            client.close()


def test_private_messages_and_queries_work_across_hosts(hosts):
    a_host, b_host, c_host = hosts
    alice, bob, carol = on(a_host, "alice"), on(b_host, "bob"), on(c_host, "carol")
    bob.send("PRIVMSG alice :hi from host b")
    assert alice.expect("PRIVMSG").source.startswith("bob!")
    alice.send("PRIVMSG carol :hi from host a")
    assert carol.expect("PRIVMSG").params == ["carol", "hi from host a"]
    alice.send("JOIN #over")
    alice.expect("366")
    for client in (bob, carol):
        client.send("JOIN #over")
        client.expect("366")
    alice.send("TOPIC #over :set on host a")
    for client in (bob, carol):
        assert client.expect("TOPIC").params == ["#over", "set on host a"]
    carol.send("TOPIC #over")
    assert carol.expect("332").params[-1] == "set on host a"
    bob.send("NAMES #over")
    assert set(bob.expect("353").params[-1].split()) == {"@alice", "bob", "carol"}
    carol.send("WHO #over")
    who = set()
    while True:
        message = carol.expect_any("352", "315")
        if message.command == "315":
            break
        who.add(message.params[5])
    assert who == {"alice", "bob", "carol"}
    bob.send("WHOIS alice")
    assert bob.expect("319").params[-1].split() == ["@#over"]
    carol.send("LIST #over")
    assert carol.expect("322").params[1:3] == ["#over", "3"]
    alice.send("MODE #over +m")  # a state change ordered with the messages around it
    for client in (bob, carol):
        assert client.expect("MODE").params[:2] == ["#over", "+m"]
    bob.send("PRIVMSG #over :muted?")
    assert bob.expect("404").params[1] == "#over"
    alice.send("MODE #over +v bob")
    bob.expect("MODE", "#over", "+v", "bob")
    bob.send("PRIVMSG #over :voiced now")
    assert carol.expect("PRIVMSG").params == ["#over", "voiced now"]
    assert not [m for m in carol.since("PRIVMSG") if m.params[-1] == "muted?"]
    for client in (alice, bob, carol):
        client.close()


def test_history_of_a_channel_is_the_same_on_every_host(hosts):
    a_host, b_host, _ = hosts
    dave = on(a_host)
    dave.send("CAP REQ :draft/chathistory batch server-time message-tags\r\nCAP END")
    dave.register("dave")
    dave.send("JOIN #hist")
    dave.expect("366")
    for n in range(3):
        dave.send(f"PRIVMSG #hist :kept {n}")
    erin = on(b_host)
    erin.send("CAP REQ :draft/chathistory batch server-time message-tags\r\nCAP END")
    erin.register("erin")
    erin.send("JOIN #hist")
    erin.expect("366")
    erin.send("CHATHISTORY LATEST #hist * 10")
    erin.expect("BATCH")
    texts = []
    while True:
        message = erin.expect_any("PRIVMSG", "BATCH")
        if message.command == "BATCH":
            break
        texts.append(message.params[-1])
    assert texts == ["kept 0", "kept 1", "kept 2"]
    dave.close()
    erin.close()


def test_channel_messages_reach_every_member_on_every_host_once_in_one_order(hosts):
    members = []
    for i, host in enumerate(hosts):
        for j in range(2):
            members.append(on(host, f"fan{i}{j}"))
    join("#fan", *members)
    per_sender = 40

    def talk(client: Client) -> None:
        client.send("".join(f"PRIVMSG #fan :{client.nick} {n}\r\n" for n in range(per_sender)))

    threads = [threading.Thread(target=talk, args=(c,)) for c in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = per_sender * (len(members) - 1)  # without echo-message, a sender does not see its own
    seen = {}
    for client in members:
        while len([m for m in client.since("PRIVMSG") if m.params[0] == "#fan"]) < expected:
            client.expect("PRIVMSG", timeout=30)
        client.sync()
        lines = [m.params[-1] for m in client.since("PRIVMSG") if m.params[0] == "#fan"]
        assert len(lines) == len(set(lines)) == expected, client.nick  # each exactly once
        for sender in members:  # each sender's own order kept
            if sender is not client:
                theirs = [line for line in lines if line.split()[0] == sender.nick]
                assert theirs == [f"{sender.nick} {n}" for n in range(per_sender)]
        seen[client.nick] = lines
    everything = {}  # one order: any two members agree on the order of the messages both saw
    for nick, lines in seen.items():
        for other, theirs in seen.items():
            common = set(lines) & set(theirs)
            assert [x for x in lines if x in common] == [x for x in theirs if x in common], (nick, other)
        everything[nick] = lines
    for client in members:
        client.close()


def kill_host(host: Server) -> None:
    """SIGKILL every process of the host, the supervisor first (so nothing is restarted)."""
    children = host.children()
    os.kill(host.pid, signal.SIGKILL)
    for child in children:
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    host.proc.wait(timeout=10)
    psutil.wait_procs(children, timeout=10)


def test_a_killed_host_s_users_quit_everywhere_after_its_lease_and_their_nicks_are_free():
    redis = RedisServer()
    hosts = start_hosts([redis.url] * 3, workers=1, lease=LEASE)
    try:
        a_host, b_host, c_host = hosts
        alice, bob, victim = on(a_host, "alice"), on(b_host, "bob"), on(c_host, "victim")
        join("#k", alice, bob, victim)
        killed_at = time.monotonic()
        kill_host(c_host)
        for client in (alice, bob):
            quit_ = client.expect("QUIT", timeout=LEASE * 5)
            assert quit_.source.startswith("victim!")
        waited = time.monotonic() - killed_at
        assert waited >= LEASE, f"QUIT after {waited:.2f}s, before the lease of {LEASE}s ran out"
        again = on(a_host)
        again.register("victim")  # the nick is free
        bob.send("WHOIS victim")
        bob.expect("311")
        # The host comes back (same host_id) and joins cleanly, with no hand in it.
        back = Server(1, "--host", "127.0.0.4", "--no-web", "--cluster", redis.url, "--host-id", "host4",
                      "--cluster-lease", str(LEASE))
        hosts[2] = back
        back.wait_for_log("cluster: caught up", timeout=LEASE * 5)
        newcomer = on(back, "newcomer")
        newcomer.send("JOIN #k")
        newcomer.expect("366")
        names = newcomer.since("353")[-1].params[-1].split()
        assert set(n.lstrip("@") for n in names) == {"alice", "bob", "newcomer"}
        alice.expect("JOIN", "#k", where=lambda m: m.source.startswith("newcomer!"))
    finally:
        stopped_all(hosts)
        redis.close()


def test_a_redis_restart_mid_stream_loses_doubles_reorders_nothing_and_disconnects_nobody():
    redis = RedisServer()
    hosts = start_hosts([redis.url] * 3, workers=1, lease=LEASE)
    try:
        talkers = [on(host, f"r{i}") for i, host in enumerate(hosts)]
        join("#r", *talkers)
        sender, listeners = talkers[0], talkers[1:]
        total = 300
        for n in range(100):
            sender.send(f"PRIVMSG #r :m{n}")
        for host in hosts:
            host.wait_for_log("judging other hosts' leases")
        redis.stop()
        for n in range(100, 200):  # while Redis is down: held, not lost
            sender.send(f"PRIVMSG #r :m{n}")
        down_at = time.monotonic()
        for host in hosts:
            host.wait_for_log("Redis is unreachable")
        # Down for longer than a lease, so every host's lease has lapsed when Redis is back: none
        # may take that for another host's death. (A duration to simulate, not a wait for an event.)
        time.sleep(max(0.0, down_at + LEASE * 1.5 - time.monotonic()))
        redis.start()
        for n in range(200, total):
            sender.send(f"PRIVMSG #r :m{n}")
        for client in listeners:
            while len(client.since("PRIVMSG")) < total:
                client.expect("PRIVMSG", timeout=30)
            client.sync()
            assert [m.params[-1] for m in client.since("PRIVMSG")] == [f"m{n}" for n in range(total)]
        for host in hosts:  # each judges the others' leases again, a lease after Redis came back ...
            host.wait_for_log("judging other hosts' leases", timeout=LEASE * 5)
        for client in talkers:  # ... and nobody was taken for gone
            client.sync()
            assert not client.since("QUIT")
            assert not client.closed and not client.since("ERROR")
            client.ping()
    finally:
        stopped_all(hosts)
        redis.close()


def test_a_host_cut_off_longer_than_its_lease_is_quit_and_rejoins_by_itself():
    redis = RedisServer()
    proxy = Proxy(redis.port)
    hosts = start_hosts([redis.url, redis.url, proxy.url], workers=1, lease=LEASE)
    try:
        a_host, b_host, c_host = hosts
        alice, island = on(a_host, "alice"), on(c_host, "island")
        island.send("JOIN #p")
        island.expect("366")
        alice.send("JOIN #p")
        alice.expect("366")
        island.expect("JOIN", "#p", where=lambda m: m.source.startswith("alice!"))
        proxy.cut()
        assert alice.expect("QUIT", timeout=LEASE * 6).source.startswith("island!")
        watcher = on(b_host, "watcher")
        watcher.send("NICK island")  # the nick is free everywhere else
        watcher.expect("NICK", where=lambda m: m.params[0] == "island")
        proxy.restore()
        # The island learns from the log that it was reported gone: its users' view ends cleanly.
        island.expect_closed(timeout=LEASE * 10)
        c_host.wait_for_log("rejoining", timeout=LEASE * 5)
        fresh = on(c_host, "fresh")
        fresh.send("PRIVMSG alice :back again")
        assert alice.expect("PRIVMSG", timeout=LEASE * 5).params[-1] == "back again"
        assert c_host.proc.poll() is None  # no restart by hand, and none by itself either
    finally:
        stopped_all(hosts)
        proxy.close()
        redis.close()


def test_a_hub_killed_on_one_host_loses_doubles_reorders_nothing_on_any_host(hosts):
    a_host, b_host, c_host = hosts
    sender = on(a_host, "hubkill")
    listeners = [on(b_host, "hk_b"), on(c_host, "hk_c"), on(a_host, "hk_a")]
    join("#hk", sender, *listeners)
    total = 400
    old_hub = a_host.current_hub()
    for n in range(total // 2):
        sender.send(f"PRIVMSG #hk :h{n}")
    os.kill(old_hub, signal.SIGKILL)
    for n in range(total // 2, total):
        sender.send(f"PRIVMSG #hk :h{n}")
    for client in listeners:
        while len(client.since("PRIVMSG")) < total:
            client.expect("PRIVMSG", timeout=30)
        client.sync()
        assert [m.params[-1] for m in client.since("PRIVMSG")] == [f"h{n}" for n in range(total)], client.nick
    new_hub = a_host.current_hub()
    assert new_hub not in (None, old_hub)
    for client in (sender, *listeners):
        assert not client.closed
        client.close()


def test_a_worker_killed_on_one_host_quits_its_users_on_every_host(hosts):
    a_host, b_host, _ = hosts
    doomed = on(b_host, "doomed")
    watcher = on(a_host, "wk_watch")
    for client in (doomed, watcher):
        client.send("JOIN #wk")
        client.expect("366")
    assert "@doomed" in watcher.since("353")[-1].params[-1].split()  # doomed joined first, on the other host
    os.kill(worker_pid_of(b_host, doomed), signal.SIGKILL)
    quit_ = watcher.expect("QUIT", timeout=10)
    assert quit_.source.startswith("doomed!")
    again = on(a_host, "doomed")  # the nick is free on another host at once
    again.close()
    watcher.close()


def test_a_host_that_joins_later_starts_from_a_snapshot_and_the_stream_is_trimmed_behind_it():
    redis = RedisServer()
    hosts = start_hosts([redis.url] * 2, workers=1, lease=LEASE)
    try:
        old = on(hosts[0], "old")
        old.send("JOIN #snap\r\nTOPIC #snap :before the snapshot")
        old.expect("TOPIC")
        first_len = int(redis.command("XLEN", "hubchat:log").split(b"\r\n")[0][1:])

        def snapshots() -> bool:
            reply = redis.command("HGETALL", "hubchat:snapids")
            return reply.count(b"\r\n") >= 9  # both hosts' ids (a RESP array of 4 bulk strings)
        wait_for(snapshots, LEASE * 6, "both hosts to write a snapshot")  # written every two leases
        old.send("TOPIC #snap :after the snapshot")
        old.expect("TOPIC")
        late = Server(1, "--host", "127.0.0.4", "--no-web", "--cluster", redis.url, "--host-id", "late",
                      "--cluster-lease", str(LEASE))
        hosts.append(late)
        assert "starting from the snapshot" in late.wait_for_log("cluster: starting from the snapshot")
        late.wait_for_log("cluster: caught up")
        newcomer = on(late, "newcomer")
        newcomer.send("JOIN #snap")
        assert newcomer.expect("332").params[-1] == "after the snapshot"
        assert "@old" in newcomer.expect("353").params[-1].split()
        old.expect("JOIN", "#snap", where=lambda m: m.source.startswith("newcomer!"))

        def trimmed() -> bool:  # once every live host has a snapshot, entries older than all of them go
            first = redis.command("XRANGE", "hubchat:log", "-", "+", "COUNT", "1")
            return b"before the snapshot" not in first and \
                int(redis.command("XLEN", "hubchat:log").split(b"\r\n")[0][1:]) < first_len + 10
        wait_for(trimmed, LEASE * 8, "the stream to be trimmed behind the snapshots")
    finally:
        stopped_all(hosts)
        redis.close()


def on_channel(client: Client, channel: str) -> list[tuple[str, str, str]]:
    """What the client was shown of the channel (and of nick changes), in order: (command, nick, text)."""
    return [(m.command, m.source.split("!")[0], m.params[-1] if m.command in ("PRIVMSG", "NICK") else "")
            for m in client.received
            if m.command == "NICK" or m.command in ("JOIN", "PART", "PRIVMSG", "MODE") and m.params[:1] == [channel]]


def test_what_is_decided_while_a_restarted_hub_catches_up_reaches_its_clients_once_in_order():
    """Host A's hub appends a JOIN and dies before it reads the entry back (the proxy holds
    what Redis answers its reader); meanwhile host B decides that JOIN, another JOIN and
    messages to the channel, and a nick change. The hub A restarts with decides them all while it
    catches up: A's clients must be shown each of them once, in the stream's order, and B's the
    JOIN once. A JOIN and PART the dead hub appended, and whose worker sends them again to the
    next, happen once too."""
    redis = RedisServer()
    proxy = Proxy(redis.port)
    hosts = start_hosts([proxy.url, redis.url], workers=2, lease=LEASE)
    try:
        a_host, b_host = hosts
        talker, member = on(b_host, "b_talk"), on(a_host, "a_old")
        join("#w", talker, member)
        newcomer, flip, late = on(a_host, "a_new"), on(a_host, "a_flip"), on(b_host, "b_late")
        proxy.hold_reads()
        newcomer.send("JOIN #w")
        talker.expect("JOIN", "#w", where=lambda m: m.source.startswith("a_new!"))  # in the stream, decided by B
        flip.send("JOIN #w\r\nPART #w")  # decided, but unacknowledged: its worker sends them again
        talker.expect("PART", "#w", where=lambda m: m.source.startswith("a_flip!"))
        late.send("JOIN #w")
        late.expect("366")
        late.send("NICK b_later")
        late.expect("NICK")
        for n in range(5):
            talker.send(f"PRIVMSG #w :m{n}")
        late.expect("PRIVMSG", where=lambda m: m.params[-1] == "m4")
        old_hub = a_host.current_hub()
        os.kill(old_hub, signal.SIGKILL)  # it had read none of the above from the stream
        proxy.release_reads()
        a_host.wait_for_log("cluster: caught up")
        assert a_host.current_hub() not in (None, old_hub)
        for n in range(5, 10):
            talker.send(f"PRIVMSG #w :m{n}")
        texts = [("PRIVMSG", "b_talk", f"m{n}") for n in range(10)]
        joins = [("JOIN", "a_new", ""), ("JOIN", "a_flip", ""), ("PART", "a_flip", ""), ("JOIN", "b_late", ""),
                 ("NICK", "b_late", "b_later")]
        for client, expected in ((newcomer, joins + texts), (member, [("JOIN", "a_old", "")] + joins + texts)):
            client.expect("PRIVMSG", where=lambda m: m.params[-1] == "m9", timeout=15)
            client.sync()
            assert on_channel(client, "#w") == expected, client.nick
        assert "a_new" in {n.lstrip("@") for n in newcomer.since("353")[-1].params[-1].split()}
        talker.sync()
        seen = on_channel(talker, "#w")
        assert [seen.count(line) for line in joins[:3]] == [1, 1, 1], seen
        for client in (talker, member, newcomer, flip, late):
            assert not client.closed
    finally:
        stopped_all(hosts)
        proxy.close()
        redis.close()


def test_a_host_cut_off_a_little_longer_than_its_lease_rejoins_once_and_keeps_who_came_since():
    """Cut off until its lease key is gone, then back at once: the others quit its users, it lets
    its own go and rejoins. A client that comes meanwhile stays, everywhere: the host must hold
    its lease again before it says it is up (the proxy holds its renewals back for a while, so a
    judge that read the rejoin first would see an up host with no lease, and quit it again)."""
    redis = RedisServer()
    proxy = Proxy(redis.port)
    hosts = start_hosts([redis.url, redis.url, proxy.url], workers=1, lease=LEASE)
    try:
        a_host, b_host, c_host = hosts
        alice, bob, island = on(a_host, "alice"), on(b_host, "bob"), on(c_host, "island")
        for client in (alice, bob, island):
            client.send("JOIN #q")
            client.expect("366")
        alice.expect("JOIN", "#q", where=lambda m: m.source.startswith("island!"))
        for host in (a_host, b_host):
            host.wait_for_log("judging other hosts' leases", timeout=LEASE * 3)
        proxy.cut()
        wait_for(lambda: redis.command("EXISTS", "hubchat:lease:host4").startswith(b":0"), LEASE * 3,
                 "the island's lease to lapse")
        proxy.hold_renewals()
        proxy.restore()
        for client in (alice, bob):
            assert client.expect("QUIT", timeout=LEASE * 3).source.startswith("island!")
        island.expect_closed(timeout=LEASE * 5)
        c_host.wait_for_log("rejoining", timeout=LEASE * 5)
        fresh = on(c_host, "fresh")
        fresh.send("JOIN #q")
        fresh.expect("366")
        alice.expect("JOIN", "#q", where=lambda m: m.source.startswith("fresh!"))
        # The judges look every quarter lease: half a lease of held renewals gives each two looks.
        time.sleep(LEASE / 2)
        proxy.release_renewals()
        c_host.wait_for_log("judging other hosts' leases", timeout=LEASE * 5)  # connected a lease since
        fresh.send("PRIVMSG #q :still here")
        for client in (alice, bob):
            assert client.expect("PRIVMSG", timeout=LEASE * 2).params[-1] == "still here"
            client.sync()
            assert [m.source.split("!")[0] for m in client.since("QUIT")] == ["island"]
        assert not fresh.closed
    finally:
        stopped_all(hosts)
        proxy.close()
        redis.close()
    reports = [line for host in hosts for line in host.stderr.splitlines() if "reporting it gone" in line
               and "'host4'" in line]
    assert 1 <= len(reports) <= 2, reports  # one epoch, reported by one judge or both


def bulk_strings(reply: bytes) -> list[str]:
    """The bulk strings of a RESP reply, in order (an entry's pickle comes out mangled: ids only)."""
    lines = reply.split(b"\r\n")
    return [lines[i + 1].decode(errors="replace") for i, line in enumerate(lines)
            if line.startswith(b"$") and line != b"$-1"]


def test_a_host_whose_unread_entries_were_trimmed_while_it_was_cut_off_starts_over_and_agrees():
    """Cut off, reported gone, and then the others' snapshots move on and the stream is trimmed
    past the last entry the host read (its own C_HOST_GONE too): back, it must not read on from
    there as if nothing were missing. It starts over from a snapshot: its users are quit, as
    everywhere else, and the host is one of the network again."""
    redis = RedisServer()
    proxy = Proxy(redis.port)
    hosts = start_hosts([redis.url, redis.url, proxy.url], workers=1, lease=LEASE)
    try:
        a_host, b_host, c_host = hosts
        alice, island = on(a_host, "alice"), on(c_host, "island")
        for client in (alice, island):
            client.send("JOIN #g")
            client.expect("366")
        alice.expect("JOIN", "#g", where=lambda m: m.source.startswith("island!"))
        proxy.cut()
        assert alice.expect("QUIT", timeout=LEASE * 6).source.startswith("island!")
        alice.send("PRIVMSG #g :after the island left")
        newest = bulk_strings(redis.command("XREVRANGE", "hubchat:log", "+", "-", "COUNT", "1"))[0]

        def snapshots_past_it() -> list[str] | None:
            ids = dict(zip(*[iter(bulk_strings(redis.command("HGETALL", "hubchat:snapids")))] * 2))
            live = [ids.get("1"), ids.get("2")]
            if all(i is not None and tuple(map(int, i.split("-"))) >= tuple(map(int, newest.split("-")))
                   for i in live):
                return live
            return None
        live = wait_for(snapshots_past_it, LEASE * 6, "the live hosts' snapshots to pass the island's report")
        oldest = min(live, key=lambda i: tuple(map(int, i.split("-"))))
        redis.command("XTRIM", "hubchat:log", "MINID", oldest)  # what their trimming does, to the entry
        proxy.restore()
        island.expect_closed(timeout=LEASE * 5)
        c_host.wait_for_log("starting over from a snapshot")
        c_host.wait_for_log("cluster: caught up")
        again = on(c_host, "island")  # the nick is free here too
        again.send("JOIN #g")
        again.expect("366")
        alice.expect("JOIN", "#g", where=lambda m: m.source.startswith("island!"))
        alice.send("PRIVMSG island :one network")
        assert again.expect("PRIVMSG").params[-1] == "one network"
        again.send("NAMES #g")
        assert {n.lstrip("@") for n in again.expect("353").params[-1].split()} == {"alice", "island"}
    finally:
        stopped_all(hosts)
        proxy.close()
        redis.close()
