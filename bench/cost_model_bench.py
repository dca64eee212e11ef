"""Which cost model predicts measured t_tr and latency best from what a search has measured?

For each family (the configurations and measurement of ``bench/cost_bench.py``: digits, CPU, costs
timed on one thread) and two scenarios, ``--configs`` configurations are measured:

- ``arch``: stage-1 skeletons at batch 256 (what stage 1 of a search sees);
- ``arch+batch``: skeletons with training settings drawn from the stage-3 space (batch 32..512).

Then, over ``--splits`` random orders, each model is fitted on the first N measured configurations
(N = 10, 20, 30: what a search has after that many trainings) and predicts the rest. Reported per
model: RMSE of log10 cost over the held-out rows, and calibration (fraction of held-out rows within
2 predictive standard deviations; 0.95 for a calibrated Gaussian). Models:

- ``blr``: :class:`lightning_dnc.gp.cost_regression.BayesianLinearCost` on the exact features of
  :func:`lightning_dnc.space.cost_features.cost_features`;
- ``blr-flops``: the same on log10 training FLOPs per epoch and log10 steps only (t_tr), log10
  inference FLOPs only (latency);
- ``gp``: the project's GP (:class:`lightning_dnc.gp.GaussianProcess`, the stage's kernel: the
  architecture space, joined with the training space in ``arch+batch``; SPEC omega 3, noise 1e-4)
  on standardised log10 cost;
- ``gp-fit``: the same GP with omega fitted by marginal likelihood.

``--rows PATH`` re-analyses the measurements stored in an earlier ``--json`` output without measuring.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightning_dnc.gp import GaussianProcess  # noqa: E402
from lightning_dnc.gp.cost_regression import BayesianLinearCost  # noqa: E402
from lightning_dnc.space import TrainingSpace  # noqa: E402
from lightning_dnc.space.cost_features import cost_features  # noqa: E402
from lightning_dnc.space.exact_costs import DataShape  # noqa: E402
from lightning_dnc.space.joint import JointSpace  # noqa: E402

TRAIN_SIZES = (10, 20, 30)
SCENARIOS = ("arch", "arch+batch")
TARGETS = ("t_tr", "latency")
MODELS = ("blr", "blr-flops", "gp", "gp-fit")


def _configs(family: str, scenario: str, n: int, seed: int) -> list[dict[str, Any]]:
    from cost_bench import SPACES

    skeletons = SPACES[family].sample(n, seed=seed, method="random")
    if scenario == "arch":
        return [{**s, "batch_size": 256} for s in skeletons]
    training = TrainingSpace().sample(n, seed=seed + 1, method="random")
    return [{**s, **t} for s, t in zip(skeletons, training)]


def measure_rows(configs: int, seed: int) -> dict[str, Any]:
    """Measure every (family, scenario) set of configurations; plain data."""
    from cost_bench import measure

    from lightning_dnc.data import DigitsDataModule

    out: dict[str, Any] = {}
    for family in ("mlp", "cnn"):
        dm = DigitsDataModule(flatten=family == "mlp")
        dm.setup()
        data = DataShape.from_datamodule(dm)
        for scenario in SCENARIOS:
            chosen = _configs(family, scenario, configs, seed)
            rows = [measure({**c, "family": family}, dm) for c in chosen]
            out[f"{family}/{scenario}"] = {"data": {"input_shape": list(data.input_shape), "num_outputs": data.num_outputs,
                                                    "train_samples": data.train_samples, "input_stats": data.input_stats},
                                           "configs": chosen, "t_tr": [r["t_tr"] for r in rows],
                                           "latency": [r["latency"] for r in rows]}
    return out


def _gp_space(family: str, scenario: str) -> Any:
    from cost_bench import SPACES

    return SPACES[family] if scenario == "arch" else JointSpace(SPACES[family], TrainingSpace())


def _predict(model: str, family: str, scenario: str, target: str, configs: list[dict[str, Any]], X: np.ndarray,
             y: np.ndarray, train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if model.startswith("blr"):
        cols = slice(None) if model == "blr" else slice(0, 2 if target == "t_tr" else 1)
        fitted = BayesianLinearCost().fit(X[train][:, cols], y[train])
        return fitted.predict(X[test][:, cols])
    scale = max(float(y[train].std()), 1e-6)
    center = float(y[train].mean())
    gp = GaussianProcess(_gp_space(family, scenario), fit_omega=model == "gp-fit")
    gp.observe([configs[i] for i in train], (y[train] - center) / scale)
    mean, var = gp.predict([configs[i] for i in test])
    return center + scale * mean, scale ** 2 * (var + gp.noise_var)


def analyse(rows: dict[str, Any], splits: int, seed: int) -> dict[str, Any]:
    """Held-out RMSE and 2-sigma coverage per (family/scenario, target, model, N)."""
    result: dict[str, Any] = {}
    for key, block in rows.items():
        family, scenario = key.split("/")
        d = block["data"]
        data = DataShape(tuple(d["input_shape"]), d["num_outputs"], d["train_samples"],
                         input_stats=None if d["input_stats"] is None else tuple(d["input_stats"]))
        configs = [{k: v for k, v in c.items() if k != "family"} for c in block["configs"]]
        for target in TARGETS:
            X = cost_features(family, configs, data, target)
            y = np.log10(np.asarray(block[target], dtype=np.float64))
            rng = np.random.default_rng(seed)
            orders = [rng.permutation(len(y)) for _ in range(splits)]
            for model in MODELS:
                for n in TRAIN_SIZES:
                    if n >= len(y):
                        continue
                    errors, z = [], []
                    for order in orders:
                        mean, var = _predict(model, family, scenario, target, configs, X, y, order[:n], order[n:])
                        err = mean - y[order[n:]]
                        errors.append(err)
                        z.append(np.abs(err) / np.sqrt(np.maximum(var, 1e-300)))
                    e, zz = np.concatenate(errors), np.concatenate(z)
                    result.setdefault(key, {}).setdefault(target, {}).setdefault(model, {})[str(n)] = {
                        "rmse_log10": float(np.sqrt(np.mean(e ** 2))),
                        "within_2sigma": float(np.mean(zz <= 2.0)),
                        "median_split_rmse": float(np.median([np.sqrt(np.mean(err ** 2)) for err in errors])),
                    }
            result[key][target]["spread_log10"] = float(y.std())
    return result


def _table(result: dict[str, Any]) -> str:
    lines = [f"{'set':<16}{'cost':<9}{'model':<11}" + "".join(f"{'N=' + str(n):>18}" for n in TRAIN_SIZES),
             f"{'':<36}" + "".join(f"{'RMSE  2sig':>18}" for _ in TRAIN_SIZES)]
    for key, targets in result.items():
        for target, models in targets.items():
            for model in MODELS:
                cells = "".join(f"{models[model][str(n)]['rmse_log10']:>11.3f}{models[model][str(n)]['within_2sigma']:>7.2f}"
                                if str(n) in models[model] else f"{'-':>18}" for n in TRAIN_SIZES)
                lines.append(f"{key:<16}{target:<9}{model:<11}{cells}")
            lines.append(f"{key:<16}{target:<9}{'(spread)':<11}{models['spread_log10']:>11.3f}  std of log10 cost")
    return "\n".join(lines)


def winners(result: dict[str, Any]) -> dict[str, Any]:
    """Per target: the model with the lowest mean held-out RMSE over every set and N."""
    out: dict[str, Any] = {}
    for target in TARGETS:
        means = {m: float(np.mean([result[k][target][m][str(n)]["rmse_log10"] for k in result for n in TRAIN_SIZES
                                   if str(n) in result[k][target][m]])) for m in MODELS}
        out[target] = {"mean_rmse_log10": means, "best": min(means, key=means.get)}
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=40, help="measured configurations per family and scenario")
    parser.add_argument("--splits", type=int, default=20, help="random train/test orders per N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", type=str, default=None, help="re-analyse the rows of an earlier --json output")
    parser.add_argument("--json", type=str, default=None, help="write the summary (and the measured rows) here")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    started = time.perf_counter()
    if args.rows:
        stored = json.loads(Path(args.rows).read_text())
        rows, measured = stored["rows"], stored["measured"]
    else:
        rows = measure_rows(args.configs, args.seed)
        measured = {"configs": args.configs, "seed": args.seed, "load_average_before": load,
                    "load_average_after": os.getloadavg(), "seconds": time.perf_counter() - started}
    result = analyse(rows, args.splits, args.seed)
    summary = {"measured": measured, "splits": args.splits, "train_sizes": list(TRAIN_SIZES), "results": result,
               "winners": winners(result), "rows": rows}
    print(f"digits, CPU; measured {measured['configs']} configs per set, load average "
          f"{measured['load_average_before'][0]:.2f} before, {measured['load_average_after'][0]:.2f} after; "
          f"{args.splits} random splits")
    print(_table(result))
    for target, w in summary["winners"].items():
        print(f"{target}: lowest mean held-out RMSE {w['best']} "
              + ", ".join(f"{m} {v:.3f}" for m, v in w["mean_rmse_log10"].items()))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
