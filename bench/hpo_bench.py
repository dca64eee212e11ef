"""Search quality and search cost in minutes: LCBench surrogate or real training, lightning-dnc vs peers.

Suites
------
``lcbench`` (default): the LCBench surrogate of YAHPO Gym 1.0.2 (34 OpenML tasks, MLPs, fidelity
``epoch`` 1-52), offline from ``../shared/benchmarks`` (``--data-path``, or the environment variable
``LIGHTNING_DNC_BENCH_DATA``). Every method searches the same reduced space (``hpo.space``), is
scored by SPEC §1's objective with the surrogate's validation accuracy and time per epoch
(``t_tr_ref``: the task's centre configuration), and gets the same budget, ``--budget``
full-training equivalents (x 52 epochs; the last candidate may finish). Simulated time = the
surrogate's training seconds of every epoch a method trains + the wall time of the method's own
ask/tell calls (``hpo.trace``). Regret is normalised against a 5,000-configuration random sample
of each task, cached under ``--cache`` (``hpo.metrics``).

``real``: today's real-training comparison on the embedded digits data (``digits-cnn``,
``digits-mlp``), through ``bench/_methods.py`` (``hpo.real``).

Tasks: ``--tasks tune`` / ``test`` / ``all`` (the fixed split of ``hpo.split``: choose defaults
on ``tune``, report ``test``), a count N (the first N tasks) or task names.

Methods: see ``hpo.methods`` (lightning-dnc's strategies, Optuna random / TPE / multivariate TPE /
TPE + Hyperband / ASHA, the one-epoch-then-top-k baseline, DEHB, SMAC3 and SMAC3-Hyperband,
lightning-dnc's ``fidelity="asha"``). Only results at 52 epochs count toward a method's best.
Both suites print the same table: per wc and method, the median [25th, 75th percentile] regret
over tasks x seeds, regret at 10/30/100 full trainings, simulated and decision time, evaluations,
hypervolume ratio, and the per-task win/tie/loss of the row's reference (``dnc``; ``dnc-paper`` for
the ``dnc-asha`` rows) and the Wilcoxon signed-rank p-value over tasks.

``--summary PATH`` writes the small JSON that README's tables are printed from
(``python bench/tables.py PATH...``); ``--json`` writes every run as well (large, not committed).

Run ``python bench/hpo_bench.py --suite lcbench`` (``--quick``: 3 tune tasks x 2 seeds, budget 10).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hpo.lcbench as lc  # noqa: E402
import hpo.methods as hm  # noqa: E402
import hpo.space as hs  # noqa: E402
from hpo import split as hpo_split  # noqa: E402
from hpo.metrics import hypervolume, reference_stats, summarise, summarise_run  # noqa: E402
from hpo.report import format_tables, plot  # noqa: E402
from hpo.trace import Trace, objective  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
QUICK = {"tasks": 3, "seeds": 2, "budget": 10.0, "reference_size": 1000}
DEFAULTS = {"seeds": 10, "budget": 30.0, "reference_size": 5000}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--suite", default="lcbench", choices=("lcbench", "real"))
    p.add_argument("--tasks", nargs="+", default=None,
                   help="tune, test or all (LCBench's fixed split, bench/hpo/split.py), a count N (the first N "
                        "tasks) or task names (LCBench OpenML ids; real: " + " ".join(_real_tasks()) + ")")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..S-1 (default 10; 2 with --quick)")
    p.add_argument("--methods", nargs="+", default=list(hm.METHODS), metavar="METHOD",
                   help=f"any of {' '.join(hm.METHODS)} (default: all)")
    p.add_argument("--wc", type=float, nargs="+", default=[0.0, 0.1], help="cost weights (default 0 0.1)")
    p.add_argument("--budget", type=float, default=None,
                   help="full-training equivalents per search (default 30; 10 with --quick)")
    p.add_argument("--reference-size", type=int, default=None,
                   help="configurations of the random reference sample per task (default 5000; 1000 with --quick)")
    p.add_argument("--data-path", default=None, help=f"folder holding lcbench/ (default ${lc.ENV_DATA} or "
                                                     "../shared/benchmarks)")
    p.add_argument("--cache", type=Path, default=RESULTS / "hpo_cache", help="reference-sample cache folder")
    p.add_argument("--workers", type=int, default=None,
                   help="processes for the lcbench suite, one task at a time each (default: 2 on a machine with "
                        ">= 2 cores, else 1; 1 with --quick)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process in the real suite (default 1)")
    p.add_argument("--quick", action="store_true", help="3 tasks x 2 seeds, budget 10, reference sample 1000")
    p.add_argument("--json", type=Path, default=None, help="write every run and the summary there")
    p.add_argument("--summary", type=Path, default=None,
                   help="write the summary (no per-run rows) there: what bench/tables.py prints README's tables from")
    p.add_argument("--plot", type=Path, default=None, help="write the regret-vs-simulated-time plot there")
    return p


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Validated settings from the options and the ``--quick`` preset."""
    preset = {**DEFAULTS, **(QUICK if args.quick else {})}
    settings: dict[str, Any] = {
        "suite": args.suite, "quick": bool(args.quick), "wcs": [float(w) for w in args.wc],
        "seeds": args.seeds if args.seeds is not None else preset["seeds"],
        "budget": float(args.budget if args.budget is not None else preset["budget"]),
        "reference_size": args.reference_size if args.reference_size is not None else preset["reference_size"],
        "workers": args.workers if args.workers is not None else (1 if args.quick else min(2, os.cpu_count() or 1)),
        "threads": args.threads,
    }
    unknown = [m for m in args.methods if m not in hm.METHODS + hm.EXTRA_METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {list(hm.METHODS + hm.EXTRA_METHODS)}.")
    settings["methods"] = list(dict.fromkeys(args.methods))
    for name in ("seeds", "reference_size", "workers"):
        if settings[name] < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {settings[name]!r}.")
    if settings["budget"] < 1:
        raise SystemExit(f"--budget must be >= 1 full-training equivalent, got {settings['budget']!r}.")
    if any(w < 0 for w in settings["wcs"]):
        raise SystemExit(f"--wc values must be >= 0, got {settings['wcs']!r}.")
    if args.suite == "lcbench":
        path = lc.data_path(args.data_path)
        why = lc.missing(path)
        if why is not None:
            raise SystemExit(f"Suite lcbench cannot run: {why}")
        settings["data_path"] = str(path)
        available = lc.task_ids(path)
        given = args.tasks or (["tune"] if args.quick else None)
        if given and len(given) == 1 and given[0] in ("tune", "test", "all"):
            settings["split"] = given[0]
            chosen = hpo_split.select(given[0], available)
            settings["tasks"] = chosen[:QUICK["tasks"]] if args.quick and not args.tasks else chosen
            return settings
        settings["split"] = None
    else:
        available = _real_tasks()
        settings["split"] = None
    settings["tasks"] = _tasks(args.tasks, available, QUICK["tasks"] if args.quick else len(available))
    return settings


def _real_tasks() -> list[str]:
    from hpo.real import TASKS

    return list(TASKS)


def _tasks(given: Sequence[str] | None, available: list[str], default: int) -> list[str]:
    if not given:
        return available[:default]
    if len(given) == 1 and given[0] in ("tune", "test", "all"):
        raise SystemExit(f"--tasks {given[0]}: the tune/test split is LCBench's; the real suite's tasks are "
                         f"{' '.join(available)}.")
    if len(given) == 1 and given[0].isdigit() and given[0] not in available:
        n = int(given[0])
        if not 1 <= n <= len(available):
            raise SystemExit(f"--tasks N must be in [1, {len(available)}], got {n}.")
        return available[:n]
    unknown = [t for t in given if t not in available]
    if unknown:
        raise SystemExit(f"--tasks: unknown {unknown}; available: {' '.join(available)}.")
    return list(dict.fromkeys(given))


_BENCH: dict[str, Any] = {}


def run_lcbench_task(job: tuple[str, dict[str, Any], str]) -> list[dict[str, Any]]:
    """Every seed x wc x method on one LCBench task (runs in a worker process)."""
    task_id, settings, cache = job
    path = Path(settings["data_path"])
    if str(path) not in _BENCH:
        _BENCH[str(path)] = lc.benchmark(path, task_id, Path(cache) / "yahpo_config.yaml")
    task = lc.Task(_BENCH[str(path)], task_id)
    sample = lc.reference_sample(task, settings["reference_size"], Path(cache))
    cost = sample["t_tr"] / task.t_tr_ref
    rows = []
    for wc in settings["wcs"]:
        ref = reference_stats(objective(1.0 - sample["best_acc"], cost, wc))
        ref_hv = hypervolume(np.stack([1.0 - sample["best_acc"], cost], axis=1))
        for seed in range(settings["seeds"]):
            for method in settings["methods"]:
                trace = Trace(task, wc, settings["budget"])
                started = time.perf_counter()
                info = hm.run_method(method, trace, seed)
                wall = time.perf_counter() - started
                metrics = summarise_run(trace.events, ref, task.full_time, settings["budget"], lc.MAX_EPOCHS, ref_hv)
                rows.append({
                    "suite": "lcbench", "task": task_id, "seed": seed, "method": method, "wc": float(wc),
                    "budget": settings["budget"], **metrics, "simulated_time": trace.simulated_s,
                    "simulated_time_full": trace.simulated_s / task.full_time, "decision_time": trace.decision_s,
                    "training_time": trace.train_s, "evaluations": len(trace.configs), "epochs": trace.epochs,
                    "settings": hm.settings_of(method, settings["budget"]), "info": info, "wall_s": wall,
                    "split": hpo_split.half_of(task_id),
                    "reference": ref, "t_tr_ref": task.t_tr_ref, "full_time": task.full_time,
                })
    return rows


def run(settings: dict[str, Any], cache: Path, log: Any) -> dict[str, Any]:
    """Every task; returns the JSON report."""
    started = time.perf_counter()
    skipped = {m: why for m in settings["methods"] if (why := hm.missing(m)) is not None}
    methods = [m for m in settings["methods"] if m not in skipped]
    if settings["suite"] == "real":
        from hpo import real as hpo_real

        skipped.update(hpo_real.skipped(methods))
        rows: list[dict[str, Any]] = []
        for task in settings["tasks"]:
            rows += hpo_real.run_task(task, range(settings["seeds"]), settings["wcs"], methods, settings["budget"],
                                       settings["threads"], log)
    else:
        jobs = [(t, {**settings, "methods": methods}, str(cache)) for t in settings["tasks"]]
        rows = []
        if settings["workers"] > 1:
            with multiprocessing.get_context("spawn").Pool(settings["workers"]) as pool:
                for done in pool.imap_unordered(run_lcbench_task, jobs):
                    rows += done
                    log(f"task {done[0]['task']} done ({len(rows)} runs, {time.perf_counter() - started:.0f} s)")
        else:
            for job in jobs:
                rows += run_lcbench_task(job)
                log(f"task {job[0]} done ({len(rows)} runs, {time.perf_counter() - started:.0f} s)")
    order = {t: i for i, t in enumerate(settings["tasks"])}
    rows.sort(key=lambda r: (order[r["task"]], r["seed"], r["wc"], settings["methods"].index(r["method"])))
    ours = next((m for m in ("dnc", "dnc-paper") if m in methods), methods[0] if methods else "dnc")
    import torch

    return {
        "settings": {**settings, "space": hs.describe() if settings["suite"] == "lcbench" else None,
                     "dnc_settings": hm.DNC_SETTINGS, "explore": hm.EXPLORE},
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "torch": torch.__version__, "packages": _package_versions()},
        "runs": rows,
        "summary": summarise(rows, ours=ours, twins=hm.TWIN),
        "skipped": skipped,
        "elapsed_s": time.perf_counter() - started,
    }


def _package_versions() -> dict[str, str | None]:
    """Versions of the peers' packages: a peer's numbers move with its release (Optuna's TPE did)."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for name in ("lightning-dnc", "optuna", "smac", "dehb", "yahpo-gym", "ConfigSpace", "numpy", "scipy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    settings = resolve(args)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    result = run(settings, args.cache, log)
    tables = format_tables(result["summary"], result["skipped"])
    out_plot = args.plot or RESULTS / f"hpo_bench_{settings['suite']}.png"
    title = (f"{settings['suite']}: {len(settings['tasks'])} tasks x {settings['seeds']} seeds, budget "
             f"{settings['budget']:g} full trainings (median, 25-75th pct shaded)")
    result["plot"] = str(plot(result["summary"], out_plot, title))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        command = "python bench/hpo_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
        args.json.write_text(json.dumps({"command": command, **result}, indent=1, default=str))
    if args.summary is not None:
        args.summary.parent.mkdir(parents=True, exist_ok=True)
        args.summary.write_text(json.dumps(summary_document(result, argv), indent=1, default=str) + "\n")
    print(f"suite {settings['suite']}: {len(settings['tasks'])} tasks x {settings['seeds']} seeds, budget "
          f"{settings['budget']:g} full-training equivalents; median [25th, 75th pct] over tasks x seeds; "
          f"win/tie/loss per task for {result['summary']['ours']}")
    print(tables)
    print(f"\nplot: {result['plot']}   total {result['elapsed_s']:.0f} s")
    return result


def summary_document(result: dict[str, Any], argv: list[str] | None) -> dict[str, Any]:
    """The committed part of a result: settings, machine, summary, skipped methods, timing and the
    command that made it (no per-run rows, no curves' raw data)."""
    settings = {k: v for k, v in result["settings"].items() if k not in ("data_path",)}
    runs = result["runs"]
    per_method_wall: dict[str, float] = {}
    for r in runs:
        per_method_wall[r["method"]] = per_method_wall.get(r["method"], 0.0) + float(r.get("wall_s") or 0.0)
    return {
        "command": "python bench/hpo_bench.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "settings": settings, "machine": result["machine"], "elapsed_s": result["elapsed_s"],
        "method_wall_s": per_method_wall, "runs": len(runs), "skipped": result["skipped"],
        "summary": result["summary"],
    }


if __name__ == "__main__":
    main()
