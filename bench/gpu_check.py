"""Every CUDA check of the project in one command, for a machine with a GPU (at most ~8 minutes).

    python bench/gpu_check.py            # all checks, a table, exit 0 / 1 (a check failed) / 2 (no CUDA)
    python bench/gpu_check.py --only ray # one check (prints its JSON row)

Checks (each in its own process, with its own time limit, so one hang cannot stop the others):

cuda-tests      the CUDA-marked tests (``pytest -m cuda``)
ttr-vs-events   SPEC §1 ``t_tr`` (synchronised wall clock, ``EpochTimer``) against CUDA events on the
                same training epochs of a CIFAR-sized CNN: every epoch within 5%
train-bench     ``bench/train_bench.py --accelerator gpu --quick``: evaluator vs plain loop on the GPU
bf16-search     a quick CNN search on CIFAR-10-shaped synthetic data (no download) with
                ``precision="bf16-mixed"``: every candidate trains on CUDA and scores a finite loss
ray-gpu         a tiny search on Ray with ``resources_per_trial={"gpu": 1}``: candidates run on a GPU
                worker, whose device name is recorded
peak-memory     the peak training memory of a candidate (``torch.cuda.max_memory_allocated``), once the
                costs issue records it per trial; skipped until then
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

EXIT_OK, EXIT_FAILED, EXIT_NO_CUDA = 0, 1, 2
STATUSES = ("ok", "failed", "skipped")


@dataclass
class Row:
    """One check's outcome."""

    check: str
    status: str
    seconds: float
    detail: str


# -- the checks (each runs in a child process: `--only NAME`) -----------------------------------
def check_cuda_tests() -> tuple[str, str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "tests", "-p", "no:cacheprovider"],
                          cwd=ROOT, capture_output=True, text=True)
    last = (proc.stdout.strip().splitlines() or ["no output"])[-1]
    return ("ok" if proc.returncode == 0 and "passed" in last else "failed"), last


def check_ttr_vs_events() -> tuple[str, str]:
    import lightning.pytorch as pl
    import torch

    from lightning_dnc.data import TensorLoader
    from lightning_dnc.lightning.candidate.timing import EpochTimer
    from lightning_dnc.models import CandidateModule

    class Events(pl.Callback):
        def __init__(self) -> None:
            self.spans: list[tuple[Any, Any]] = []

        def on_train_epoch_start(self, trainer: Any, module: Any) -> None:
            self.spans.append((torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)))
            self.spans[-1][0].record()

        def on_train_epoch_end(self, trainer: Any, module: Any) -> None:
            self.spans[-1][1].record()

    device = torch.device("cuda", 0)
    x, y = torch.randn(20_000, 3, 32, 32, device=device), torch.randint(0, 10, (20_000,), device=device)
    module = CandidateModule({"out_channels": [64, 128, 128, 256], "batch_size": 512}, (3, 32, 32), 10, epochs=4)
    timer, events = EpochTimer(), Events()
    trainer = pl.Trainer(max_epochs=4, accelerator="gpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[events, timer])
    trainer.fit(module, TensorLoader(x, y, 512, shuffle=True), TensorLoader(x[:1000], y[:1000], 512))
    torch.cuda.synchronize()
    reference = [start.elapsed_time(end) / 1000 for start, end in events.spans]
    gaps = [abs(ours - ref) / ref for ours, ref in zip(timer.epoch_times[1:], reference[1:])]
    worst = max(gaps)
    return ("ok" if worst <= 0.05 else "failed"), f"worst epoch {worst:.1%} apart (target <= 5%), t_tr {timer.t_tr:.3f} s"


def check_train_bench() -> tuple[str, str]:
    proc = subprocess.run([sys.executable, "bench/train_bench.py", "--accelerator", "gpu", "--quick", "--json"],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        return "failed", (proc.stderr.strip().splitlines() or ["no output"])[-1]
    data = json.loads(proc.stdout[proc.stdout.index("{"):])
    ratios = ", ".join(f"{c['case']} {c['ratio']:.2f}x" for c in data["cases"])
    on_gpu = "cuda" in str(data["device"])
    return ("ok" if on_gpu else "failed"), (f"{data['device']}: evaluator / plain loop {ratios}; fixed cost "
                                            f"{data['fixed_cost']['fixed_cost_s']:.3f} s")


def _synthetic_cifar(n: int = 3000) -> Any:
    import torch

    from lightning_dnc.data import InMemoryDataModule, RawData

    class SyntheticCIFAR(InMemoryDataModule):
        """CIFAR-10-shaped data whose class is the brightest of ten image regions (learnable, no download)."""

        def _load(self) -> RawData:
            g = torch.Generator().manual_seed(0)
            x = torch.rand(n + 500, 3, 32, 32, generator=g)
            y = torch.randint(0, 10, (n + 500,), generator=g)
            for c in range(10):
                x[y == c, :, 3 * c:3 * c + 3, :] += 1.0
            return RawData(x[:n], y[:n], x[n:], y[n:])

    return SyntheticCIFAR(batch_size=128)


def check_bf16_search() -> tuple[str, str]:
    import lightning_dnc as dnc

    tuner = dnc.DeepNCheapTuner(
        wc=0.1, search_epochs=2, prior_points=2, steps=1, explore=50, stage2_order=["ac"], training_prior_points=1,
        training_steps=1, progress=False, space=dnc.CNNSpace(num_conv_layers=(2, 4), channels_first=(16, 32),
                                                             channels_upper=128))
    trainer = dnc.Trainer(accelerator="gpu", devices=1, precision="bf16-mixed", logger=False,
                          enable_checkpointing=False, enable_progress_bar=False)
    result = trainer.tune(dnc.DnCModel(family="cnn"), datamodule=_synthetic_cifar(), dnc=tuner)
    trials = [t for t in result.trials if t.evaluation is not None]
    on_cuda = all("cuda" in t.evaluation.device for t in trials)
    ok = on_cuda and all(t.evaluation.ok for t in trials) and result.best_loss == result.best_loss
    best = result.best.trial.evaluation
    return ("ok" if ok else "failed"), (f"{len(trials)} trials on {best.device}, best val acc "
                                        f"{best.best_val_acc:.3f}, all on CUDA: {on_cuda}")


def check_ray_gpu() -> tuple[str, str]:
    import lightning_dnc as dnc
    from lightning_dnc.data import DigitsDataModule
    from lightning_dnc.executors import RAY_AVAILABLE

    if not RAY_AVAILABLE:
        return "failed", 'Ray is not installed: pip install "lightning-dnc[ray]"'
    tuner = dnc.DeepNCheapTuner(search_epochs=1, prior_points=2, steps=0, explore=20, stage2_order=[],
                                training_prior_points=1, training_steps=0, progress=False, executor="ray",
                                max_concurrent=1, resources_per_trial={"cpu": 1, "gpu": 1})
    trainer = dnc.Trainer(accelerator="gpu", devices=1, logger=False, enable_checkpointing=False)
    result = trainer.tune(dnc.DnCModel(family="mlp"), datamodule=DigitsDataModule(flatten=True), dnc=tuner)
    devices = sorted({t.evaluation.device for t in result.trials if t.evaluation is not None})
    gpus = [t.evaluation.extra.get("worker", {}).get("gpu_ids") for t in result.trials if t.evaluation is not None]
    ok = all("cuda" in d for d in devices) and all(gpus)
    return ("ok" if ok else "failed"), f"devices {devices}, worker GPU ids {gpus}"


def check_peak_memory() -> tuple[str, str]:
    from lightning_dnc.search import Evaluation

    names = [n for n in Evaluation.__dataclass_fields__ if "memory" in n]
    if not names:
        return "skipped", "trials do not record peak memory yet (the costs issue); nothing to check"
    from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator

    ev = CandidateEvaluator(_synthetic_cifar(1000), epochs=1, accelerator="gpu").evaluate(
        {"family": "cnn", "out_channels": [32, 64], "batch_size": 128})
    value = getattr(ev, names[0])
    return ("ok" if ev.ok and value and value > 0 else "failed"), f"{names[0]} = {value}"


CHECKS: dict[str, tuple[Callable[[], tuple[str, str]], int]] = {
    "cuda-tests": (check_cuda_tests, 120),
    "ttr-vs-events": (check_ttr_vs_events, 60),
    "train-bench": (check_train_bench, 75),
    "bf16-search": (check_bf16_search, 90),
    "ray-gpu": (check_ray_gpu, 90),
    "peak-memory": (check_peak_memory, 45),
}


# -- running and reporting (tested on CPU) --------------------------------------------------------
def run_one(name: str, timeout: int, command: Sequence[str] | None = None) -> Row:
    """Run check ``name`` in a child process (``command`` replaces it in tests); a crash, a hang or
    bad output is a failed row."""
    started = time.perf_counter()
    command = list(command) if command is not None else [sys.executable, __file__, "--only", name]
    try:
        proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Row(name, "failed", time.perf_counter() - started, f"no result within {timeout} s")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1]
        return Row(name, "failed", time.perf_counter() - started, f"exit {proc.returncode}: {tail[:160]}")
    row = Row(**json.loads(lines[-1]))
    row.seconds = time.perf_counter() - started
    return row


def exit_code(rows: Sequence[Row]) -> int:
    """1 when any check failed, else 0 (skipped checks do not fail the run)."""
    return EXIT_FAILED if any(r.status == "failed" for r in rows) else EXIT_OK


def format_table(rows: Sequence[Row]) -> str:
    """The rows as a fixed-width table, with a closing line counting each status."""
    width = max([len(r.check) for r in rows] + [5])
    lines = [f"{'check':<{width}}  {'status':<8}{'seconds':>8}  detail", "-" * (width + 60)]
    lines += [f"{r.check:<{width}}  {r.status:<8}{r.seconds:>8.1f}  {r.detail}" for r in rows]
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    lines.append(f"{counts['ok']} passed, {counts['failed']} failed, {counts['skipped']} skipped")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None, cuda_available: Callable[[], bool] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CHECKS), help="run one check here and print its JSON row")
    args = parser.parse_args(argv)
    if args.only:
        started = time.perf_counter()
        status, detail = CHECKS[args.only][0]()
        print(json.dumps(asdict(Row(args.only, status, time.perf_counter() - started, detail))))
        return EXIT_OK
    if cuda_available is None:
        import torch

        cuda_available = torch.cuda.is_available
    if not cuda_available():
        print("no CUDA device: bench/gpu_check.py runs on a machine with a GPU (nothing was checked).")
        return EXIT_NO_CUDA
    import torch

    print(f"GPU checks on {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    rows = []
    for name, (_, timeout) in CHECKS.items():
        rows.append(run_one(name, timeout))
        print(f"  {name}: {rows[-1].status} ({rows[-1].seconds:.0f} s)", flush=True)
    print(format_table(rows))
    return exit_code(rows)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
