"""scripts/soak.sh --quick: the short stress run that CI runs; it must pass."""
import json
import subprocess

import pytest

from tests.integration.harness import ROOT


@pytest.mark.timeout(300)
def test_quick_soak_run_passes(tmp_path):
    proc = subprocess.run(["bash", "scripts/soak.sh", "--quick", "--out", str(tmp_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "soak: passed" in proc.stdout
    results = json.loads((tmp_path / "soak.json").read_text())
    assert results["problems"] == []
    assert results["delivered"] == results["expected_deliveries"] > 0
    assert (tmp_path / "soak.md").read_text().startswith("# Soak run")
