"""What users on different worker processes see of each other. Every test first proves, with
psutil, that its clients are held by distinct workers."""
import threading

import pytest

from tests.integration.harness import clients_on_distinct_workers, join_all, registered


def test_nick_is_unique_across_workers_under_ascii_casemapping(server):
    # Each refusal below is for a nick held on another worker: only the hub can know it.
    first, second, third = clients_on_distinct_workers(server, 3)
    first.register("Taken[1]")
    second.send("NICK taKEN{1}")  # ascii casemapping: [ ] are not folded to { }
    second.send("USER u 0 * :x")
    second.expect("001")
    third.send("NICK TAKEN[1]")
    third.send("USER u 0 * :x")
    assert third.expect("433").params[:2] == ["*", "TAKEN[1]"]
    third.send("NICK other")
    third.expect("001")
    first.send("NICK OTHER")
    assert first.expect("433").params[:2] == ["Taken[1]", "OTHER"]


@pytest.mark.parametrize("round_", range(5))
def test_nick_race_between_workers_has_exactly_one_winner(server, round_):
    a, b = clients_on_distinct_workers(server, 2)
    for c in (a, b):
        c.send("USER u 0 * :x")
    barrier = threading.Barrier(2)

    def claim(client):
        barrier.wait()
        client.send(f"NICK racer{round_}")

    threads = [threading.Thread(target=claim, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    outcomes = sorted(c.expect_any("001", "433").command for c in (a, b))
    assert outcomes == ["001", "433"]


def test_private_message_reaches_only_its_target_on_another_worker(server):
    alice, bob, carol = registered(server, "alice", "bob", "carol")
    join_all("#room", alice, bob, carol)
    alice.send("PRIVMSG bob :psst, bob")
    alice.send("PRIVMSG #room :after the secret")
    msg = bob.expect("PRIVMSG", "bob")
    assert msg.params == ["bob", "psst, bob"] and msg.source.startswith("alice!")
    # The hub forwards alice's lines in order, so carol seeing the second proves she was
    # not sent the first.
    carol.expect("PRIVMSG", "#room")
    assert [m.params for m in carol.since("PRIVMSG")] == [["#room", "after the secret"]]


def test_private_message_to_several_targets_and_notice(server):
    alice, bob, carol = registered(server, "alice", "bob", "carol")
    alice.send("PRIVMSG bob,carol :to you both")
    assert bob.expect("PRIVMSG").params == ["bob", "to you both"]
    assert carol.expect("PRIVMSG").params == ["carol", "to you both"]
    alice.send("NOTICE bob :a notice")
    assert bob.expect("NOTICE").params == ["bob", "a notice"]


def test_channel_fanout_exactly_once_and_in_one_order(server):
    members = registered(server, "s1", "s2", "s3")
    observers = []
    for pid_client in clients_on_distinct_workers(server, 3):
        observers.append(pid_client)
    for i, o in enumerate(observers):
        o.register(f"watch{i}")
    everyone = members + observers
    join_all("#fan", *everyone)
    per_sender = 40
    senders = [threading.Thread(target=lambda c=c: [c.send(f"PRIVMSG #fan :{c.nick} {i}") for i in range(per_sender)])
               for c in members]
    for t in senders:
        t.start()
    for t in senders:
        t.join(10)
    expected_total = per_sender * len(members)
    sequences = {}
    for client in everyone:
        own = per_sender if client in members else 0
        for _ in range(expected_total - own):
            client.expect("PRIVMSG", "#fan")
        client.sync()
        texts = [m.params[1] for m in client.since("PRIVMSG")]
        assert len(texts) == expected_total - own, f"{client.nick} got {len(texts)}"
        assert len(set(texts)) == len(texts), f"{client.nick} got a duplicate"
        assert not any(t.startswith(client.nick + " ") for t in texts), "a sender saw its own message"
        for m in members:  # per-sender order
            mine = [int(t.split()[1]) for t in texts if t.startswith(m.nick + " ")]
            if m is not client:
                assert mine == list(range(per_sender))
        sequences[client.nick] = texts
    reference = sequences["watch0"]
    for nick, texts in sequences.items():  # everyone saw the one order the hub chose
        assert texts == [t for t in reference if not t.startswith(nick + " ")], nick


def test_quit_is_seen_across_workers_and_frees_the_nick(server):
    alice, bob = registered(server, "alice", "bob")
    join_all("#room", alice, bob)
    bob.send("QUIT :gone fishing")
    quit_msg = alice.expect("QUIT")
    assert quit_msg.source.startswith("bob!") and quit_msg.params == ["Quit: gone fishing"]
    newbob = server.connect()
    newbob.register("bob")


def test_dropped_connection_is_a_quit_too(server):
    alice, bob = registered(server, "alice", "bob")
    join_all("#room", alice, bob)
    bob.close()
    assert alice.expect("QUIT").source.startswith("bob!")


def test_nick_change_is_seen_by_channel_peers_on_other_workers(server):
    alice, bob, loner = registered(server, "alice", "bob", "loner")
    join_all("#room", alice, bob)
    bob.send("NICK robert")
    change = alice.expect("NICK")
    assert change.source.startswith("bob!") and change.params == ["robert"]
    assert bob.expect("NICK").params == ["robert"]
    alice.send("PRIVMSG robert :hi robert")
    assert bob.expect("PRIVMSG").params == ["robert", "hi robert"]
    alice.send("PRIVMSG loner :ping")  # loner shares no channel: no NICK line for them
    loner.expect("PRIVMSG")
    assert not loner.since("NICK")


def test_join_part_topic_names_across_workers(server):
    alice, bob = registered(server, "alice", "bob")
    alice.send("JOIN #a,#b")
    alice.expect("366", "alice", "#a")
    alice.expect("366", "alice", "#b")
    alice.send("TOPIC #a :the topic")
    assert alice.expect("TOPIC").params == ["#a", "the topic"]
    bob.send("JOIN #A")
    assert bob.expect("332").params == ["bob", "#a", "the topic"]
    assert bob.expect("333").params[:3] == ["bob", "#a", "alice!~tester@127.0.0.1"]
    assert bob.expect("353").params == ["bob", "=", "#a", "@alice bob"]
    bob.send("TOPIC #a :mine now")
    assert bob.expect("482").params[:2] == ["bob", "#a"]  # +t: only operators
    bob.send("NAMES #b")
    assert bob.expect("353").params[-1] == "@alice"
    alice.send("PART #a :bye now")
    part = bob.expect("PART")
    assert part.source.startswith("alice!") and part.params == ["#a", "bye now"]
    alice.send("JOIN 0")
    alice.expect("PART", "#b")


def test_channel_errors(server):
    alice, bob = registered(server, "alice", "bob")
    join_all("#here", alice)
    bob.send("PRIVMSG #here :from outside")
    assert bob.expect("404").params[:2] == ["bob", "#here"]  # +n
    bob.send("PRIVMSG #nowhere :hello")
    assert bob.expect("403").params[:2] == ["bob", "#nowhere"]
    bob.send("PART #here")
    assert bob.expect("442").params[:2] == ["bob", "#here"]
    bob.send("PART #nowhere")
    bob.expect("403")
    bob.send("JOIN nochanprefix")
    bob.expect("403")
    bob.send("PRIVMSG nobody :hello")
    assert bob.expect("401").params[:2] == ["bob", "nobody"]
    bob.send("PRIVMSG")
    bob.expect("411")
    bob.send("PRIVMSG alice")
    bob.expect("412")
    bob.send("PRIVMSG a,b,c,d,e :too many")
    bob.expect("407")
    bob.sync("NOTICE nobody :no error for notices")
    assert not bob.since("401")[1:]


def test_sync_waits_for_the_hubs_answers_and_a_notice_draws_none(server):
    """Both answers come from the hub (the target is on no worker): sync must wait for them."""
    bob, = registered(server, "bob")
    bob.sync("NOTICE nobody :quiet", "PRIVMSG noone :loud")  # one write, as in the bug
    # Only what arrived before sync's own answer counts: a later read may hold more.
    before_sync = bob.received[:bob.cursor]
    assert [m.params[1] for m in before_sync if m.command == "401"] == ["noone"]
