"""OPER against a configuration that holds only a password hash, and the powers it grants."""
import subprocess
import sys

from config.passwords import hash_password
from tests.integration.harness import ROOT, Server, join_all, motd_on_every_worker, registered, wait_for


def test_oper_with_a_hashed_password(tmp_path):
    made = subprocess.run([sys.executable, "-m", "hub", "--hash-password"], input="correct horse\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=30)
    hashed = made.stdout.strip()
    assert made.returncode == 0 and hashed.startswith("scrypt$") and "correct horse" not in hashed
    conf = tmp_path / "ops.toml"
    conf.write_text(f'[operators]\nalice = "{hashed}"\n')
    srv = Server(2, "--config", str(conf))
    try:
        c = srv.connect()
        c.register("alice")
        c.send("OPER nobody whatever")
        assert c.expect("491").params[0] == "alice"
        c.send("OPER alice wrong")
        assert c.expect("464").params[1] == "Password incorrect"
        c.send("OPER alice :correct horse")
        assert c.expect("381").params[0] == "alice"
        mode = c.expect("MODE")
        assert mode.params == ["alice", "+o"]
        c.send("OPER")
        assert c.expect("461").params[1] == "OPER"
    finally:
        srv.stop()


def test_operator_powers_kill_wallops_and_rehash(tmp_path):
    conf = tmp_path / "ops.toml"
    conf.write_text(f'[operators]\nroot = "{hash_password("s3cret")}"\n')
    srv = Server(3, "--config", str(conf))
    try:
        oper, bob, carol = registered(srv, "op_root", "op_bob", "op_carol")
        join_all("#ops", oper, bob, carol)
        for power in ("KILL op_carol :bye", "WALLOPS :hello", "REHASH"):
            bob.send(power)
            assert bob.expect("481").params == ["op_bob", "Permission Denied- You're not an IRC operator"]
        oper.send("OPER root s3cret")
        oper.expect("381")
        oper.expect("MODE", "op_root", "+o")
        bob.send("WHOIS op_root")
        assert bob.expect("313").params[1] == "op_root"
        carol.send("MODE op_carol +w")
        carol.expect("MODE", "op_carol", "+w")
        oper.send("WALLOPS :maintenance at noon")
        wallops = carol.expect("WALLOPS")
        assert wallops.source.startswith("op_root!") and wallops.params == ["maintenance at noon"]
        oper.send("KILL nobody_here :x")
        oper.expect("401")
        oper.send("KILL op_carol :spamming")
        assert carol.expect("ERROR").params[0] == "Killed (op_root (spamming))"
        carol.expect_closed()
        quit_ = bob.expect("QUIT")
        assert quit_.source.startswith("op_carol!") and quit_.params == ["Killed (op_root (spamming))"]
        bob.sync()
        assert not bob.since("WALLOPS")  # bob has no +w
        conf.write_text(conf.read_text() + '[server]\nmotd = "Rehashed MOTD"\n')
        oper.send("REHASH")
        assert oper.expect("382").params[2] == "Rehashing"

        wait_for(lambda: set(motd_on_every_worker(srv)) == {"- Rehashed MOTD"}, what="the new MOTD after REHASH")
    finally:
        srv.stop()
