"""The web client's pure modules (client/web: IRC parsing and formatting, the state, the
commands, the reconnect backoff), tested by their own JavaScript tests under Node's runner.

The files are named one by one rather than by their folder: Node 20 reads a folder argument
as "every test in it", Node 22 as a glob that matches nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[1] / "client" / "web"
TIMEOUT = 60.0


def test_the_web_clients_javascript_tests_pass():
    node = shutil.which("node")
    if node is None:
        message = "node is missing (apt-get install nodejs; scripts/test.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    files = sorted(str(p.relative_to(WEB)) for p in (WEB / "tests").glob("*.test.js"))
    assert files, "no JavaScript tests found"
    result = subprocess.run([node, "--test", *files], cwd=WEB, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"node --test failed:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    summary = {line.split()[1]: int(line.split()[2]) for line in result.stdout.splitlines()
               if line.startswith("# ") and len(line.split()) == 3 and line.split()[2].isdigit()}
    assert summary.get("fail") == 0 and summary.get("pass", 0) >= len(files), result.stdout[-3000:]
