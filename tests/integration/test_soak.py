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
    assert results["machine_loop_ms"] > 0 and f"loop takes {results['machine_loop_ms']:g} ms" in proc.stdout
    roles = sorted(name.split()[0] for name in results["registration_cpu_percent"])
    assert roles == ["generator"] * results["plan"]["procs"] + ["hub", "store", "supervisor", "worker", "worker", "writer"]
    assert results["history"] is True
    assert "soak: CPU while registering: " in proc.stdout


@pytest.mark.timeout(120)
def test_a_sampled_run_follows_listeners_from_the_probe_and_counts_everyone_else(tmp_path):
    proc = subprocess.run(["bash", "scripts/soak.sh", "--workers", "2", "--clients", "90", "--channels", "3",
                           "--senders", "6", "--rate", "600", "--duration", "3", "--sample", "2",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "soak.json").read_text())
    assert results["problems"] == []
    assert results["plan"]["sample"] == 2
    assert results["delivered"] == results["expected_deliveries"] == results["sent"] * 29
    assert results["latency_ms"]["p99"] is not None  # measured by the probe's followed members


@pytest.mark.timeout(120)
def test_websocket_clients_mixed_in_get_the_same_exactly_once_checks(tmp_path):
    proc = subprocess.run(["bash", "scripts/soak.sh", "--workers", "2", "--clients", "90", "--channels", "3",
                           "--senders", "6", "--rate", "600", "--duration", "3", "--websocket-share", "0.3",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    results = json.loads((tmp_path / "soak.json").read_text())
    assert results["websocket_clients"] == 27 and "(27 over WebSocket)" in proc.stdout
    assert results["problems"] == []
    assert results["delivered"] == results["expected_deliveries"] == results["sent"] * 29
