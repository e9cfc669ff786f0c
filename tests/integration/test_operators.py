"""OPER against a configuration that holds only a password hash."""
import subprocess
import sys

from tests.integration.harness import ROOT, Server


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
