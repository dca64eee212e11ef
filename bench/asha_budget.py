"""Candidate-epochs of the paper's CIFAR-10 budget with and without ``fidelity="asha"`` (computed, not measured).

The paper's budget (SPEC §5, README "Scaling out"): 100 epochs per candidate, 15 + 15 BO
candidates in stages 1 and 3, stage-2 CNN groups of 2, <= 7, 4, 15 and 2 options. With
``fidelity="asha"`` and the default rungs (``min_epochs`` 4, eta 3: 4, 12, 36, 100 epochs) each
BO stage is counted as synchronous successive halving (``floor(n / eta)`` of a rung go on: the
asynchronous rule promotes at least as many, so this is a lower bound) and each grid group keeps
``max(1, floor(n / eta))`` per rung, as the engine does. A promoted candidate trains only the epochs
between two rungs (it continues from its checkpoint).

Usage: ``python bench/asha_budget.py``
"""

from __future__ import annotations

from lightning_dnc.search.fidelity.rungs import default_min_epochs, rung_epochs

EPOCHS = 100
ETA = 3
BO_CANDIDATES = {"stage 1 (BO, 15 + 15)": 30, "stage 3 (BO, 15 + 15)": 30}
GRID_GROUPS = {"stage 2: ac": 2, "stage 2: ds (at most)": 7, "stage 2: bn": 4, "stage 2: do": 15, "stage 2: sc": 2}
PAPER_HOURS_WC01 = 19.23  # the paper's wc = 0.1 search on one V100 (SPEC §8)


def halving(candidates: int, ladder: tuple[int, ...], keep_one: bool) -> tuple[list[int], int]:
    """Candidates per rung and candidate-epochs of successive halving over ``candidates``."""
    counts, epochs, previous = [], 0, 0
    n = candidates
    for k, rung in enumerate(ladder):
        if k:
            n = max(1, n // ETA) if keep_one else n // ETA
        counts.append(n)
        epochs += n * (rung - previous)
        previous = rung
    return counts, epochs


def table() -> list[str]:
    ladder = rung_epochs(EPOCHS, default_min_epochs(EPOCHS, ETA), ETA)
    rows = ["| part | candidates | fixed epochs (candidate-epochs) | asha: candidates per rung "
            f"({', '.join(map(str, ladder))} epochs) | asha (candidate-epochs) | ratio |", "|---|---|---|---|---|---|"]
    total_off = total_on = 0
    for name, n in {**BO_CANDIDATES, **GRID_GROUPS}.items():
        counts, on = halving(n, ladder, keep_one=name.startswith("stage 2"))
        off = n * EPOCHS
        total_off += off
        total_on += on
        rows.append(f"| {name} | {n} | {off:,} | {' / '.join(map(str, counts))} | {on:,} | {on / off:.2f}x |")
    rows.append(f"| **search** | {sum(BO_CANDIDATES.values()) + sum(GRID_GROUPS.values())} | **{total_off:,}** | | "
                f"**{total_on:,}** | **{total_on / total_off:.2f}x** |")
    rows.append("")
    rows.append(f"At the paper's wc=0.1 rate ({PAPER_HOURS_WC01} V100-hours for {total_off:,} candidate-epochs, equal "
                f"epoch times assumed): {PAPER_HOURS_WC01 * total_on / total_off:.1f} hours with fidelity on (computed).")
    return rows


if __name__ == "__main__":
    print("\n".join(table()))
