"""Search quality and search cost: lightning-dnc's staged search vs random search and Optuna.

Every method searches the same joint space (the stage-1 architecture space, the stage-2 grid
choices and the training space), trains every candidate with the same evaluator (same data,
epochs, seed and protocol), is scored by the same objective ``log10(f_p + wc * t_tr / t_tr_ref)``,
and gets the same number of trainings: the number lightning-dnc's search used at that seed and wc.

Reference of the cost term
--------------------------
``t_tr_ref`` is measured once per invocation on the centre of the stage-1 space with the default
training hyperparameters -- the candidate lightning-dnc trains first -- (median of
``--ref-repeats`` evaluations) and fixed for every method and seed. "The first candidate of each
run" would give each run another yardstick (a random search's first candidate is a random
network with a random batch size), so objectives would not be comparable across methods.

Random search is run once per seed with the largest budget any wc needs and scored for every
wc on its first N trainings: its proposals do not depend on the objective, so this equals a
separate run per wc.

Run ``python bench/search_bench.py`` (``--quick`` for a smoke run, ``--json`` for machines).
Timings (t_tr and wall times) on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import inspect
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _joint import centre_config  # noqa: E402
from _methods import MethodRun, optuna_missing, run_optuna, run_random, run_staged  # noqa: E402
from _overhead import TimedEvaluator  # noqa: E402
from _report import OURS, format_overhead, format_tables, plot, summarise  # noqa: E402

from lightning_dnc.budgets import BUDGETS  # noqa: E402
from lightning_dnc.search import Objective  # noqa: E402
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace  # noqa: E402

DEFAULT_OUT = Path(__file__).resolve().parent / "results"
DEFAULT_WCS = (0.0, 0.1, 10.0)
QUICK = {"seeds": 2, "search_epochs": 1, "prior_points": 2, "steps": 1, "explore": 50, "stage2_order": "ac",
         "num_conv_layers": (4, 5), "channels_first": (4, 8), "channels_upper": 16, "hidden_nodes": (8, 32),
         "ref_repeats": 1}
OVERHEAD_TARGET = 0.05


def build_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    quick = BUDGETS["quick"]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits", help="digits (default), a torchvision set name, or a .npz path")
    p.add_argument("--root", default="data", help="folder of downloaded datasets")
    p.add_argument("--family", default="cnn", choices=("cnn", "mlp"))
    p.add_argument("--seeds", type=int, default=None, help="number of seeds 0..S-1 (default 5; 2 with --quick)")
    p.add_argument("--wc", type=float, nargs="+", default=list(DEFAULT_WCS), help="cost weights (default 0 0.1 10)")
    p.add_argument("--prior-points", type=int, default=None, help=f"default {quick.prior_points} (quick budget)")
    p.add_argument("--steps", type=int, default=None, help=f"default {quick.steps}")
    p.add_argument("--explore", type=int, default=None, help=f"default {quick.explore}")
    p.add_argument("--search-epochs", type=int, default=None, help=f"default {quick.search_epochs}")
    p.add_argument("--stage2-order", default=None, help="comma-separated groups (default: the family's SPEC order)")
    p.add_argument("--num-conv-layers", type=int, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--channels-first", type=int, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--channels-upper", type=int, default=None)
    p.add_argument("--hidden-layers", type=int, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--hidden-nodes", type=int, nargs=2, default=None, metavar=("LO", "HI"))
    p.add_argument("--ref-repeats", type=int, default=None, help="evaluations measuring t_tr_ref (default 3)")
    p.add_argument("--with-optuna-gp", action="store_true", help="also run Optuna's GP sampler")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 avoids oversubscription on a shared machine)")
    p.add_argument("--accelerator", default="cpu", help="'cpu' (default), 'gpu' or 'auto'")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for search_bench.png/.json/.md")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny space and budget, 1 epoch, 2 seeds")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    return p


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Settings from the options, the ``--quick`` preset and the ``quick`` budget, validated."""
    preset = QUICK if args.quick else {}
    budget = BUDGETS["quick"]

    def pick(name: str, default: Any) -> Any:
        value = getattr(args, name)
        return value if value is not None else preset.get(name, default)

    settings = {
        "data": args.data, "family": args.family, "seeds": pick("seeds", 5), "wcs": [float(w) for w in args.wc],
        "prior_points": pick("prior_points", budget.prior_points), "steps": pick("steps", budget.steps),
        "explore": pick("explore", budget.explore), "search_epochs": pick("search_epochs", budget.search_epochs),
        "ref_repeats": pick("ref_repeats", 3), "accelerator": args.accelerator, "quick": args.quick,
        "with_optuna_gp": args.with_optuna_gp, "threads": args.threads,
    }
    order = pick("stage2_order", None)
    settings["stage2_order"] = None if order is None else [g for g in order.split(",") if g]
    for name in ("seeds", "search_epochs", "ref_repeats", "explore"):
        if settings[name] < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be >= 1, got {settings[name]!r}.")
    if any(w < 0 for w in settings["wcs"]):
        raise SystemExit(f"--wc values must be >= 0, got {settings['wcs']!r}.")
    if args.family == "cnn":
        limits = {k: pick(k, None) for k in ("num_conv_layers", "channels_first", "channels_upper")}
    else:
        limits = {"num_hidden_layers": args.hidden_layers, "hidden_nodes": pick("hidden_nodes", None)}
    # Unset limits default to the quick budget's space, as on the command line.
    defaults = budget.cnn_limits if args.family == "cnn" else budget.mlp_limits
    limits = {k: (v if v is not None else defaults.get(k)) for k, v in limits.items()}
    settings["space_limits"] = {k: (list(v) if isinstance(v, (tuple, list)) else v) for k, v in limits.items()
                                if v is not None}
    return settings


def load_data(name: str, family: str, root: str) -> Any:
    """The datamodule for ``--data``, prepared and set up for fitting."""
    from lightning_dnc.data import make_datamodule
    from lightning_dnc.data.factory import DATAMODULES

    target = DATAMODULES.get(name.lower().replace("-", "_"))
    if name.lower().endswith(".npz"):
        from lightning_dnc.data import NpzDataModule as target
    offered = {"root": root, "flatten": family == "mlp"}
    accepted = inspect.signature(target.__init__).parameters if target is not None else {}
    dm = make_datamodule(name, **{k: v for k, v in offered.items() if k in accepted})
    dm.prepare_data()
    dm.setup("fit")
    return dm


def measure_reference(dm: Any, space: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """``t_tr_ref``: median t_tr of the space's centre config with default training (seed 0)."""
    evaluator = TimedEvaluator(dm, epochs=settings["search_epochs"], accelerator=settings["accelerator"], seed=0)
    config = centre_config(space, settings["search_epochs"])
    values = []
    for _ in range(settings["ref_repeats"]):
        evaluation = evaluator.evaluate(config)
        if not evaluation.ok or not evaluation.t_tr:
            raise SystemExit(f"The reference candidate (centre of the space) failed to train: {evaluation.error}")
        values.append(evaluation.t_tr)
    return {"t_tr_ref": statistics.median(values), "measurements": values, "config": config,
            "n_params": evaluation.n_params}


def run(settings: dict[str, Any], dm: Any, log: Any) -> dict[str, Any]:
    """Every method at every seed and wc; returns the JSON report."""
    family = settings["family"]
    limits = dict(settings["space_limits"])
    if family == "cnn":
        space = CNNSpace(**limits, input_size=int(dm.input_shape[-1]))
    else:
        space = MLPSpace(**limits)
    training_space = TrainingSpace()
    started = time.perf_counter()
    reference = measure_reference(dm, space, settings)
    log(f"t_tr_ref = {reference['t_tr_ref'] * 1000:.1f} ms/epoch (centre config, {reference['n_params']} params)")
    objectives = {wc: Objective(wc=wc, t_tr_ref=reference["t_tr_ref"]) for wc in settings["wcs"]}
    skipped: dict[str, str] = {}
    missing = optuna_missing()
    samplers = ["tpe", *(["gp"] if settings["with_optuna_gp"] else [])]
    if missing is not None:
        skipped.update({f"optuna-{s}": missing for s in samplers})
        samplers = []
        log(f"Optuna skipped: {missing}")
    runs: list[dict[str, Any]] = []

    def record(method_run: MethodRun, wc: float) -> None:
        row = {**method_run.summary(objectives[wc]), "wc": wc}
        runs.append(row)
        log(f"[seed {row['seed']}] {row['method']:<13} wc={wc:<4g} {row['trainings']:>3} trainings "
            f"best {row['best_objective']:.3f} acc {row['best_val_acc']:.3f} wall {row['wall_s']:.1f} s "
            f"framework overhead {100 * row['framework_frac']:.1f}%")

    for seed in range(settings["seeds"]):
        evaluator = TimedEvaluator(dm, epochs=settings["search_epochs"], accelerator=settings["accelerator"],
                                   seed=seed)
        budgets: dict[float, int] = {}
        for wc in settings["wcs"]:
            ours = run_staged(evaluator.evaluate, dm, family, space, training_space, objectives[wc], seed=seed,
                              prior_points=settings["prior_points"], steps=settings["steps"],
                              explore=settings["explore"], epochs=settings["search_epochs"],
                              stage2_order=settings["stage2_order"], accelerator=settings["accelerator"])
            budgets[wc] = len(ours.evaluations)
            record(ours, wc)
        random_run = run_random(evaluator.evaluate, space, training_space, n=max(budgets.values()), seed=seed,
                                epochs=settings["search_epochs"])
        for wc in settings["wcs"]:
            record(random_run.truncated(budgets[wc]), wc)
        for sampler in samplers:
            for wc in settings["wcs"]:
                record(run_optuna(evaluator.evaluate, space, training_space, objectives[wc], sampler=sampler,
                                  n=budgets[wc], seed=seed, epochs=settings["search_epochs"]), wc)
    return report(settings, space, reference, runs, skipped, time.perf_counter() - started)


def report(settings: dict[str, Any], space: Any, reference: dict[str, Any], runs: list[dict[str, Any]],
           skipped: dict[str, str], elapsed: float) -> dict[str, Any]:
    """The JSON report: settings, machine, reference, every run, the summaries and the overhead check."""
    import torch

    ours = [r for r in runs if r["method"] == OURS]
    wall = sum(r["wall_s"] for r in ours)
    framework = sum(r["framework_s"] for r in ours)
    non_training = sum(r["non_training_s"] for r in ours)
    return {
        "settings": {**settings, "space": space.to_dict()},
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "platform": platform.platform()},
        "reference": reference,
        "runs": runs,
        "summary": summarise(runs),
        "skipped": skipped,
        "overhead": {
            "target_frac": OVERHEAD_TARGET,
            "framework_frac": framework / wall if wall else None,
            "non_training_frac": non_training / wall if wall else None,
            "framework_frac_per_run": [r["framework_frac"] for r in ours],
            "met": bool(wall) and framework / wall <= OVERHEAD_TARGET,
        },
        "elapsed_s": elapsed,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    settings = resolve(args)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if settings["threads"] is not None:
        import torch

        if settings["threads"] < 1:
            raise SystemExit(f"--threads must be >= 1, got {settings['threads']!r}.")
        torch.set_num_threads(settings["threads"])
    dm = load_data(settings["data"], settings["family"], args.root)
    result = run(settings, dm, log)
    args.out.mkdir(parents=True, exist_ok=True)
    png = plot(result["runs"], args.out / "search_bench.png")
    result["plot"] = str(png)
    tables = format_tables(result["summary"], result["skipped"]) + "\n" + format_overhead(result["runs"])
    (args.out / "search_bench.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / "search_bench.md").write_text(tables + "\n")
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(f"data {settings['data']}, family {settings['family']}, {settings['seeds']} seeds, "
              f"t_tr_ref {result['reference']['t_tr_ref'] * 1000:.1f} ms/epoch; median [25th, 75th pct] over seeds")
        print(tables)
        o = result["overhead"]
        print(f"\nlightning-dnc framework overhead: {100 * o['framework_frac']:.2f}% of search wall time "
              f"(target <= {100 * OVERHEAD_TARGET:.0f}%); outside training epochs (validation included): "
              f"{100 * o['non_training_frac']:.2f}%")
        print(f"plot: {png}   total {result['elapsed_s']:.0f} s")
    return result


if __name__ == "__main__":
    main()
