"""bench/train_bench.py --quick runs end to end and prints its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_train_bench_quick_json():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "train_bench.py"), "--quick", "--json", "--accelerator", "cpu"],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert report["quick"] is True and report["device"] == "cpu"
    names = [case["case"] for case in report["cases"]]
    assert names == ["mlp_784_256_10", "cnn_16_16_32_32"]
    for case in report["cases"]:
        assert case["plain_epoch_s"] > 0 and case["evaluator_epoch_s"] > 0
        assert case["ratio"] == case["evaluator_epoch_s"] / case["plain_epoch_s"]
    assert 0 < report["fixed_cost"]["fixed_cost_s"] < 5
