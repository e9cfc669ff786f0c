"""One schema feeds defaults, TOML, environment and CLI; errors name the key."""
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import config
from config.loader import env_name
from config.schema import sections
from hub.__main__ import build_parser, overrides_from

EXAMPLE = Path(config.__file__).parent / "example.toml"


def test_example_file_parses_to_the_defaults():
    assert config.load(str(EXAMPLE), env={}) == config.Config()


def test_example_file_documents_every_setting():
    text = EXAMPLE.read_text()
    for section, cls in sections():
        assert f"[{section}]" in text
        for f in fields(cls):
            assert re.search(rf"^{f.name} = ", text, re.M), f"{section}.{f.name} missing from example.toml"


def test_precedence_defaults_toml_env_cli(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[server]\nport = 7000\nname = "irc.from.file"\n[limits]\nnicklen = 20\n')
    env = {env_name("server", "port"): "7001", env_name("limits", "nicklen"): "25"}
    cfg = config.load(str(path), env=env, overrides={"server": {"port": 7002}})
    assert cfg.server.port == 7002
    assert cfg.limits.nicklen == 25
    assert cfg.server.name == "irc.from.file"
    assert cfg.limits.topiclen == config.Config().limits.topiclen


@pytest.mark.parametrize("text,key", [
    ('[server]\nport = 70000\n', "server.port"),
    ('[server]\nport = "x"\n', "server.port"),
    ('[server]\nname = "no spaces allowed"\n', "server.name"),
    ('[limits]\nsendq = 10\n', "limits.sendq"),
    ('[limits]\nbogus = 1\n', "limits.bogus"),
    ('[nosuch]\nx = 1\n', "nosuch"),
])
def test_invalid_values_name_the_key(tmp_path, text, key):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(config.ConfigError, match=re.escape(key)):
        config.load(str(path), env={})


def test_env_booleans_and_errors():
    assert config.load(env={"HUBCHAT_SERVER_FLOOD_CONTROL": "off"}).server.flood_control is False
    with pytest.raises(config.ConfigError, match="server.flood_control"):
        config.load(env={"HUBCHAT_SERVER_FLOOD_CONTROL": "perhaps"})


def test_cli_flags_come_from_the_schema():
    args = build_parser().parse_args(["--workers", "4", "--port", "0", "--name", "irc.x.org", "--no-flood-control"])
    assert overrides_from(args) == {"server": {"workers": 4, "port": 0, "name": "irc.x.org", "flood_control": False}}


def test_server_refuses_to_start_with_a_bad_value_and_names_the_key():
    proc = subprocess.run([sys.executable, "-m", "hub", "--port", "99999"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "server.port" in proc.stderr


def test_operator_passwords_must_be_hashes(tmp_path):
    from config.passwords import hash_password, verify
    hashed = hash_password("s3cret")
    assert verify("s3cret", hashed) and not verify("guess", hashed)
    path = tmp_path / "ops.toml"
    path.write_text(f'[operators]\nalice = "{hashed}"\n')
    assert config.load(str(path), env={}).operators == {"alice": hashed}
    path.write_text('[operators]\nbob = "plain-text-password"\n')
    with pytest.raises(config.ConfigError, match="operators.bob"):
        config.load(str(path), env={})
