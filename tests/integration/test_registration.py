"""Registration, the welcome burst and keep-alive, as a plain IRC client sees them."""
import pytest

from tests.integration.harness import Server, isupport


def test_welcome_burst(server):
    c = server.connect()
    c.send("CAP LS 302")
    c.send("NICK alice")
    c.send("USER alice 0 * :Alice Liddell")
    ls = c.expect("CAP")
    assert ls.params[:2] == ["*", "LS"]
    assert set(ls.params[2].split()) == {
        "cap-notify", "message-tags", "server-time", "echo-message", "multi-prefix", "away-notify", "extended-join",
        "userhost-in-names", "invite-notify", "setname", "chghost", "batch", "labeled-response",
        "draft/channel-rename", "draft/chathistory", "draft/event-playback", "draft/message-redaction",
        "draft/read-marker", "soju.im/search", "extended-monitor", "account-notify", "account-tag",
        "sasl=PLAIN,SCRAM-SHA-256,EXTERNAL", "draft/account-registration"}
    c.send("CAP END")
    welcome = c.expect("001")
    assert welcome.source == "hubchat.local"
    assert welcome.params[0] == "alice" and "alice!~alice@127.0.0.1" in welcome.params[1]
    for numeric in ("002", "003", "004"):
        c.expect(numeric, "alice")
    c.expect("376")
    tokens = isupport(c)
    assert tokens["CASEMAPPING"] == "ascii"
    assert tokens["PREFIX"] == "(ov)@+" and tokens["CHANMODES"] == "beI,k,l,Cimnst"
    assert "UTF8ONLY" in tokens and "WHOX" in tokens and tokens["ELIST"] == "CMNTU"
    for key in ("CHANTYPES", "CHANMODES", "PREFIX", "NICKLEN", "CHANNELLEN", "TOPICLEN", "NETWORK", "LINELEN"):
        assert key in tokens
    assert tokens["CHATHISTORY"] == "100" and tokens["MSGREFTYPES"] == "timestamp,msgid"
    assert tokens["MONITOR"] == "100"
    commands = [m.command for m in c.received]
    for numeric in ("251", "254", "255", "375", "372", "376"):
        assert numeric in commands


def test_registration_waits_for_cap_end(server):
    c = server.connect()
    c.send("CAP LS 302")
    c.send("NICK early")
    c.send("USER u 0 * :x")
    c.expect("CAP")
    # Registering would hold later lines until the hub answers, so the PONG would follow a 001.
    c.ping()
    assert not c.since("001")
    c.send("CAP REQ :no-such-cap")
    assert c.expect("CAP").params[1:] == ["NAK", "no-such-cap"]
    c.send("CAP END")
    c.expect("001")


def test_commands_before_registration_get_451_and_the_connection_lives(server):
    c = server.connect()
    c.send("JOIN #x")
    assert c.expect("451").params == ["*", "You have not registered"]
    c.send("PRIVMSG bob :hi")
    c.expect("451")
    c.register("late")


def test_nick_errors_before_registration(server):
    c = server.connect()
    c.send("NICK")
    assert c.expect("431").params[0] == "*"
    c.send("NICK 9lives")
    assert c.expect("432").params[:2] == ["*", "9lives"]
    c.send("USER u 0 *")
    assert c.expect("461").params[:2] == ["*", "USER"]
    c.register("fine")


def test_user_with_an_empty_realname_gets_461(server):
    c = server.connect()
    c.send("NICK blank\r\nUSER blank * * :")
    assert c.expect("461").params == ["blank", "USER", "Not enough parameters"]
    c.send("USER blank * * :Not Blank")
    assert "blank!~blank@" in c.expect("001").params[1]


@pytest.mark.parametrize("username, ident", [("jöhn", "~jhn"), ("ユーザー", "~user")])
def test_a_non_ascii_username_registers_with_a_sanitised_ident(server, username, ident):
    c = server.connect()
    nick = f"ascii{len(ident)}"
    c.send(f"NICK {nick}\r\nUSER {username} 0 * :Real Name")
    assert f"{nick}!{ident}@127.0.0.1" in c.expect("001").params[1]
    c.expect("376")
    assert not c.since("461")


def test_already_registered(server):
    c = server.connect()
    c.register("reg")
    c.send("USER again 0 * :x")
    assert c.expect("462").params[0] == "reg"
    c.send("PASS secret")
    c.expect("462")


def test_unknown_command_421(server):
    c = server.connect()
    c.register("curious")
    c.send("FROBNICATE now")
    assert c.expect("421").params[:2] == ["curious", "FROBNICATE"]


def test_need_more_params_461(server):
    """Every command of the README's table that takes parameters, sent without enough."""
    c = server.connect()
    c.register("terse")
    for cmd in ("CAP", "PASS", "USER u 0 *", "PING", "JOIN", "PART", "TOPIC", "KICK #c", "INVITE nick", "MODE",
                "WHO", "WHOIS", "WHOWAS", "ISON", "USERHOST", "SETNAME", "OPER name", "KILL nick", "WALLOPS",
                "CHGHOST nick user"):
        c.send(cmd)
        assert c.expect("461").params[:2] == ["terse", cmd.split()[0]]


def test_line_too_long_gets_417_and_the_connection_lives(server):
    c = server.connect()
    c.register("verbose")
    c.send("PRIVMSG verbose :" + "x" * 600)
    assert c.expect("417").params[0] == "verbose"
    c.sync()


def test_ping_pong_from_the_client(server):
    c = server.connect()
    c.send("PING :are you there")
    assert c.expect("PONG").params == ["hubchat.local", "are you there"]


def test_server_pings_idle_clients_and_drops_silent_ones():
    srv = Server(2, env={"HUBCHAT_LIMITS_PING_INTERVAL": "1", "HUBCHAT_LIMITS_PING_TIMEOUT": "1"})
    try:
        silent = srv.connect(auto_pong=False)
        silent.register("silent")
        silent.expect("PING", timeout=5)
        assert "Ping timeout" in silent.expect("ERROR", timeout=5).params[0]
        silent.expect_closed()
        talker = srv.connect()  # answers every PING while it reads
        talker.register("talker")
        for _ in range(3):  # three ping cycles outlast the timeout
            talker.expect("PING", timeout=5)
        talker.sync()
    finally:
        srv.stop()


def test_registration_timeout():
    srv = Server(1, env={"HUBCHAT_LIMITS_REGISTRATION_TIMEOUT": "1"})
    try:
        c = srv.connect()
        c.send("NICK slowpoke")
        assert "Registration timed out" in c.expect("ERROR", timeout=5).params[0]
        c.expect_closed()
    finally:
        srv.stop()


@pytest.mark.parametrize("given,welcomed", [("hunter2", True), ("wrong", False), (None, False)])
def test_server_password(given, welcomed):
    srv = Server(1, env={"HUBCHAT_SERVER_PASSWORD": "hunter2"})
    try:
        c = srv.connect()
        if given:
            c.send(f"PASS {given}")
        c.send("NICK guest")
        c.send("USER g 0 * :g")
        if welcomed:
            c.expect("001")
        else:
            c.expect("464")
            c.expect_closed()
    finally:
        srv.stop()


def test_quit_closes_with_error(server):
    c = server.connect()
    c.register("leaver")
    c.send("QUIT :see you")
    assert c.expect("ERROR").params[0] == "Quit: see you"
    c.expect_closed()


def test_motd_and_lusers_on_demand(server):
    c = server.connect()
    c.register("reader")
    c.send("MOTD")
    c.expect("375")
    assert c.expect("372").params[1] == "- Welcome to hubchat."
    c.expect("376")
    c.send("LUSERS")
    c.expect("251")
    c.expect("266")


def test_answers_to_commands_before_quit_arrive_before_the_connection_closes(server):
    c = server.connect()
    c.register("hasty")
    c.send(b"PRIVMSG nobody :anyone?\r\nQUIT :done\r\n")  # one write: the 401 comes from the hub
    assert c.expect("401").params[1] == "nobody"
    assert c.expect("ERROR").params == ["Quit: done"]
    c.expect_closed()


def test_an_empty_motd_is_422(tmp_path):
    conf = tmp_path / "hubchat.toml"
    conf.write_text('[server]\nmotd = ""\n')
    srv = Server(1, "--config", str(conf))
    try:
        c = srv.connect()
        c.send("NICK nomotd\r\nUSER u 0 * :x")
        assert c.expect("422").params == ["nomotd", "MOTD File is missing"]  # ends the welcome burst
        c.send("MOTD")
        c.expect("422")
        assert not c.since("375") and not c.since("372")
    finally:
        srv.stop()
