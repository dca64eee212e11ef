"""How steady is ``t_tr``? Step mode against the epoch loop (SPEC §1), quiet and beside a CPU burner.

For five digits configurations (MLP and CNN, small to large) each condition trains every
configuration ``--repeats`` times through ``CandidateEvaluator`` (interleaved, ``--epochs`` epochs
each) and records both measurements of every run: ``t_tr_step`` (the training step timed in a
tight loop, :mod:`lightning_dnc.measure.steps`) and ``t_tr_epoch`` (the Lightning loop's mean
epoch over epochs 2..N). "busy" runs the same beside one process that burns a CPU core.

Printed per configuration: the coefficient of variation (std / mean over the repeats) of each
mode quiet and busy, the busy / quiet ratio of the medians, step-mode ``t_tr`` over a plain
PyTorch loop's epoch time (same network, batch size and thread count), and the shares of the
candidate's training time taken by the step timing and by the other costs (FLOPs, memory, latency). Then the Spearman rank correlation of the two
modes' medians over the configurations (quiet), and the coefficients of variation the step mode
would have with the median instead of the minimum of its repeats.

``--decisions N`` also runs ``python -m lightning_dnc.cli search --family mlp`` N times per mode
with the same seed and counts the runs whose ``trials.jsonl`` configurations equal the first's.

Targets (issue 18): step mode CV <= 3 % quiet and <= 8 % busy, busy / quiet <= 1.3, step t_tr
within 10 % of the plain loop, rank correlation >= 0.95, measurement <= 5 % of training time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_bench import plain_loop  # noqa: E402

from lightning_dnc.data import DigitsDataModule  # noqa: E402
from lightning_dnc.lightning.candidate.child_trainer import cheap_cuda_checks  # noqa: E402
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator  # noqa: E402
from lightning_dnc.lightning.candidate.timing import mean_training_epoch_time  # noqa: E402
from lightning_dnc.measure.steps import COST_THREADS  # noqa: E402

CONFIGS = [
    ("mlp [32]", True, {"family": "mlp", "hidden_mlp": [32]}),
    ("mlp [400,400]", True, {"family": "mlp", "hidden_mlp": [400, 400]}),
    ("cnn [8,16]", False, {"family": "cnn", "out_channels": [8, 16]}),
    ("cnn [16,32,32,64]", False, {"family": "cnn", "out_channels": [16, 32, 32, 64]}),
    ("cnn [32,64,128,128]", False, {"family": "cnn", "out_channels": [32, 64, 128, 128]}),
]
BATCH_SIZE = 64


def cv(values: list[float]) -> float:
    """Coefficient of variation: sample standard deviation over mean."""
    return statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0


class Burner:
    """A child process that spins on one core while the ``with`` block runs."""

    def __enter__(self) -> Burner:
        self.process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.kill()
        self.process.wait()


def run_condition(epochs: int, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Every configuration ``repeats`` times, interleaved: both t_tr, step estimates, probe share."""
    modules = {flat: DigitsDataModule(flatten=flat) for flat in (True, False)}
    out: dict[str, dict[str, list[float]]] = {
        name: {"step": [], "epoch": [], "estimates": [], "share": [], "other_share": []} for name, _, _ in CONFIGS}
    for _ in range(repeats):
        for name, flat, config in CONFIGS:
            evaluator = CandidateEvaluator(modules[flat], epochs=epochs, accelerator="cpu")
            ev = evaluator.evaluate({**config, "batch_size": BATCH_SIZE})
            if not ev.ok:
                raise RuntimeError(f"{name}: {ev.error}")
            costs = ev.extra["costs"]
            out[name]["step"].append(ev.t_tr_step)
            out[name]["epoch"].append(ev.t_tr_epoch)
            out[name]["estimates"].append(costs["t_tr_step_estimates"])
            training = sum(ev.extra["epoch_times"])
            out[name]["share"].append(costs["seconds"]["steps"] / training)
            out[name]["other_share"].append((costs["seconds"]["counts"] + costs["seconds"]["latency"]) / training)
    return out


def plain_epoch_time(epochs: int, repeats: int) -> dict[str, float]:
    """Median over repeats of a plain PyTorch loop's mean epoch (2..N), at the probe's thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(COST_THREADS)
    try:
        out = {}
        for name, flat, config in CONFIGS:
            dm = DigitsDataModule(flatten=flat)
            dm.setup()
            with cheap_cuda_checks():
                runs = [mean_training_epoch_time(plain_loop({**config, "batch_size": BATCH_SIZE}, dm, epochs,
                                                            torch.device("cpu"))) for _ in range(repeats)]
            out[name] = statistics.median(runs)
        return out
    finally:
        torch.set_num_threads(before)


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def decisions(runs: int, mode: str, workdir: Path) -> dict[str, Any]:
    """``runs`` seeded ``cli search --family mlp`` runs; how many proposed the first run's configurations."""
    configs = []
    for i in range(runs):
        out = workdir / f"{mode}_{i}"
        cmd = [sys.executable, "-m", "lightning_dnc.cli", "search", "--family", "mlp", "--seed", "0",
               "--t_tr_mode", mode, "--out", str(out), "--quiet", "true"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(done.stdout + done.stderr)
        events = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
        configs.append([e["config"] for e in events if e["event"] == "proposed"])
    same = sum(1 for c in configs[1:] if c == configs[0])
    return {"mode": mode, "runs": runs, "same_as_first": same, "trials": [len(c) for c in configs]}


def report_decisions(result: dict[str, Any], runs: int) -> None:
    """Run and print the seeded ``cli search`` comparisons of both modes into ``result["decisions"]``."""
    with tempfile.TemporaryDirectory() as tmp:
        result["decisions"] = [decisions(runs, mode, Path(tmp)) for mode in ("step", "epoch")]
    for d in result["decisions"]:
        print(f"cli search --family mlp, {d['mode']} mode: {d['same_as_first']} of {d['runs'] - 1} repeat runs "
              "made the first run's decisions")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per evaluation (default 5)")
    parser.add_argument("--repeats", type=int, default=6, help="evaluations per configuration and condition")
    parser.add_argument("--decisions", type=int, default=0, help="seeded cli search runs per t_tr mode (0: skip)")
    parser.add_argument("--skip-timing", action="store_true", help="only the --decisions runs")
    parser.add_argument("--no-busy", action="store_true", help="skip the condition beside a CPU burner")
    parser.add_argument("--json", type=str, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.skip_timing:
        result: dict[str, Any] = {"load_average_before": os.getloadavg()}
        report_decisions(result, args.decisions)
        result["load_average_after"] = os.getloadavg()
        print(f"load average before {result['load_average_before'][0]:.2f}, after {result['load_average_after'][0]:.2f}")
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
        return result
    load = os.getloadavg()
    quiet = run_condition(args.epochs, args.repeats)
    if args.no_busy:
        busy = quiet
    else:
        with Burner():
            busy = run_condition(args.epochs, args.repeats)
    plain = plain_epoch_time(args.epochs, 3)
    rows = []
    for name, _, _ in CONFIGS:
        q, b = quiet[name], busy[name]
        rows.append({
            "config": name,
            "cv_step_quiet": cv(q["step"]), "cv_step_busy": cv(b["step"]),
            "cv_epoch_quiet": cv(q["epoch"]), "cv_epoch_busy": cv(b["epoch"]),
            "ratio_step": statistics.median(b["step"]) / statistics.median(q["step"]),
            "ratio_epoch": statistics.median(b["epoch"]) / statistics.median(q["epoch"]),
            "step_quiet_s": statistics.median(q["step"]), "epoch_quiet_s": statistics.median(q["epoch"]),
            "plain_s": plain[name], "step_over_plain": statistics.median(q["step"]) / plain[name],
            "probe_share": statistics.median(q["share"] + b["share"]),
            "other_costs_share": statistics.median(q["other_share"] + b["other_share"]),
            "cv_step_median_quiet": cv([statistics.median(e) for e in q["estimates"]]),
            "cv_step_median_busy": cv([statistics.median(e) for e in b["estimates"]]),
        })
    result = {
        "epochs": args.epochs, "repeats": args.repeats, "batch_size": BATCH_SIZE, "threads": torch.get_num_threads(),
        "cost_threads": COST_THREADS, "load_average_before": load, "load_average_after": os.getloadavg(),
        "rows": rows,
        "spearman_quiet": spearman([r["step_quiet_s"] for r in rows], [r["epoch_quiet_s"] for r in rows]),
    }
    print(f"digits, CPU, {result['threads']} training threads, costs timed on {COST_THREADS}; {args.epochs} epochs "
          f"per run, {args.repeats} runs per condition; load average before {load[0]:.2f}")
    header = (f"{'configuration':<21}{'CV step q/b':>14}{'CV epoch q/b':>15}{'busy/quiet step':>17}"
              f"{'busy/quiet epoch':>18}{'step/plain':>12}{'t_tr share':>12}{'other share':>13}")
    print(header)
    for r in rows:
        print(f"{r['config']:<21}{r['cv_step_quiet']:>7.1%}/{r['cv_step_busy']:<6.1%}"
              f"{r['cv_epoch_quiet']:>8.1%}/{r['cv_epoch_busy']:<6.1%}{r['ratio_step']:>17.2f}"
              f"{r['ratio_epoch']:>18.2f}{r['step_over_plain']:>12.2f}{r['probe_share']:>12.1%}"
              f"{r['other_costs_share']:>13.1%}")
    print(f"Spearman rank correlation of step vs epoch t_tr (quiet): {result['spearman_quiet']:.3f}")
    print("step-mode CV with the median of repeats instead of the minimum (quiet/busy): "
          + ", ".join(f"{r['config']} {r['cv_step_median_quiet']:.1%}/{r['cv_step_median_busy']:.1%}" for r in rows))
    if args.decisions:
        report_decisions(result, args.decisions)
    print(f"load average after {result['load_average_after'][0]:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
