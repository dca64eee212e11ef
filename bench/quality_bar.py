"""The issue-4 quality bar on the embedded digits data: accuracy at wc=0.1, cheapness at wc=10.

Runs three CNN searches with the paper's stage structure (every stage and grid group), the quick
budget's digits-sized space and 10 epochs per candidate, and 8 + 12 BO points per BO stage, then prints each search's best validation accuracy, N_p and t_tr,
the wall time of each search, and the N_p ratio of the wc=0 winner over the wc=10 winner.

    python bench/quality_bar.py [--json] [--penalize n_params|t_tr]
"""

from __future__ import annotations

import argparse
import json
import time

import lightning_dnc as dnc
from lightning_dnc.data import DigitsDataModule
from lightning_dnc.lightning.search_loop import run_search
from lightning_dnc.budgets import BUDGETS


def run(wc: float, penalize: str, seed: int, prior_points: int, steps: int, explore: int) -> dict:
    budget = BUDGETS["quick"]
    dm = DigitsDataModule(seed=seed)
    tuner = dnc.DeepNCheapTuner(
        wc=wc, penalize=penalize, search_epochs=budget.search_epochs, prior_points=prior_points,
        steps=steps, explore=explore, seed=seed, space=dnc.CNNSpace(**budget.cnn_limits),
        progress=False,
    )
    started = time.perf_counter()
    result = run_search(tuner.settings.for_family("cnn"), tuner.run_options, dm,
                        {"accelerator": "cpu", "devices": 1, "precision": None})
    seconds = time.perf_counter() - started
    ev = result.best.trial.evaluation
    return {"wc": wc, "penalize": penalize, "seconds": round(seconds, 1), "trials": len(result.trials),
            "best_val_acc": ev.best_val_acc, "n_params": ev.n_params, "t_tr": ev.t_tr,
            "out_channels": result.best_config["out_channels"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--penalize", default="n_params", choices=["n_params", "t_tr"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prior_points", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--explore", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [run(wc, args.penalize, args.seed, args.prior_points, args.steps, args.explore) for wc in (0.0, 0.1, 10.0)]
    ratio = rows[0]["n_params"] / rows[2]["n_params"]
    if args.json:
        print(json.dumps({"rows": rows, "n_params_ratio_wc0_over_wc10": ratio}, indent=2))
        return
    print(f"{'wc':>5} {'seconds':>8} {'trials':>6} {'val_acc':>8} {'N_p':>9} {'t_tr':>7}  out_channels")
    for r in rows:
        print(f"{r['wc']:>5g} {r['seconds']:>8.0f} {r['trials']:>6d} {r['best_val_acc']:>8.4f} {r['n_params']:>9,d} "
              f"{r['t_tr']:>7.3f}  {r['out_channels']}")
    print(f"N_p(wc=0) / N_p(wc=10) = {ratio:.1f}x  (target >= 5x); wc=0.1 val acc target >= 0.97")


if __name__ == "__main__":
    main()
