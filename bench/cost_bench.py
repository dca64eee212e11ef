"""Are FLOPs a stand-in for measured time? Rank correlations over sampled digits configurations.

For ``--configs`` configurations sampled uniformly from each family's stage-1 space (MLP: the
SPEC space; CNN: the ``quick`` budget's space, 2-6 layers, 8-32 first channels, at most 128),
with the default training settings (batch 256), on the digits data on CPU, the costs are measured
by the code every candidate uses (:func:`lightning_dnc.measure.measure_costs`, one thread):
step-mode ``t_tr``, training FLOPs per epoch, inference FLOPs per sample, inference latency at
batch 1 and at the evaluation batch size. Printed: the Spearman rank correlation of training FLOPs
with ``t_tr`` and of inference FLOPs with each latency (``n_params`` beside them), per family.

FLOPs are exact and load-free; a correlation below 1 is what they miss (per-step overhead of
small networks, memory-bound layers), which is why ``t_tr`` and ``latency`` stay measurable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_dnc.data import DigitsDataModule  # noqa: E402
from lightning_dnc.lightning.candidate.child_trainer import cheap_cuda_checks  # noqa: E402
from lightning_dnc.measure import EpochShape, measure_costs  # noqa: E402
from lightning_dnc.measure.steps import COST_THREADS  # noqa: E402
from lightning_dnc.models import build_network  # noqa: E402
from lightning_dnc.models.layers import count_trainable  # noqa: E402
from lightning_dnc.space import CNNSpace, MLPSpace  # noqa: E402
from lightning_dnc.space.config import complete_config  # noqa: E402

SPACES = {"mlp": MLPSpace(), "cnn": CNNSpace(num_conv_layers=(2, 6), channels_first=(8, 32), channels_upper=128)}
EPOCHS = 10


def measure(config: dict[str, Any], dm: DigitsDataModule) -> dict[str, float]:
    """The costs of one configuration, measured as a candidate's are (outside Lightning)."""
    full = complete_config(config)
    torch.manual_seed(0)
    net = build_network(full, dm.input_shape, dm.num_outputs)
    optimizer = torch.optim.Adam(net.parameters(), lr=full["lr"])
    x, y = dm.arrays("train", normalized=True)  # the bare network takes normalised inputs
    batch_size = int(full["batch_size"])

    def loss_of(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return torch.nn.functional.cross_entropy(net(batch[0]), batch[1])

    def train_step(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss_of(batch).backward()
        optimizer.step()

    with cheap_cuda_checks():
        costs = measure_costs(net, [optimizer], train_step, loss_of, (x[:batch_size], y[:batch_size]),
                              lambda b, n: (b[0][:n], b[1][:n]), lambda b: b[0], EpochShape(len(x), batch_size),
                              EPOCHS, min(1024, dm.num_samples("val")), torch.device("cpu"), num_threads=COST_THREADS)
    if costs.error:
        raise RuntimeError(costs.error)
    return {"t_tr": costs.t_tr_step, "flops_train": costs.flops_train, "flops": costs.flops_infer,
            "latency": costs.latency, "latency_batch": costs.latency_batch, "n_params": float(count_trainable(net)),
            "seconds": costs.seconds["total"]}


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=50, help="sampled configurations per family (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=str, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    load = os.getloadavg()
    started = time.perf_counter()
    result: dict[str, Any] = {"configs": args.configs, "seed": args.seed, "threads": COST_THREADS,
                              "load_average_before": load, "families": {}}
    for family, space in SPACES.items():
        dm = DigitsDataModule(flatten=family == "mlp")
        dm.setup()
        samples = space.sample(args.configs, seed=args.seed, method="random")
        rows = [measure({**s, "family": family}, dm) for s in samples]
        column = {key: [r[key] for r in rows] for key in rows[0]}
        result["families"][family] = {
            "flops_train_vs_t_tr": spearman(column["flops_train"], column["t_tr"]),
            "n_params_vs_t_tr": spearman(column["n_params"], column["t_tr"]),
            "flops_vs_latency": spearman(column["flops"], column["latency"]),
            "flops_vs_latency_batch": spearman(column["flops"], column["latency_batch"]),
            "n_params_vs_latency": spearman(column["n_params"], column["latency"]),
            "measure_s_median": sorted(column["seconds"])[len(rows) // 2],
            "rows": rows,
        }
    result["seconds"] = time.perf_counter() - started
    result["load_average_after"] = os.getloadavg()
    print(f"digits, CPU, costs timed on {COST_THREADS} thread; {args.configs} random configurations per family "
          f"(batch 256); load average before {load[0]:.2f}, after {result['load_average_after'][0]:.2f}")
    print(f"{'Spearman rank correlation':<42}{'MLP':>8}{'CNN':>8}")
    for key, label in (("flops_train_vs_t_tr", "training FLOPs vs t_tr (step mode)"),
                       ("n_params_vs_t_tr", "N_p vs t_tr (step mode)"),
                       ("flops_vs_latency", "inference FLOPs vs latency, batch 1"),
                       ("flops_vs_latency_batch", "inference FLOPs vs latency, eval batch"),
                       ("n_params_vs_latency", "N_p vs latency, batch 1")):
        print(f"{label:<42}" + "".join(f"{result['families'][f][key]:>8.3f}" for f in SPACES))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
