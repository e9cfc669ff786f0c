"""The window's remembered connection (client/settings.py)."""
import json
import os
import stat

from client.settings import load, save, settings_path


def test_the_file_is_in_the_xdg_config_dir_or_under_home(tmp_path):
    assert settings_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "hubchat" / "client.json"
    assert settings_path({}).parts[-3:] == (".config", "hubchat", "client.json")


def test_saved_values_come_back_and_nothing_else_is_kept(tmp_path):
    path = tmp_path / "hubchat" / "client.json"
    save(path, {"host": "irc.example", "port": 6697, "tls": True, "nick": "ann", "account": "ann",
                "password": "never written"})
    assert load(path) == {"host": "irc.example", "port": 6697, "tls": True, "nick": "ann", "account": "ann"}
    assert "never written" not in path.read_text()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_missing_broken_or_strange_file_gives_nothing_or_only_the_good_fields(tmp_path):
    path = tmp_path / "client.json"
    assert load(path) == {}
    path.write_text("{not json")
    assert load(path) == {}
    path.write_text("[1, 2]")
    assert load(path) == {}
    path.write_text(json.dumps({"host": "h", "port": "6667", "tls": 1, "nick": "n", "extra": 1}))
    assert load(path) == {"host": "h", "nick": "n"}


def test_a_desktop_notification_uses_the_platforms_notifier_or_nothing():
    from client.gui import notification_command
    assert notification_command("bob in #a", "hi", lambda p: p == "notify-send") == \
        ["notify-send", "--app-name=hubchat", "bob in #a", "hi"]
    mac = notification_command("bob", 'say "hi"', lambda p: p == "osascript")
    assert mac == ["osascript", "-e", 'display notification "say \\"hi\\"" with title "bob"']
    assert notification_command("bob", "hi", lambda p: None) is None
