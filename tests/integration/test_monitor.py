"""IRCv3 MONITOR and extended-monitor against the real server. Watchers and the users they
watch are held by different worker processes (proved with psutil), so every notification is
one worker's replica applying the hub's event for a user of another.

No test sleeps to wait for something to not happen: a client's `sync()` (a WHO, answered
after a barrier has been through the hub, behind every event the hub had published before)
proves that a notification that was not there before it will not come."""
from __future__ import annotations

import itertools
import os
import signal

import pytest

from config.passwords import hash_password
from tests.integration.harness import (Client, Server, client_on_worker, clients_on_distinct_workers, join_all,
                                       registered, wait_for)

_serial = itertools.count()
MONITOR_NUMERICS = ("730", "731", "732", "733", "734")
NOTIFICATIONS = ("AWAY", "SETNAME", "CHGHOST")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    conf = tmp_path_factory.mktemp("monitor") / "ops.toml"
    conf.write_text(f'[operators]\nroot = "{hash_password("hunter2")}"\n')
    srv = Server(3, "--config", str(conf))
    yield srv
    srv.stop()
    assert "Traceback" not in srv.stderr, srv.stderr[-3000:]


def nick(base: str) -> str:
    """A nick no other test of the module uses (they share one server)."""
    return f"{base}{next(_serial)}"


def with_caps(client: Client, name: str, caps: str = "") -> Client:
    client.nick = name
    if caps:
        client.send(f"CAP REQ :{caps}")
        assert client.expect("CAP").params[1:] == ["ACK", caps]
    client.send(f"NICK {name}\r\nUSER u 0 * :Real {name}\r\nCAP END")
    client.expect("376")
    return client


def monitor_replies(client: Client, since: int) -> list[tuple[str, list[str]]]:
    """The MONITOR numerics the client got after position `since`, without its own nick."""
    return [(m.command, m.params[1:]) for m in client.received[since:] if m.command in MONITOR_NUMERICS]


def items(client: Client, code: str, since: int = 0) -> list[str]:
    """Every target of every `code` numeric (730-732) after `since`, the comma lists joined."""
    return [item for m in client.received[since:] if m.command == code for item in m.params[-1].split(",")]


def test_online_nick_change_and_offline_across_workers(server):
    watcher, target = clients_on_distinct_workers(server, 2)
    me, first, second = nick("mw"), nick("mbob"), nick("mrobert")
    watcher.register(me)
    watcher.send(f"MONITOR + {first},{second.upper()}")
    assert watcher.expect("731").params == [me, f"{first},{second.upper()}"]
    start = len(watcher.received)
    target.register(first)
    assert watcher.expect("730").params == [me, f"{first}!~tester@127.0.0.1"]
    target.send(f"NICK {first.upper()}")  # a change of case: still the same target, still online
    target.expect("NICK")
    target.send(f"NICK {second}")
    assert watcher.expect("731").params == [me, first.upper()]
    assert watcher.expect("730").params == [me, f"{second}!~tester@127.0.0.1"]
    target.send("QUIT :bye")
    assert watcher.expect("731").params == [me, second]
    watcher.sync()
    assert monitor_replies(watcher, start) == [
        ("730", [f"{first}!~tester@127.0.0.1"]), ("731", [first.upper()]), ("730", [f"{second}!~tester@127.0.0.1"]),
        ("731", [second])]  # each once, and nothing for the change of case
    assert not watcher.since("NICK") and not watcher.since("QUIT")  # no shared channel: only MONITOR told


def test_list_status_remove_and_clear(server):
    watcher, online = clients_on_distinct_workers(server, 2)
    me, bob, gone = nick("ml"), nick("mlbob"), nick("mlgone")
    watcher.register(me)
    online.register(bob)
    watcher.send(f"MONITOR + {bob.upper()},{gone}")
    # bob's 001 came before: the barrier makes the replica of watcher's worker know him too
    assert watcher.expect("730").params == [me, f"{bob}!~tester@127.0.0.1"]
    assert watcher.expect("731").params == [me, gone]
    start = len(watcher.received)
    watcher.send("MONITOR L")
    watcher.expect("733")
    watcher.send("MONITOR S")
    watcher.sync()
    assert monitor_replies(watcher, start) == [
        ("732", [f"{bob.upper()},{gone}"]), ("733", ["End of MONITOR list"]),
        ("730", [f"{bob}!~tester@127.0.0.1"]), ("731", [gone])]
    start = len(watcher.received)
    watcher.send(f"MONITOR - {bob}")  # any case; no answer
    watcher.send("MONITOR L")
    watcher.expect("733")
    watcher.send("MONITOR C")
    watcher.send("monitor l")
    watcher.expect("733")
    watcher.send("MONITOR S")
    watcher.sync()
    assert monitor_replies(watcher, start) == [("732", [gone]), ("733", ["End of MONITOR list"]),
                                               ("733", ["End of MONITOR list"])]
    online.send("QUIT")  # bob is monitored no more: no 731
    online.expect_closed()
    watcher.sync()
    assert monitor_replies(watcher, start)[-1] == ("733", ["End of MONITOR list"])


def test_the_limit_and_invalid_nicks(server):
    watcher, = registered(server, nick("mlim"))
    me = watcher.nick
    watcher.send("MONITOR + 9bad,#chan,a*b,ok_1,,toolong" + "x" * 40)
    assert watcher.expect("731").params == [me, "ok_1"]  # invalid nicks are ignored
    names = [f"m{i:02}" for i in range(98)]
    watcher.send("MONITOR + " + ",".join(names))  # 99 in all
    watcher.expect("731")
    start = len(watcher.received)
    watcher.send("MONITOR + OK_1,last,over,more")
    full = watcher.expect("734")
    assert full.params == [me, "100", "over,more", "Monitor list is full."]
    assert monitor_replies(watcher, start) == [("731", ["last"]),
                                               ("734", ["100", "over,more", "Monitor list is full."])]
    watcher.send("MONITOR L")
    end = watcher.expect("733")
    listed = items(watcher, "732", start)
    assert listed == ["ok_1", *names, "last"] and end.params[1] == "End of MONITOR list"
    watcher.send("MONITOR - m00")
    watcher.send("MONITOR + over")  # room again for one
    assert watcher.expect_any("731", "734").params == [me, "over"]
    watcher.send("MONITOR")
    assert watcher.expect("461").params[1] == "MONITOR"
    watcher.send("MONITOR X")
    assert watcher.expect("400").params[1:3] == ["MONITOR", "X"]


def test_a_query_reflects_what_the_hub_decided_before_it(server):
    """Once bob has his 001, alice's MONITOR + on another worker finds him online; once he has
    quit, offline: the answer comes from the replica after a barrier, like WHO."""
    alice, = registered(server, nick("mq"))
    others = [p for p in server.current_workers() if p != alice.worker_pid]  # type: ignore[attr-defined]
    for round_ in range(5):
        bob = client_on_worker(server, others[round_ % len(others)])
        name = nick("mqbob")
        bob.register(name)
        alice.send(f"MONITOR + {name}")
        assert alice.expect_any("730", "731").params[1] == f"{name}!~tester@127.0.0.1"
        alice.sync(f"MONITOR - {name}")  # handled (after a barrier of its own): the QUIT below tells nothing
        bob.send("QUIT")
        bob.expect_closed()
        alice.send(f"MONITOR + {name}")
        assert alice.expect_any("730", "731").params[1:] == [name]
        alice.send(f"MONITOR - {name}")


def test_a_killed_worker_takes_its_users_offline():
    srv = Server(2)
    try:
        watcher, victim = registered(srv, "mk_watch", "mk_victim")
        watcher.send("MONITOR + mk_victim")
        assert watcher.expect("730").params[1] == "mk_victim!~tester@127.0.0.1"
        os.kill(victim.worker_pid, signal.SIGKILL)  # type: ignore[attr-defined]
        assert watcher.expect("731", timeout=20).params == ["mk_watch", "mk_victim"]
        victim.expect_closed()
        wait_for(lambda: victim.worker_pid not in srv.current_workers() and len(srv.current_workers()) == 2,
                 what="a replacement worker")
        again = client_on_worker(srv, next(p for p in srv.current_workers() if p != watcher.worker_pid))
        again.register("mk_victim")  # the nick is free again, and comes online again
        assert watcher.expect("730").params[1] == "mk_victim!~tester@127.0.0.1"
    finally:
        srv.stop()


def test_extended_monitor_without_a_shared_channel_and_never_twice_with_one(server):
    caps = "away-notify chghost setname"
    ext, plain, target = clients_on_distinct_workers(server, 3)
    ext = with_caps(ext, nick("mxe"), caps + " extended-monitor")
    plain = with_caps(plain, nick("mxp"), caps)
    target = with_caps(target, nick("mxt"))
    for watcher in (ext, plain):
        watcher.send(f"MONITOR + {target.nick}")
        watcher.expect("730")
    start = {c.nick: len(c.received) for c in (ext, plain)}
    target.send("AWAY :lunch")
    target.expect("306")
    target.send("SETNAME :New Name")
    target.send("OPER root hunter2")
    target.expect("381")
    target.send("CHGHOST {} cloak new.host".format(target.nick))
    ext.expect("CHGHOST")
    target.send("AWAY")
    target.expect("305")
    away = ext.expect("AWAY", where=lambda m: not m.params)
    assert away.source == f"{target.nick}!cloak@new.host"
    for c in (ext, plain):
        c.sync()
    seen = [(m.command, m.params) for m in ext.received[start[ext.nick]:] if m.command in NOTIFICATIONS]
    assert seen == [("AWAY", ["lunch"]), ("SETNAME", ["New Name"]), ("CHGHOST", ["cloak", "new.host"]), ("AWAY", [])]
    assert not [m for m in plain.received[start[plain.nick]:] if m.command in NOTIFICATIONS]
    # In a shared channel too: each line once.
    channel = "#" + nick("mx")
    join_all(channel, target, ext, plain)
    start = {c.nick: len(c.received) for c in (ext, plain)}
    target.send("AWAY :again\r\nSETNAME :Third Name\r\nCHGHOST {} cloak2 other.host".format(target.nick))
    for c in (ext, plain):
        c.expect("CHGHOST")
        c.sync()
        seen = [(m.command, m.params) for m in c.received[start[c.nick]:] if m.command in NOTIFICATIONS]
        assert seen == [("AWAY", ["again"]), ("SETNAME", ["Third Name"]), ("CHGHOST", ["cloak2", "other.host"])]


def test_a_disconnected_watcher_leaves_nothing_behind(server):
    first, target = clients_on_distinct_workers(server, 2)
    name, ghost = nick("mdw"), nick("mdghost")
    first.register(name)
    first.send(f"MONITOR + {ghost}")
    first.expect("731")
    # an observer on the same worker, watching the watcher: its 731 proves that worker has
    # applied the watcher's QUIT, and with it dropped the watcher's list
    observer = client_on_worker(server, first.worker_pid)  # type: ignore[attr-defined]
    observer.register(nick("mdobs"))
    observer.send(f"MONITOR + {name},{ghost}")
    observer.expect("730")
    observer.expect("731", observer.nick, ghost)
    first.close()
    assert observer.expect("731").params[1:] == [name]
    heir = client_on_worker(server, first.worker_pid)  # type: ignore[attr-defined]
    heir.register(name)  # the same nick, on the same worker
    assert observer.expect("730").params[1] == f"{name}!~tester@127.0.0.1"
    target.register(ghost)
    assert observer.expect("730").params[1] == f"{ghost}!~tester@127.0.0.1"  # the control: it was told
    heir.sync()  # behind ghost's registration: a 730 for the heir would have come before this
    heir.send("MONITOR L")
    heir.expect("733")
    assert monitor_replies(heir, 0) == [("733", ["End of MONITOR list"])]
