"""Benchmark of the GP acquisition step: Numba path vs vectorised numpy vs per-pair Python.

For the CNN, MLP and training spaces, n observed points and m candidates, one acquisition step is
cross-covariance K_* (m, n) + posterior (mean, variance) + expected improvement over the m
candidates, the Cholesky factor of the observations being already available (the search keeps
it up to date: one GP per BO stage, extended by one row per told trial, see
``lightning_dnc.search.stages.bo.StageGP``). Three implementations, timed in the same run:

(a) ``numba``: :meth:`lightning_dnc.gp.GaussianProcess.expected_improvement` on encoded candidates
    (warm: compiled code already loaded; compile/load time is reported apart);
(b) ``numpy``: the vectorised twin ``tests/naive.py::covariance_numpy`` + the same scipy
    triangular solves + EI with ``scipy.special.ndtr``;
(c) ``python``: ``tests/naive.py::covariance_pairwise`` (one Python call per pair) + the same
    posterior + EI one candidate at a time. Above a pair budget, (c) runs on a slice of the
    candidates and its time is scaled linearly in m (marked ``python_extrapolated``).

``vs_numpy`` = b / a and ``vs_python`` = c / a: how many times faster (a) is. Times are medians.
Also: one-row Cholesky extension at n = 1000 vs scipy refactorisation, import + first
acquisition step in a fresh process with a cold and a warm Numba cache, and the path the search
really takes per BO pick -- ``StagedSearch.ask`` (pool, dedupe, GP update, EI, completion) against
the 0.1.0 path on the same states, and ``ask`` alone for the default (joint) strategy's stages,
which have no 0.1.0 counterpart, with the scalar and the composite BO model (:mod:`_ask_bench`).

Usage::

    python bench/kernel_bench.py            # full table (a few minutes on 2 cores)
    python bench/kernel_bench.py --quick    # smoke run (seconds), fewer sizes, no import timing
    python bench/kernel_bench.py --json     # machine-readable output on stdout
    python bench/kernel_bench.py --ask-only # only ask per pick (incl. the cost models with a data shape)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
from scipy.linalg import cholesky, solve_triangular
from scipy.special import ndtr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import naive  # noqa: E402  (tests/naive.py: the reference twins)
from _ask_bench import bench_cost_model_picks, bench_default_picks, bench_picks  # noqa: E402
from lightning_dnc.gp import GaussianProcess, _compiled  # noqa: E402
from lightning_dnc.gp.cholesky import PIVOT_REL_TOL  # noqa: E402
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace  # noqa: E402

NOISE_VAR = 1e-4
XI = 1e-4
FULL = {"n": (15, 30, 100, 300), "m": (1000, 10000), "python_pairs": 30_000, "min_time": 0.2}
QUICK = {"n": (15, 30), "m": (1000,), "python_pairs": 6_000, "min_time": 0.02}
TARGETS = {
    "cnn_step_ms_n30_m1000": 5.0,
    "cnn_vs_python_n30_m1000": 300.0,
    "cnn_vs_numpy_n100_m10000": 5.0,
    "cholesky_extension_vs_refactor_n1000": 10.0,
    "warm_import_first_step_s": 2.0,
}

FIRST_STEP_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from lightning_dnc.gp import GaussianProcess
from lightning_dnc.space import CNNSpace
t1 = time.perf_counter()
space = CNNSpace()
observed = space.sample(30)
candidates = space.encode(space.sample(1000, seed=1, method="random"))
gp = GaussianProcess(space)
gp.observe(observed, [0.1 * i for i in range(30)])
ei = gp.expected_improvement(candidates)
t2 = time.perf_counter()
print(json.dumps({{"import_s": t1 - t0, "first_step_s": t2 - t1, "total_s": t2 - t0}}))
"""


def timed(fn: Callable[[], Any], min_time: float, max_repeats: int = 50) -> float:
    """Median seconds of ``fn()`` over repeats lasting at least ``min_time`` (>= 3 runs)."""
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def make_space(family: str) -> Any:
    return {"cnn": CNNSpace, "mlp": MLPSpace, "training": TrainingSpace}[family]()


def numpy_step(
    space: Any, cand_arrays: Any, obs_arrays: Any, factor: np.ndarray, alpha: np.ndarray, mu: float, y_best: float
) -> np.ndarray:
    k_sx = naive.covariance_numpy(space, cand_arrays, obs_arrays)
    mean = mu + k_sx @ alpha
    v = solve_triangular(factor, k_sx.T, lower=True, check_finite=False)
    sigma = np.sqrt(np.maximum(1.0 - np.einsum("ij,ij->j", v, v), 0.0))
    imp = y_best - mean - XI
    z = np.divide(imp, sigma, out=np.zeros_like(imp), where=sigma > 0)
    return imp * ndtr(z) + sigma * np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)


def python_step(space: Any, cands: list, obs: list, factor: np.ndarray, alpha: np.ndarray, mu: float, y_best: float) -> list:
    k_sx = naive.covariance_pairwise(space, cands, obs)
    mean = mu + k_sx @ alpha
    v = solve_triangular(factor, k_sx.T, lower=True, check_finite=False)
    var = 1.0 - (v * v).sum(axis=0)
    return naive.expected_improvement_pairwise(mean.tolist(), var.tolist(), y_best, XI)


def bench_acquisition(family: str, n: int, m: int, cfg: dict) -> dict:
    space = make_space(family)
    obs = space.sample(n, seed=10, method="random")
    cands = space.sample(m, seed=11, method="random")
    y = np.random.default_rng(12).normal(size=n)
    gp = GaussianProcess(space, noise_var=NOISE_VAR)
    gp.observe(obs, y)
    enc = space.encode(cands)
    factor, alpha, mu, y_best = gp.cholesky_factor, gp._alpha, gp.mean_value, float(y.min())

    ei_a = gp.expected_improvement(enc, xi=XI)
    t_a = timed(lambda: gp.expected_improvement(enc, xi=XI), cfg["min_time"])

    cand_arrays, obs_arrays = naive.numpy_arrays(space, cands), naive.numpy_arrays(space, obs)
    ei_b = numpy_step(space, cand_arrays, obs_arrays, factor, alpha, mu, y_best)
    t_b = timed(lambda: numpy_step(space, cand_arrays, obs_arrays, factor, alpha, mu, y_best), cfg["min_time"], 5)

    m_c = min(m, max(1, cfg["python_pairs"] // n))
    t0 = time.perf_counter()
    ei_c = python_step(space, cands[:m_c], obs, factor, alpha, mu, y_best)
    t_c = (time.perf_counter() - t0) * m / m_c

    max_diff = max(float(np.abs(ei_a - ei_b).max()), float(np.abs(ei_a[:m_c] - np.array(ei_c)).max()))
    return {
        "family": family,
        "n": n,
        "m": m,
        "numba_ms": t_a * 1e3,
        "numpy_ms": t_b * 1e3,
        "python_ms": t_c * 1e3,
        "python_extrapolated": m_c < m,
        "vs_numpy": t_b / t_a,
        "vs_python": t_c / t_a,
        "max_abs_ei_diff": max_diff,
    }


def bench_cholesky(n: int, min_time: float) -> dict:
    space = CNNSpace()
    configs = space.sample(n + 1, seed=3, method="random")
    k = space.covariance(configs) + NOISE_VAR * np.eye(n + 1)
    buf = np.zeros((n + 1, n + 1))
    buf[:n, :n] = np.linalg.cholesky(k[:n, :n])
    k_vec, k_self = np.ascontiguousarray(k[:n, n]), float(k[n, n])

    def extend() -> int:
        return _compiled.cholesky_append_row(buf, n, k_vec, k_self, PIVOT_REL_TOL)

    if extend() != 0:
        raise RuntimeError("the benchmark matrix is not positive definite")
    t_ext = timed(extend, min_time)
    t_ref = timed(lambda: cholesky(k, lower=True, check_finite=False), min_time)
    err = float(np.abs(buf - np.linalg.cholesky(k)).max())
    return {"n": n, "extension_ms": t_ext * 1e3, "scipy_refactor_ms": t_ref * 1e3, "ratio": t_ref / t_ext, "max_abs_diff": err}


def bench_first_step() -> dict:
    """Import + first acquisition step in fresh processes: cold (empty cache dir), then warm."""
    script = FIRST_STEP_SCRIPT.format(root=str(ROOT))
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="dnc-numba-cache-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
            wall = time.perf_counter() - t0
            out[label] = {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_wall_s": wall}
    return out


def first_call_ms() -> dict:
    """In-process first-call time per family (compile, or load from the on-disk cache)."""
    out = {}
    for family in ("cnn", "mlp", "training"):
        space = make_space(family)
        gp = GaussianProcess(space)
        t0 = time.perf_counter()
        gp.observe(space.sample(3), [0.0, 1.0, 2.0])
        gp.expected_improvement(space.sample(5, method="random"))
        out[family] = (time.perf_counter() - t0) * 1e3
    return out


def run(quick: bool, ask_only: bool = False) -> dict:
    import numba

    cfg = QUICK if quick else FULL
    result: dict[str, Any] = {
        "meta": {
            "quick": quick,
            "ask_only": ask_only,
            "load_before": os.getloadavg(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "numba": numba.__version__,
            "cpu_count": os.cpu_count(),
            "numba_threads": numba.get_num_threads(),
            "machine": platform.machine(),
            "note": "vs_* = baseline time / numba time (times faster); medians; machine may be shared",
        },
        "first_call_ms": first_call_ms(),
    }
    rows = [] if ask_only else [bench_acquisition(f, n, m, cfg) for f in ("cnn", "mlp", "training") for n in cfg["n"]
                                for m in cfg["m"]]
    result["acquisition"] = rows
    result["cholesky"] = None if ask_only else bench_cholesky(1000, cfg["min_time"])
    result["import_first_step"] = None if quick or ask_only else bench_first_step()
    result["ask_per_pick"] = bench_picks(explore=1000, steps=4 if quick else 12)
    result["ask_per_pick_default"] = bench_default_picks(explore=1000, steps=4 if quick else 12, model="scalar")
    result["ask_per_pick_composite"] = bench_default_picks(explore=1000, steps=4 if quick else 12, model="composite")
    result["ask_per_pick_cost_models"] = bench_cost_model_picks(explore=1000, steps=4 if quick else 12)
    result["meta"]["load_after"] = os.getloadavg()
    result["targets"] = check_targets(result)
    return result


def check_targets(result: dict) -> dict:
    def row(n: int, m: int) -> dict | None:
        return next((r for r in result["acquisition"] if r["family"] == "cnn" and r["n"] == n and r["m"] == m), None)

    out: dict[str, Any] = {}
    small, large = row(30, 1000), row(100, 10000)
    if small:
        out["cnn_step_ms_n30_m1000"] = {"value": small["numba_ms"], "target": "< 5", "ok": small["numba_ms"] < 5}
        out["cnn_vs_python_n30_m1000"] = {"value": small["vs_python"], "target": ">= 300", "ok": small["vs_python"] >= 300}
    if large:
        out["cnn_vs_numpy_n100_m10000"] = {"value": large["vs_numpy"], "target": ">= 5", "ok": large["vs_numpy"] >= 5}
    if result["cholesky"]:
        ratio = result["cholesky"]["ratio"]
        out["cholesky_extension_vs_refactor_n1000"] = {"value": ratio, "target": ">= 10", "ok": ratio >= 10}
    if result["import_first_step"]:
        warm = result["import_first_step"]["warm"]["total_s"]
        out["warm_import_first_step_s"] = {"value": warm, "target": "< 2", "ok": warm < 2}
    for row in (result["ask_per_pick"] + result["ask_per_pick_default"] + result.get("ask_per_pick_composite", [])
                + result.get("ask_per_pick_cost_models", [])):
        name = "ask_ms_per_pick_" + "_".join(row["stage"].replace("(", "").replace(")", "").split())
        out[name] = {"value": row["ask_ms"], "target": "<= 10", "ok": row["ask_ms"] <= 10}
    return out


def print_table(result: dict) -> None:
    meta = result["meta"]
    print(f"GP acquisition step (cross-cov + posterior + EI); {meta['cpu_count']} CPUs, {meta['numba_threads']} numba threads")
    print("first call (compile or cache load), ms: " + ", ".join(f"{k} {v:.0f}" for k, v in result["first_call_ms"].items()))
    print("load average (1, 5, 15 min) before: " + ", ".join(f"{x:.2f}" for x in meta["load_before"])
          + "; after: " + ", ".join(f"{x:.2f}" for x in meta["load_after"]))
    header = f"{'space':<9}{'n':>5}{'m':>7}{'numba ms':>11}{'numpy ms':>11}{'python ms':>12}{'vs numpy':>10}{'vs python':>11}"
    print(header)
    print("-" * len(header))
    for r in result["acquisition"]:
        mark = "*" if r["python_extrapolated"] else " "
        print(
            f"{r['family']:<9}{r['n']:>5}{r['m']:>7}{r['numba_ms']:>11.3f}{r['numpy_ms']:>11.2f}"
            f"{r['python_ms']:>11.0f}{mark}{r['vs_numpy']:>9.1f}x{r['vs_python']:>10.0f}x"
        )
    print("* python time measured on a slice of the candidates and scaled linearly in m")
    c = result["cholesky"]
    if c:
        print(
            f"\nCholesky, n={c['n']}: one-row extension {c['extension_ms']:.3f} ms, scipy refactorisation "
            f"{c['scipy_refactor_ms']:.2f} ms -> {c['ratio']:.0f}x"
        )
    if result["import_first_step"]:
        for label, t in result["import_first_step"].items():
            print(
                f"import + first step, {label} cache: {t['total_s']:.2f} s (import {t['import_s']:.2f} s, "
                f"first step {t['first_step_s']:.2f} s; process wall {t['process_wall_s']:.2f} s)"
            )
    print("\nStagedSearch.ask per BO pick (the search's own path) vs the 0.1.0 path on the same states, medians:")
    for r in result["ask_per_pick"]:
        print(f"  {r['stage']:<22} explore {r['explore']}: 0.1.0 {r['old_ms']:7.1f} ms, ask {r['ask_ms']:6.1f} ms -> "
              f"{r['speedup']:.1f}x ({r['picks']} picks, {r['different_picks']} different)")
    print("  default strategy (joint) with the scalar and the composite (default) model, no 0.1.0 counterpart:")
    for r in result["ask_per_pick_default"] + result.get("ask_per_pick_composite", []):
        print(f"  {r['stage']:<43} explore {r['explore']}: ask {r['ask_ms']:6.1f} ms ({r['picks']} picks)")
    print("  composite model with a data shape (the cost model named), per strategy, penalty and stage:")
    for r in result.get("ask_per_pick_cost_models", []):
        print(f"  {r['stage']:<43} explore {r['explore']}: ask {r['ask_ms']:6.1f} ms, max {r['max_ms']:6.1f} ms "
              f"({r['picks']} picks, {r['cost_model']})")
    print("\ntargets:")
    for name, t in result["targets"].items():
        print(f"  {name:<40} {t['value']:>10.3f}  target {t['target']:<6} {'ok' if t['ok'] else 'MISSED'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="small sizes, short timings, no import timing")
    parser.add_argument("--ask-only", action="store_true", help="only StagedSearch.ask per pick (the last sections)")
    args = parser.parse_args(argv)
    result = run(args.quick, args.ask_only)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
