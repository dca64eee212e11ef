"""bench/gpu_check.py's table and exit logic, on CPU (the checks themselves need a GPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import gpu_check  # noqa: E402


def test_exit_codes_and_table():
    rows = [gpu_check.Row("cuda-tests", "ok", 12.0, "3 passed"),
            gpu_check.Row("peak-memory", "skipped", 0.1, "not recorded yet")]
    assert gpu_check.exit_code(rows) == 0
    rows.append(gpu_check.Row("ray-gpu", "failed", 3.0, "devices ['cpu']"))
    assert gpu_check.exit_code(rows) == 1
    table = gpu_check.format_table(rows)
    assert table.splitlines()[-1] == "1 passed, 1 failed, 1 skipped"
    assert "ray-gpu" in table and "devices ['cpu']" in table


def test_a_crashing_or_hanging_check_is_a_failed_row():
    crash = gpu_check.run_one("x", 30, [sys.executable, "-c", "import sys; sys.exit('kaput')"])
    assert crash.status == "failed" and "exit 1: kaput" in crash.detail
    hang = gpu_check.run_one("x", 1, [sys.executable, "-c", "import time; time.sleep(10)"])
    assert hang.status == "failed" and "no result within 1 s" in hang.detail
    row = '{"check": "x", "status": "ok", "seconds": 0.5, "detail": "fine"}'
    good = gpu_check.run_one("x", 30, [sys.executable, "-c", f"print({row!r})"])
    assert (good.status, good.detail) == ("ok", "fine")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-machine answer")
def test_without_cuda_it_says_so_and_exits_2():
    proc = subprocess.run([sys.executable, str(BENCH / "gpu_check.py")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stdout


def test_every_check_runs_with_a_time_limit_within_the_budget():
    assert sum(timeout for _, timeout in gpu_check.CHECKS.values()) <= 8 * 60
    assert gpu_check.main([], cuda_available=lambda: False) == 2
