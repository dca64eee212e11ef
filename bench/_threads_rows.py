"""Per-candidate training time with ``threads="auto"`` against one thread and all threads (issue 25).

For each row of ``bench/train_bench.py`` the same candidate is evaluated with ``threads=1``,
``threads=<all cores>`` and ``threads="auto"``, interleaved, ``repeats`` times, on a quiet machine
and beside ``busy`` CPU-burning processes. The time is the candidate's whole training (every epoch,
the race of ``"auto"`` included: the sum of its epoch times). Target: auto <= 1.1 x min(1 thread,
all threads) on every row, quiet and busy (medians over the repeats).
"""

from __future__ import annotations

import os
import statistics
from typing import Any

import torch

from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator

from _burners import cpu_burners  # noqa: E402  (bench/ is on sys.path when a bench runs)

TARGET = 1.10


def _training_seconds(evaluator: CandidateEvaluator, config: dict[str, Any]) -> tuple[float, int | None]:
    ev = evaluator.evaluate(config)
    if not ev.ok:
        raise RuntimeError(f"evaluation failed: {ev.error}")
    return float(sum(ev.extra["epoch_times"])), (ev.extra.get("threads") or {}).get("threads")


def threads_rows(cases: list[tuple[str, dict[str, Any], Any]], epochs: int, repeats: int, busy: int,
                 batch_size: int) -> list[dict[str, Any]]:
    """One row per (case, condition): median training seconds per thread setting and auto's ratio."""
    cores = max(1, torch.get_num_threads())
    settings: list[tuple[str, str | int]] = [("1", 1), (f"all ({cores})", cores), ("auto", "auto")]
    rows = []
    for condition, burners in (("quiet", 0), (f"busy ({busy} burners)", busy)):
        with cpu_burners(burners):
            for name, config, dm in cases:
                config = {**config, "batch_size": batch_size, "epochs": epochs}
                evaluators = {label: CandidateEvaluator(dm, epochs=epochs, accelerator="cpu", seed=0, threads=value,
                                                        max_threads=cores, measure_costs=False)
                              for label, value in settings}
                times: dict[str, list[float]] = {label: [] for label, _ in settings}
                chosen: list[Any] = []
                for _ in range(repeats):
                    for label, _ in settings:
                        seconds, threads = _training_seconds(evaluators[label], config)
                        times[label].append(seconds)
                        if label == "auto":
                            chosen.append(threads)
                medians = {label: statistics.median(v) for label, v in times.items()}
                best_fixed = min(medians["1"], medians[f"all ({cores})"])
                rows.append({"case": name, "condition": condition, "seconds": medians, "auto_chose": chosen,
                             "auto_vs_best_fixed": medians["auto"] / best_fixed,
                             "met": medians["auto"] <= TARGET * best_fixed,
                             "load": os.getloadavg()[0]})
    return rows


def print_rows(rows: list[dict[str, Any]]) -> None:
    """The table: seconds per setting, auto's choice, auto / min(fixed)."""
    labels = list(rows[0]["seconds"])
    print(f"{'case':<18}{'condition':<22}" + "".join(f"{label + ' s':>12}" for label in labels)
          + f"{'auto chose':>14}{'auto/best':>11}  target <= {TARGET:.2f}")
    for row in rows:
        chose = ",".join(str(c) for c in row["auto_chose"])
        print(f"{row['case']:<18}{row['condition']:<22}" + "".join(f"{row['seconds'][k]:>12.3f}" for k in labels)
              + f"{chose:>14}{row['auto_vs_best_fixed']:>11.3f}  {'met' if row['met'] else 'MISSED'}")
