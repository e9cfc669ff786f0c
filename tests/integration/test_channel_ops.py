"""Channel operators and modes, KICK, INVITE, TOPIC, LIST and NAMES, as users on different workers
see them. Every client in a test is on its own worker process (proved by psutil), so every
check here crosses the hub."""
import pytest

from tests.integration.harness import Server, isupport, join_all, registered


@pytest.fixture(scope="module")
def server():
    srv = Server(workers=3)
    yield srv
    srv.stop()


def names_of(client, channel):
    client.send(f"NAMES {channel}")
    entries = []
    while True:
        msg = client.expect_any("353", "366")
        if msg.command == "366":
            return entries
        entries += msg.params[3].split()


def test_the_founder_is_operator_and_op_voice_changes_reach_every_worker(server):
    alice, bob, carol = registered(server, "mo_alice", "mo_bob", "mo_carol")
    join_all("#modes", alice, bob, carol)
    assert names_of(carol, "#modes") == ["@mo_alice", "mo_bob", "mo_carol"]
    alice.send("MODE #modes +v mo_bob")
    for c in (alice, bob, carol):
        mode = c.expect("MODE", "#modes")
        assert mode.source.startswith("mo_alice!") and mode.params == ["#modes", "+v", "mo_bob"]
    carol.send("CAP REQ multi-prefix")
    carol.expect("CAP")
    alice.send("MODE #modes +o mo_bob")
    carol.expect("MODE", "#modes", "+o", "mo_bob")
    assert "@+mo_bob" in names_of(carol, "#modes")
    assert "@mo_bob" in names_of(alice, "#modes")  # without multi-prefix: the highest prefix only
    bob.send("MODE #modes -o+v mo_alice mo_carol")  # bob is an operator now
    mode = alice.expect("MODE", "#modes")
    assert mode.params == ["#modes", "-o+v", "mo_alice", "mo_carol"]
    bob.send("MODE #modes +v-v+b-b mo_alice mo_alice x!*@* x!*@*")  # each change sees the one before
    assert carol.expect("MODE", "#modes", "+v-v+b-b").params[2:] == ["mo_alice", "mo_alice", "x!*@*", "x!*@*"]
    assert "mo_alice" in names_of(carol, "#modes")
    alice.send("MODE #modes +m")
    alice.expect("482", "mo_alice", "#modes")
    alice.send("MODE #modes +o mo_carol")
    alice.expect("482")


def test_mode_errors_and_queries(server):
    alice, bob, carol = registered(server, "me_alice", "me_bob", "me_carol")
    join_all("#errs", alice, bob)
    alice.send("MODE #errs")
    assert alice.expect("324").params == ["me_alice", "#errs", "+nt"]
    assert int(alice.expect("329").params[2]) > 0
    alice.send("MODE #errs +o nobody_here")
    assert alice.expect("401").params[1] == "nobody_here"
    alice.send("MODE #errs +v me_carol")
    assert alice.expect("441").params[1:3] == ["me_carol", "#errs"]
    alice.send("MODE #errs +y")
    assert alice.expect("472").params[1] == "y"
    alice.send("MODE #errs +l abc")
    assert alice.expect("696").params[1:3] == ["#errs", "l"]
    bob.send("MODE #errs +t")
    assert bob.expect("482").params[1] == "#errs"
    bob.send("MODE #nowhere")
    bob.expect("403")
    bob.send("MODE me_alice +i")
    assert bob.expect("502").params[0] == "me_bob"


def test_an_invalid_key_gets_696_without_echoing_the_key(server):
    alice, bob = registered(server, "mv_alice", "mv_bob")
    join_all("#badkey", alice, bob)
    for bad in ("a,b", "x" * 24, ":two words"):
        alice.send(f"MODE #badkey +k {bad}")
        assert alice.expect("696").params == ["mv_alice", "#badkey", "k", "*", "Invalid key"]
    bob.send("MODE #badkey")
    assert bob.expect("324").params[1:] == ["#badkey", "+nt"]


def test_moderated_and_no_external_messages(server):
    alice, bob, carol = registered(server, "mm_alice", "mm_bob", "mm_carol")
    join_all("#mod", alice, bob)
    carol.send("PRIVMSG #mod :from outside")
    assert carol.expect("404").params[1] == "#mod"
    alice.send("MODE #mod -n")
    alice.expect("MODE", "#mod", "-n")
    carol.send("PRIVMSG #mod :outside allowed now")
    assert bob.expect("PRIVMSG", "#mod").params[1] == "outside allowed now"
    alice.send("MODE #mod +m")
    bob.expect("MODE", "#mod", "+m")
    bob.send("PRIVMSG #mod :can I talk?")
    assert bob.expect("404").params[1:] == ["#mod", "Cannot send to channel"]
    alice.send("MODE #mod +v mm_bob")
    bob.expect("MODE", "#mod", "+v", "mm_bob")
    bob.send("PRIVMSG #mod :voiced now")
    alice.expect("PRIVMSG", "#mod", "voiced now")


def test_invite_only_invite_and_refusals(server):
    alice, bob, carol = registered(server, "mi_alice", "mi_bob", "mi_carol")
    join_all("#club", alice, carol)
    alice.send("MODE #club +i")
    alice.expect("MODE", "#club", "+i")
    bob.send("JOIN #club")
    assert bob.expect("473").params[1:] == ["#club", "Cannot join channel (+i)"]
    carol.send("INVITE mi_bob #club")  # +i: only operators may invite
    assert carol.expect("482").params[1] == "#club"
    bob.send("INVITE mi_carol #club")
    assert bob.expect("442").params[1] == "#club"
    alice.send("INVITE mi_carol #club")
    assert alice.expect("443").params[1:3] == ["mi_carol", "#club"]
    alice.send("INVITE nobody_here #club")
    alice.expect("401")
    alice.send("INVITE mi_bob #club")
    assert alice.expect("341").params == ["mi_alice", "mi_bob", "#club"]
    invite = bob.expect("INVITE")
    assert invite.source.startswith("mi_alice!") and invite.params == ["mi_bob", "#club"]
    bob.send("JOIN #club")
    bob.expect("366", "mi_bob", "#club")
    bob.send("PART #club")
    bob.expect("PART")
    bob.send("JOIN #club")  # an invitation is used up by the join
    bob.expect("473")


def test_key_limit_and_the_key_shown_only_to_members(server):
    alice, bob, carol = registered(server, "mk_alice", "mk_bob", "mk_carol")
    alice.send("JOIN #vault")
    alice.expect("366")
    alice.send("MODE #vault +kl sesame 2")
    assert alice.expect("MODE", "#vault").params == ["#vault", "+kl", "sesame", "2"]
    bob.send("JOIN #vault")
    assert bob.expect("475").params[1:] == ["#vault", "Cannot join channel (+k)"]
    bob.send("JOIN #vault wrong")
    bob.expect("475")
    bob.send("JOIN #vault sesame")
    bob.expect("366", "mk_bob", "#vault")
    carol.send("JOIN #vault sesame")
    assert carol.expect("471").params[1:] == ["#vault", "Cannot join channel (+l)"]
    bob.send("MODE #vault")
    assert bob.expect("324").params[1:] == ["#vault", "+klnt", "sesame", "2"]
    carol.send("MODE #vault")
    assert carol.expect("324").params[1:] == ["#vault", "+klnt", "*", "2"]
    alice.send("MODE #vault -k *")
    assert bob.expect("MODE", "#vault").params == ["#vault", "-k", "*"]
    alice.send("MODE #vault -l")
    bob.expect("MODE", "#vault", "-l")
    carol.send("JOIN #vault")
    carol.expect("366", "mk_carol", "#vault")


def test_invite_alone_lists_the_pending_invitations(server):
    alice, bob = registered(server, "ml_inviter", "ml_guest")
    alice.send("JOIN #inv-one,#inv-two")
    alice.expect("366", "ml_inviter", "#inv-two")
    bob.send("INVITE")
    assert bob.expect("337").params == ["ml_guest", "End of /INVITE list"]
    alice.send("INVITE ml_guest #inv-one\r\nINVITE ml_guest #inv-two")
    bob.expect("INVITE", "ml_guest", "#inv-two")
    bob.send("INVITE")
    rows = [bob.expect_any("336", "337") for _ in range(3)]
    assert [(m.command, m.params) for m in rows] == [
        ("336", ["ml_guest", "#inv-one"]), ("336", ["ml_guest", "#inv-two"]),
        ("337", ["ml_guest", "End of /INVITE list"])]
    bob.send("JOIN #inv-one\r\nINVITE")  # joining uses the invitation up
    assert bob.expect_any("336", "337").params == ["ml_guest", "#inv-two"]
    bob.expect("337")
    bob.send("INVITE ml_inviter")
    assert bob.expect("461").params == ["ml_guest", "INVITE", "Not enough parameters"]


def test_bans_stop_joining_and_speaking_and_are_listed(server):
    alice, bob = registered(server, "mb_alice", "mb_bob")
    join_all("#bans", alice, bob)
    alice.send("MODE #bans +b mb_b*!*@*")
    assert bob.expect("MODE", "#bans").params == ["#bans", "+b", "mb_b*!*@*"]
    bob.send("PRIVMSG #bans :am I banned?")
    assert bob.expect("404").params[1] == "#bans"
    alice.send("MODE #bans +b *!*@banned.example")  # completed to nick!user@host form
    alice.expect("MODE", "#bans", "+b", "*!*@banned.example")
    bob.send("MODE #bans +b")
    bans = [bob.expect("367"), bob.expect("367")]
    assert [b.params[2] for b in bans] == ["mb_b*!*@*", "*!*@banned.example"]
    assert bans[0].params[3].startswith("mb_alice!")
    bob.expect("368", "mb_bob", "#bans")
    bob.send("PART #bans")
    bob.expect("PART")
    bob.send("JOIN #bans")
    assert bob.expect("474").params[1:] == ["#bans", "Cannot join channel (+b)"]
    alice.send("MODE #bans -b MB_B*!*@*")  # masks compare without case
    alice.expect("MODE", "#bans", "-b")
    bob.send("JOIN #bans")
    bob.expect("366", "mb_bob", "#bans")


def test_kick(server):
    alice, bob, carol = registered(server, "mq_alice", "mq_bob", "mq_carol")
    join_all("#kick", alice, bob)
    alice.send("KICK #kick mq_carol")  # not in the channel yet
    assert alice.expect("441").params[1:3] == ["mq_carol", "#kick"]
    join_all("#kick", carol)
    for member in (alice, bob):
        member.expect("JOIN", "#kick", where=lambda m: m.source.startswith("mq_carol!"))
    bob.send("KICK #kick mq_carol :no")
    assert bob.expect("482").params[1] == "#kick"
    alice.send("KICK #kick nobody_here")
    alice.expect("401")
    alice.send("KICK #kick mq_bob :behave")
    for c in (alice, bob, carol):
        kick = c.expect("KICK")
        assert kick.source.startswith("mq_alice!") and kick.params == ["#kick", "mq_bob", "behave"]
    assert names_of(carol, "#kick") == ["@mq_alice", "mq_carol"]
    bob.send("PRIVMSG #kick :still here?")
    bob.expect("404")
    alice.send("KICK #kick mq_carol")  # the default reason is the kicker's nick
    assert carol.expect("KICK").params == ["#kick", "mq_carol", "mq_alice"]


def test_topic_with_setter_and_time_and_plus_t(server):
    alice, bob, carol = registered(server, "mt_alice", "mt_bob", "mt_carol")
    join_all("#topic", alice, bob)
    bob.send("TOPIC #topic")
    assert bob.expect("331").params == ["mt_bob", "#topic", "No topic is set"]
    assert not bob.since("332")  # nor when joining
    bob.send("TOPIC #topic :bob's topic")
    assert bob.expect("482").params[1] == "#topic"
    alice.send("MODE #topic -t")
    bob.expect("MODE", "#topic", "-t")
    bob.send("TOPIC #topic :bob's topic")
    assert alice.expect("TOPIC").params == ["#topic", "bob's topic"]
    carol.send("JOIN #topic")
    assert carol.expect("332").params[1:] == ["#topic", "bob's topic"]
    who_time = carol.expect("333")
    assert who_time.params[2].startswith("mt_bob!") and int(who_time.params[3]) > 0
    carol.send("TOPIC #topic")
    carol.expect("332", "mt_carol", "#topic")


def listing(client, *args):
    """LIST's rows: channel -> (members, topic)."""
    client.send(" ".join(("LIST",) + args))
    client.expect("321")
    rows = {}
    while (msg := client.expect_any("322", "323")).command == "322":
        rows[msg.params[1]] = (int(msg.params[2]), msg.params[3])
    return rows


def test_list_with_masks_and_member_counts_and_secret_channels(server):
    alice, bob = registered(server, "ml_alice", "ml_bob")
    join_all("#list-big", alice, bob)
    alice.send("JOIN #list-small,#list-secret")
    alice.expect("366", "ml_alice", "#list-secret")
    alice.send("TOPIC #list-big :the big one")
    alice.expect("TOPIC")
    alice.send("MODE #list-secret +s")
    alice.expect("MODE", "#list-secret", "+s")
    rows = listing(bob, "#list-*")
    assert set(rows) == {"#list-big", "#list-small"}  # the secret one is hidden from non-members
    assert rows["#list-big"] == (2, "[+nt] the big one")
    assert set(listing(alice, "#list-*")) == {"#list-big", "#list-small", "#list-secret"}
    assert set(listing(bob, ">1")) >= {"#list-big"} and "#list-small" not in listing(bob, ">1")
    assert "#list-small" in listing(bob, "<2") and "#list-big" not in listing(bob, "<2")
    assert set(listing(bob, "#list-small,#list-big")) == {"#list-small", "#list-big"}
    bob.send("WHOIS ml_alice")
    channels = bob.expect("319").params[2].split()
    assert "@#list-big" in channels and "@#list-secret" not in channels


def test_list_by_creation_and_topic_time_and_by_names_not_matching(server):
    alice, bob = registered(server, "ml_creator", "ml_lister")
    alice.send("JOIN #elist-topic,#elist-bare\r\nTOPIC #elist-topic :fresh")
    alice.expect("TOPIC", "#elist-topic")
    both = {"#elist-topic", "#elist-bare"}
    assert set(listing(bob, "#elist-*,C<1")) == both  # created less than a minute ago
    assert set(listing(bob, "#elist-*,C>0")) == both
    assert listing(bob, "#elist-*,C>5") == {}
    assert set(listing(bob, "#elist-*,T<1")) == {"#elist-topic"}  # no topic, no topic time
    assert set(listing(bob, "#elist-*,T>0")) == {"#elist-topic"}
    assert listing(bob, "#elist-*,T>5") == {}
    assert set(listing(bob, "#elist-*,!*-bare")) == {"#elist-topic"}
    assert "#elist-bare" in listing(bob, "!*-topic") and "#elist-topic" not in listing(bob, "!*-topic")
    assert listing(bob, "!*") == {}


def test_names_of_several_channels_and_of_none(server):
    alice, bob = registered(server, "mn_alice", "mn_bob")
    join_all("#names-a", alice, bob)
    alice.send("JOIN #names-b")
    alice.expect("366", "mn_alice", "#names-b")
    bob.send("NAMES #names-a,#NAMES-B,#names-none")
    assert [(m.command, m.params[1:]) for m in [bob.expect_any("353", "366") for _ in range(3)]] == [
        ("353", ["=", "#names-a", "@mn_alice mn_bob"]), ("353", ["=", "#names-b", "@mn_alice"]),
        ("366", ["#names-a,#names-b,#names-none", "End of /NAMES list."])]  # one end for the list
    bob.send("NAMES")
    seen = set()
    while (msg := bob.expect_any("353", "366")).command == "353":
        seen.add(msg.params[2])
    assert msg.params[1] == "*" and {"#names-a", "#names-b"} <= seen


def test_joining_more_channels_than_chanlimit_gets_405(server):
    alice, bob = registered(server, "mc_alice", "mc_bob")
    limit = int(isupport(alice)["CHANLIMIT"].partition(":")[2])
    names = [f"#mc{i}" for i in range(limit)]
    alice.send("JOIN " + ",".join(names))
    alice.expect("366", "mc_alice", names[-1])
    alice.send("JOIN #mc-one-more")
    assert alice.expect("405").params == ["mc_alice", "#mc-one-more", "You have joined too many channels"]
    alice.send("PART #mc0")
    alice.expect("PART", "#mc0")
    alice.send("JOIN #mc-one-more")  # a place was freed
    alice.expect("366", "mc_alice", "#mc-one-more")
    bob.send("WHOIS mc_alice")
    assert len(bob.expect("319").params[2].split()) == limit


def test_a_full_ban_list_gets_478(server):
    alice, bob = registered(server, "mf_alice", "mf_bob")
    join_all("#fullbans", alice, bob)
    maxlist = dict(entry.split(":") for entry in isupport(alice)["MAXLIST"].split(","))
    maxlist = int(next(count for letters, count in maxlist.items() if "b" in letters))
    modes = int(isupport(alice)["MODES"])
    masks = [f"mf{i}!*@*" for i in range(maxlist)]
    for start in range(0, maxlist, modes):
        chunk = masks[start:start + modes]
        alice.send(f"MODE #fullbans +{'b' * len(chunk)} {' '.join(chunk)}")
    bob.expect("MODE", "#fullbans", where=lambda m: m.params[-1] == masks[-1])
    alice.send("MODE #fullbans +b one!more@*")
    assert alice.expect("478").params == ["mf_alice", "#fullbans", "b", "Channel list is full"]
    bob.send("MODE #fullbans +b")
    bob.expect("368", "mf_bob", "#fullbans")
    assert [m.params[2] for m in bob.since("367")] == masks  # on bob's worker too, and no more


def test_a_topic_is_cut_to_topiclen_for_everyone(server):
    alice, bob, carol = registered(server, "mz_alice", "mz_bob", "mz_carol")
    join_all("#long", alice, bob)
    topiclen = int(isupport(alice)["TOPICLEN"])
    # One byte, then two-byte characters past the limit: the cut may not split the last one.
    alice.send("TOPIC #long :x" + "é" * (topiclen // 2 + 5))
    cut = "x" + "é" * ((topiclen - 1) // 2)
    assert len(cut.encode()) <= topiclen < len(cut.encode()) + 2
    assert bob.expect("TOPIC", "#long").params[1] == cut
    carol.send("JOIN #long")
    assert carol.expect("332").params[2] == cut
    carol.send("TOPIC #long")
    assert carol.expect("332").params[2] == cut


def test_join_with_a_list_of_keys(server):
    alice, bob = registered(server, "mj_alice", "mj_bob")
    alice.send("JOIN #mj-a,#mj-b,#mj-open")
    alice.expect("366", "mj_alice", "#mj-open")
    alice.send("MODE #mj-a +k alpha\r\nMODE #mj-b +k beta")
    alice.expect("MODE", "#mj-b", "+k")
    bob.send("JOIN #mj-a,#mj-b beta,alpha")  # each key goes with the channel in its place
    assert bob.expect("475").params[1] == "#mj-a"
    assert bob.expect("475").params[1] == "#mj-b"
    bob.send("JOIN #mj-a,#mj-b,#mj-open alpha,beta")  # the last channel needs no key
    for name in ("#mj-a", "#mj-b", "#mj-open"):
        bob.expect("366", "mj_bob", name)
    assert len(bob.since("475")) == 2


def test_an_invitation_does_not_get_past_a_ban_a_key_or_a_limit(server):
    alice, bob, carol = registered(server, "mv_alice", "mv_bob", "mv_carol")
    join_all("#mv-ban", alice, carol)
    alice.send("JOIN #mv-key,#mv-full")
    alice.expect("366", "mv_alice", "#mv-full")
    alice.send("MODE #mv-ban +ib mv_bob!*@*\r\nMODE #mv-key +ik sesame\r\nMODE #mv-full +il 1")
    alice.expect("MODE", "#mv-full", "+il")
    refusals = {"#mv-ban": "474", "#mv-key": "475", "#mv-full": "471"}
    for name, numeric in refusals.items():
        alice.send(f"INVITE mv_bob {name}")
        alice.expect("341", "mv_alice", "mv_bob", name)
        bob.expect("INVITE", "mv_bob", name)
        bob.send(f"JOIN {name}")
        assert bob.expect(numeric).params[1] == name
    bob.send("JOIN #mv-key sesame")  # the invitation was not used up by the refusal
    bob.expect("366", "mv_bob", "#mv-key")


def test_names_right_after_joins_lists_them_all_then_ends_once(server):
    alice, bob = registered(server, "mj_alice", "mj_bob")
    bob.send("JOIN #nj-a")
    bob.expect("366", "mj_bob", "#nj-a")
    alice.send("JOIN #nj-a\r\nJOIN #nj-b\r\nNAMES #nj-a,#nj-b")  # one write: the joins are still at the hub
    alice.expect("366", "mj_alice", "#nj-b")  # the end of the second JOIN's own names
    answer = [alice.expect_any("353", "366") for _ in range(3)]
    assert [(m.command, m.params[1:]) for m in answer] == [
        ("353", ["=", "#nj-a", "@mj_bob mj_alice"]), ("353", ["=", "#nj-b", "@mj_alice"]),
        ("366", ["#nj-a,#nj-b", "End of /NAMES list."])]
