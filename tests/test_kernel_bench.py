"""The kernel benchmark runs end to end and reports consistent, machine-readable numbers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "kernel_bench.py"


def test_quick_benchmark_json():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--json"], capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(proc.stdout)
    assert result["meta"]["quick"] is True
    rows = result["acquisition"]
    assert {(r["family"], r["n"], r["m"]) for r in rows} == {
        (f, n, 1000) for f in ("cnn", "mlp", "training") for n in (15, 30)
    }
    for r in rows:
        assert r["numba_ms"] > 0 and r["numpy_ms"] > 0 and r["python_ms"] > 0
        assert abs(r["vs_numpy"] - r["numpy_ms"] / r["numba_ms"]) < 1e-9 * r["vs_numpy"]
        assert abs(r["vs_python"] - r["python_ms"] / r["numba_ms"]) < 1e-9 * r["vs_python"]
        assert r["max_abs_ei_diff"] < 1e-9  # the three implementations agree
    chol = result["cholesky"]
    assert chol["n"] == 1000 and chol["max_abs_diff"] < 1e-9
    assert abs(chol["ratio"] - chol["scipy_refactor_ms"] / chol["extension_ms"]) < 1e-9 * chol["ratio"]
    assert result["import_first_step"] is None
    assert {"cnn_step_ms_n30_m1000", "cnn_vs_python_n30_m1000", "cholesky_extension_vs_refactor_n1000"} <= set(
        result["targets"]
    )
