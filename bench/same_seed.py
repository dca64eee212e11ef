"""Same seed, same decisions? Two identical ``cli fit`` runs, compared trial by trial.

With ``penalize="t_tr"`` the objective reads a measured time, and a time measured on a shared CPU
moves 10-20% between runs (now and then 2x). With the same seed, every accuracy is the same, so
two runs of ``python -m lightning_dnc.cli fit --family mlp --seed S`` propose the same
configurations unless a noisy time changed a decision. Target (issue 22): the same journal
configurations in >= 2 of 3 repeats.

Each repeat runs the command twice, back to back, in fresh processes (``--threads 1`` by default,
so thread counts do not change floating-point sums; ``--threads auto`` is the user's default and
can differ between runs by design), and reports whether the journals' proposed configurations
are identical, the first trial where they differ, and the measured times of the trials before it.
``--models composite scalar`` runs each model (the scalar model decides on raw measurements).

Run ``python bench/same_seed.py`` (about 1-2 minutes per model on a 2-core CPU; ``--json PATH``
writes the rows). The load average is printed with each repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TARGET = 2  # identical repeats of 3


def proposed(run_dir: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(trial_id, config)`` of every ``proposed`` event of a run's journal, in order."""
    out = []
    for line in (run_dir / "trials.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "proposed":
            out.append((event["trial_id"], event["config"]))
    return out


def measured(run_dir: Path) -> dict[int, float]:
    """The ``t_tr`` each finished trial recorded."""
    out = {}
    for line in (run_dir / "trials.jsonl").read_text().splitlines():
        event = json.loads(line)
        if "evaluation" in event and event["evaluation"].get("t_tr") is not None:
            out[event["trial_id"]] = event["evaluation"]["t_tr"]
    return out


def run_fit(folder: Path, args: argparse.Namespace, model: str) -> Path:
    """One ``cli fit`` into ``folder / run``; raises with the output's tail if it fails."""
    out = folder / "run"
    cmd = [sys.executable, "-m", "lightning_dnc.cli", "fit", "--family", args.family, "--penalize", "t_tr",
           "--seed", str(args.seed), "--model", model, "--threads", args.threads, "--quiet", "true", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-2000:]}")
    return out


def compare(a: Path, b: Path) -> dict[str, Any]:
    """Whether two runs proposed the same configurations, and where they first differ."""
    pa, pb = proposed(a), proposed(b)
    first = next((i for i, (x, y) in enumerate(zip(pa, pb)) if x != y), None)
    if first is None and len(pa) != len(pb):
        first = min(len(pa), len(pb))
    ta, tb = measured(a), measured(b)
    before = [k for k in sorted(ta) if k in tb and (first is None or k < first)]
    ratios = [ta[k] / tb[k] for k in before]
    return {"identical": first is None, "first_difference": first, "trials": [len(pa), len(pb)],
            "t_tr_ratio_max": max((max(r, 1 / r) for r in ratios), default=None)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--family", default="mlp", choices=("mlp", "cnn"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", default="1", help="--threads of each run (default 1; 'auto' is the CLI's)")
    parser.add_argument("--models", nargs="+", default=["composite"], choices=("composite", "scalar"))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    rows = []
    for model in args.models:
        identical = 0
        for repeat in range(args.repeats):
            with tempfile.TemporaryDirectory() as first, tempfile.TemporaryDirectory() as second:
                a = run_fit(Path(first), args, model)
                b = run_fit(Path(second), args, model)
                row = {"model": model, "repeat": repeat, **compare(a, b), "load": round(os.getloadavg()[0], 2)}
            identical += row["identical"]
            rows.append(row)
            print(f"{model:9s} repeat {repeat}: {'identical' if row['identical'] else 'differ at trial ' + str(row['first_difference'])}"
                  f" (trials {row['trials']}, largest t_tr ratio before it {row['t_tr_ratio_max'] or 0:.2f}x, "
                  f"load {row['load']})", flush=True)
        verdict = "MET" if identical >= TARGET * args.repeats / 3 else "MISSED"
        print(f"{model}: identical journals in {identical} of {args.repeats} repeats (target >= {TARGET} of 3): {verdict}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
                                         "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
