"""The client's chat logic, with strings only: typed lines to IRC lines, IRC lines to events."""
import pytest

from client.core import ChatCore
from client.render import nick_colour, plain
from ircproto.message import parse


def joined(nick="me", *others):
    core = ChatCore(nick)
    for line in [f":srv 001 {nick} :hi", f":{nick}!u@h JOIN #lobby",
                 f":srv 353 {nick} = #lobby :@{nick} {' '.join(others)}", f":srv 366 {nick} #lobby :end"]:
        core.handle_message(parse(line.encode()))
    return core


def feed(core, line):
    return core.handle_message(parse(line.encode()))


def test_plain_text_goes_to_the_current_room_and_is_shown_once():
    core = joined("me", "bob")
    out = core.handle_input("hello there")
    assert out.send == [b"PRIVMSG #lobby :hello there\r\n"]
    assert [(e.kind, e.text, e.own) for e in out.events] == [("message", "hello there", True)]


@pytest.mark.parametrize("typed,sent", [
    ("/msg bob hi bob", b"PRIVMSG bob :hi bob\r\n"),
    ("/join #dev", b"JOIN #dev\r\n"),
    ("/join dev", b"JOIN #dev\r\n"),
    ("/part", b"PART #lobby\r\n"),
    ("/part #lobby gone for lunch", b"PART #lobby :gone for lunch\r\n"),
    ("/nick newme", b"NICK newme\r\n"),
    ("/me waves", b"PRIVMSG #lobby :\x01ACTION waves\x01\r\n"),
    ("/names", b"NAMES #lobby\r\n"),
    ("/list", b"LIST\r\n"),
    ("/topic", b"TOPIC #lobby\r\n"),
    ("/topic fresh topic", b"TOPIC #lobby :fresh topic\r\n"),
    ("/whois bob", b"WHOIS bob\r\n"),
    ("/away lunch", b"AWAY lunch\r\n"),
    ("/away", b"AWAY\r\n"),
    ("/quit bye all", b"QUIT :bye all\r\n"),
    ("//slash at the start", b"PRIVMSG #lobby :/slash at the start\r\n"),
])
def test_commands(typed, sent):
    assert joined("me", "bob").handle_input(typed).send == [sent]


def test_quit_says_so():
    assert joined().handle_input("/quit").quit


def test_msg_without_text_opens_the_conversation():
    core = joined("me", "bob")
    out = core.handle_input("/msg bob")
    assert out.send == [] and core.current == "bob"
    assert core.handle_input("just us").send == [b"PRIVMSG bob :just us\r\n"]
    assert "bob" in core.conversations()


def test_unknown_command_points_to_help():
    out = joined().handle_input("/frobnicate")
    assert out.send == [] and "/help" in out.events[0].text


def test_help_lists_every_command():
    text = "\n".join(e.text for e in joined().handle_input("/help").events)
    for command in ("/msg", "/join", "/part", "/nick", "/me", "/names", "/list", "/topic", "/whois", "/away",
                    "/quit", "/help"):
        assert command in text


def test_usage_errors_send_nothing():
    core = joined()
    for typed in ("/msg", "/join", "/nick", "/whois", "/me"):
        out = core.handle_input(typed)
        assert out.send == [] and out.events[0].kind == "error", typed


def test_incoming_messages_become_events():
    core = joined("me", "bob")
    [msg] = feed(core, ":bob!u@h PRIVMSG #lobby :hello")
    assert (msg.kind, msg.target, msg.nick, msg.text, msg.private) == ("message", "#lobby", "bob", "hello", False)
    [private] = feed(core, ":bob!u@h PRIVMSG me :psst")
    assert private.private and private.target == "bob" and "bob" in core.conversations()
    [action] = feed(core, ":bob!u@h PRIVMSG #lobby :\x01ACTION dances\x01")
    assert (action.kind, action.text) == ("action", "dances")


def test_membership_follows_joins_parts_quits_and_nick_changes():
    core = joined("me", "bob")
    feed(core, ":carol!u@h JOIN #lobby")
    assert core.members() == ["bob", "carol", "me"]
    feed(core, ":bob!u@h NICK robert")
    assert core.members() == ["carol", "me", "robert"]
    feed(core, ":carol!u@h PART #lobby :bye")
    feed(core, ":robert!u@h QUIT :gone")
    assert core.members() == ["me"]


def test_kicks_modes_and_invites():
    core = joined("me", "bob", "carol")
    [event] = feed(core, ":bob!u@h KICK #lobby carol :spam")
    assert core.members() == ["bob", "me"] and event.text == "bob removed carol from #lobby (spam)"
    [event] = feed(core, ":bob!u@h MODE #lobby +o me")
    assert event.text == "bob set mode +o me" and event.target == "#lobby"
    [event] = feed(core, ":bob!u@h INVITE me #den")
    assert "/join #den" in event.text
    [event] = feed(core, ":bob!u@h KICK #lobby me")
    assert "#lobby" not in core.channels and core.current is None and event.text == "bob removed you from #lobby"


def test_own_nick_change_and_topic():
    core = joined("me")
    [event] = feed(core, ":me!u@h NICK you")
    assert core.nick == "you" and event.own
    feed(core, ":srv 332 you #lobby :the topic")
    assert core.channels["#lobby"]["topic"] == "the topic"


def test_errors_are_sentences():
    core = joined()
    [event] = feed(core, ":srv 401 me ghost :No such nick/channel")
    assert event.kind == "error" and event.text == "There is nobody called ghost here."


def test_completion_of_commands_and_nicks():
    core = joined("me", "bob", "Barbara")
    assert core.completions("/j") == ["/join"]
    assert core.completions("b") == ["Barbara", "bob"]


def test_reconnect_rejoins_the_rooms():
    core = joined()
    feed(core, ":me!u@h JOIN #dev")
    assert core.rejoin_lines() == [b"JOIN #lobby,#dev\r\n"]


def test_rendering_and_stable_colours():
    core = joined("me", "bob")
    [event] = feed(core, ":bob!u@h PRIVMSG #lobby :hello")
    assert plain(event, "me").endswith("#lobby <bob> hello")
    assert nick_colour("Bob") == nick_colour("bob")


def test_read_markers_are_asked_for_turned_into_events_and_sent_forward_only():
    from client.history import format_server_time
    core = ChatCore("me")
    core.start_lines()
    feed(core, ":srv CAP * LS :batch server-time draft/read-marker")
    assert core.take_sends() == [b"CAP REQ :batch server-time draft/read-marker\r\n"]
    assert core.mark_read("#lobby", 1_796_000_000.0).send == []  # not acknowledged yet
    feed(core, ":srv CAP me ACK :batch server-time draft/read-marker")
    feed(core, ":srv 001 me :hi")
    feed(core, ":me!u@h JOIN #Lobby")
    marker = 1_796_000_000.5
    events = feed(core, f"@time={format_server_time(marker + 60)} :srv MARKREAD #lobby "
                        f"timestamp={format_server_time(marker)}")
    assert [(e.kind, e.target, e.ts) for e in events] == [("read", "#Lobby", marker)]  # the marker's time
    assert feed(core, ":srv MARKREAD #lobby *") == []
    assert core.mark_read("#lobby", marker).send == []  # the server has it already
    later = marker + 30
    assert core.mark_read("#LOBBY", later).send == [
        f"MARKREAD #Lobby timestamp={format_server_time(later)}\r\n".encode()]
    assert core.mark_read("#lobby", later).send == [] and core.mark_read("#lobby", None).send == []
    assert plain(events[0], "me") is not None


def test_without_the_capability_nothing_is_sent():
    core = joined("me")
    assert core.mark_read("#lobby", 1_796_000_000.0).send == []
