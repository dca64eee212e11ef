"""Per-epoch training time through ``CandidateEvaluator`` vs a plain PyTorch loop, and the fixed
cost of one evaluation.

Both sides train the same network (same config, same init seed) on the same in-memory data with
the same batch size, optimiser and schedule; the plain loop shuffles and slices tensors the way a
hand-written loop would. Per-epoch time is SPEC §1's ``t_tr`` (mean of epochs 2..N, validation
excluded) on both sides (the evaluator's ``t_tr_epoch``). The fixed cost is an evaluation's wall
time minus its training epochs and minus the cost measurement at training start (Trainer set-up,
validation of 360 samples, teardown, clean-up), on a tiny dataset; the measurement's own seconds
are printed beside it. Targets (issue 16 item 7): MLP row <= 1.10x, fixed cost <= 0.02 s.

Run ``python bench/train_bench.py`` (``--quick`` for a smoke run, ``--json`` for machine output).
``--threads-check`` adds issue 25's rows: each case's training time with ``threads=1``, all
threads and ``"auto"``, quiet and beside ``--busy`` CPU burners (:mod:`_threads_rows`; target:
auto <= 1.1 x the better fixed count on every row).
Timings on a shared machine are noisy: each side is measured ``--repeats`` times, interleaved,
and the median is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from lightning_dnc.data import DigitsDataModule, InMemoryDataModule, RawData  # noqa: E402
from lightning_dnc.lightning.candidate.child_trainer import cheap_cuda_checks  # noqa: E402
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator  # noqa: E402
from lightning_dnc.lightning.candidate.timing import mean_training_epoch_time  # noqa: E402
from lightning_dnc.models import build_network  # noqa: E402
from lightning_dnc.models.module import LR_GAMMA, lr_milestones  # noqa: E402
from lightning_dnc.space.config import auto_weight_decay, complete_config  # noqa: E402

SEED = 0
BATCH_SIZE = 256


class RandomDataModule(InMemoryDataModule):
    """Random inputs and labels of a given shape (no normalisation: already standard normal)."""

    normalize_inputs = False

    def __init__(self, n: int, shape: tuple[int, ...], classes: int = 10, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n, self.shape, self.classes = n, shape, classes
        self._task, self._num_outputs = "classification", classes

    def _load(self) -> RawData:
        gen = torch.Generator().manual_seed(SEED)
        x = torch.randn(self.n, *self.shape, generator=gen)
        y = torch.randint(0, self.classes, (self.n,), generator=gen)
        return RawData(x, y)


def plain_loop(config: dict[str, Any], dm: RandomDataModule, epochs: int, device: torch.device) -> list[float]:
    """Train like a hand-written loop; return the seconds of each training epoch."""
    full = complete_config(config)
    torch.manual_seed(SEED)
    net = build_network(full, dm.input_shape, dm.num_outputs).to(device)
    n_params = sum(p.numel() for p in net.parameters() if p.requires_grad)
    wd = auto_weight_decay(full["family"], n_params) if full["weight_decay"] == "auto" else full["weight_decay"]
    opt = torch.optim.Adam(net.parameters(), lr=full["lr"], weight_decay=wd)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, lr_milestones(epochs), gamma=LR_GAMMA)
    x, y = (t.to(device) for t in dm.arrays("train"))
    gen = torch.Generator(device=device).manual_seed(SEED)
    bs = int(full["batch_size"])
    times = []
    for _ in range(epochs):
        net.train()
        _sync(device)
        start = time.perf_counter()
        perm = torch.randperm(x.shape[0], generator=gen, device=device)
        for i in range(0, x.shape[0], bs):
            idx = perm[i : i + bs]
            loss = torch.nn.functional.cross_entropy(net(x.index_select(0, idx)), y.index_select(0, idx))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        times.append(time.perf_counter() - start)
        sched.step()
    return times


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_case(name: str, config: dict[str, Any], dm: RandomDataModule, epochs: int, repeats: int,
               accelerator: str, device: torch.device) -> dict[str, Any]:
    config = {**config, "batch_size": BATCH_SIZE, "epochs": epochs}
    evaluator = CandidateEvaluator(dm, epochs=epochs, accelerator=accelerator, seed=SEED)
    plain, ours, walls, overheads = [], [], [], []
    plain_epochs: list[float] = []
    our_epochs: list[float] = []
    for _ in range(repeats):
        with cheap_cuda_checks():  # as the evaluator trains: no NVML probe per optimizer step without a GPU
            times = plain_loop(config, dm, epochs, device)
        plain.append(mean_training_epoch_time(times))
        plain_epochs += times[1:] or times
        ev = evaluator.evaluate(config)
        if not ev.ok:
            raise RuntimeError(f"{name}: evaluation failed: {ev.error}")
        ours.append(ev.t_tr_epoch)
        our_epochs += ev.extra["epoch_times"][1:] or ev.extra["epoch_times"]
        walls.append(ev.wall_time)
        overheads.append(ev.wall_time - sum(ev.extra["epoch_times"]))
    p, o = statistics.median(plain), statistics.median(ours)
    return {
        "case": name, "samples_train": dm.num_samples("train"), "input_shape": list(dm.input_shape),
        "batch_size": BATCH_SIZE, "epochs": epochs, "repeats": repeats,
        "plain_epoch_s": p, "evaluator_epoch_s": o, "ratio": o / p,
        "plain_epoch_min_s": min(plain_epochs), "evaluator_epoch_min_s": min(our_epochs),
        "ratio_min": min(our_epochs) / min(plain_epochs),
        "evaluation_wall_s": statistics.median(walls),
        "non_training_s": statistics.median(overheads),
        "device": ev.device,
    }


def fixed_cost(accelerator: str, repeats: int) -> dict[str, Any]:
    """Seconds of a 1-epoch evaluation of a tiny MLP on digits besides its training epoch.

    Measured twice: without the cost measurement (the framework's fixed cost) and with it (the
    difference is what the measurement costs); each as wall time and as this process's CPU time
    (which other processes on the machine do not inflate).
    """
    dm = DigitsDataModule(flatten=True)
    config = {"hidden_mlp": [16], "batch_size": 2048}
    out: dict[str, Any] = {"case": "fixed_cost", "repeats": repeats}
    for label, measure in (("", False), ("with_costs_", True)):
        evaluator = CandidateEvaluator(dm, epochs=1, accelerator=accelerator, seed=SEED, measure_costs=measure)
        evaluator.evaluate(config)  # first call pays one-off imports and lazy initialisation
        walls, cpus = [], []
        for _ in range(repeats):
            cpu = time.process_time()
            ev = evaluator.evaluate(config)
            cpu = time.process_time() - cpu
            walls.append(ev.wall_time - ev.extra["epoch_times"][0])
            cpus.append(cpu - ev.extra["epoch_times"][0])
        out[f"{label}fixed_cost_s"] = statistics.median(walls)
        out[f"{label}fixed_cost_cpu_s"] = statistics.median(cpus)
        out[f"{label}max_s"] = max(walls)
    out["measurement_s"] = out["with_costs_fixed_cost_s"] - out["fixed_cost_s"]
    out["measurement_cpu_s"] = out["with_costs_fixed_cost_cpu_s"] - out["fixed_cost_cpu_s"]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller data, 2 epochs, 1 repeat")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per run (default 3; 2 with --quick)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per side (default 3; 1 with --quick)")
    parser.add_argument("--accelerator", default="auto", help="'cpu', 'gpu' or 'auto' (default)")
    parser.add_argument("--threads-check", action="store_true",
                        help="also time each row's training with threads=1, all and auto, quiet and busy (CPU)")
    parser.add_argument("--busy", type=int, default=2, help="CPU-burning processes of the busy half (default 2)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (2 if args.quick else 3)
    repeats = args.repeats or (1 if args.quick else 3)
    scale = 10 if args.quick else 1
    use_cuda = args.accelerator in ("gpu", "cuda") or (args.accelerator == "auto" and torch.cuda.is_available())
    device = torch.device("cuda", 0) if use_cuda else torch.device("cpu")
    accelerator = "gpu" if use_cuda else "cpu"
    mlp_dm = RandomDataModule(60_000 // scale, (784,), batch_size=BATCH_SIZE)
    cnn_dm = RandomDataModule(10_000 // scale, (3, 32, 32), batch_size=BATCH_SIZE)
    # Both datamodules hold out val_split=0.2 for validation, so 48,000 / 8,000 samples train.
    cases = [
        bench_case("mlp_784_256_10", {"hidden_mlp": [256]}, mlp_dm, epochs, repeats, accelerator, device),
        bench_case("cnn_16_16_32_32", {"out_channels": [16, 16, 32, 32], "strides": [2, 1, 2, 1]}, cnn_dm,
                   epochs, repeats, accelerator, device),
    ]
    threads = None
    if args.threads_check and not use_cuda:
        from _threads_rows import print_rows, threads_rows

        digits = DigitsDataModule()
        threads = threads_rows([("mlp_784_256_10", {"hidden_mlp": [256]}, mlp_dm),
                                ("cnn_16_16_32_32", {"out_channels": [16, 16, 32, 32], "strides": [2, 1, 2, 1]}, cnn_dm),
                                ("digits_cnn_32_64", {"out_channels": [32, 64]}, digits)],
                               max(epochs, 3), repeats, args.busy, BATCH_SIZE)
    result = {
        "threads_check": threads,
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "device": cases[0]["device"], "quick": args.quick,
        "cases": cases, "fixed_cost": fixed_cost(accelerator, 3 if args.quick else 5),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"device {result['device']}, torch {result['torch']}, {result['threads']} threads")
        print(f"{'case':<18}{'train N':>9}{'plain s/ep':>12}{'ours s/ep':>11}{'ratio':>8}"
              f"{'ratio(min ep)':>15}{'non-train s':>13}")
        for c in cases:
            print(f"{c['case']:<18}{c['samples_train']:>9}{c['plain_epoch_s']:>12.4f}{c['evaluator_epoch_s']:>11.4f}"
                  f"{c['ratio']:>8.3f}{c['ratio_min']:>15.3f}{c['non_training_s']:>13.3f}")
        print("s/ep: median over repeats of t_tr (mean of epochs 2..N); ratio(min ep): fastest epoch vs "
              "fastest epoch, less sensitive to other load on the machine")
        fc = result["fixed_cost"]
        print(f"fixed cost per evaluation (tiny MLP, 1 epoch, no cost measurement): median {fc['fixed_cost_s']:.3f} s "
              f"wall, {fc['fixed_cost_cpu_s']:.3f} s CPU (target <= 0.02 s), max {fc['max_s']:.3f} s over "
              f"{fc['repeats']}; the cost measurement adds {fc['measurement_s']:.3f} s wall, "
              f"{fc['measurement_cpu_s']:.3f} s CPU")
        print(f"MLP row: {cases[0]['ratio']:.3f}x the plain loop (target <= 1.10x)")
        if threads:
            print("training seconds per candidate (all epochs; auto's race included), median over repeats:")
            print_rows(threads)
        print(f"load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    return result


if __name__ == "__main__":
    main()
