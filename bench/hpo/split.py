"""The fixed split of LCBench's 34 tasks into a tuning half and a test half (``--tasks tune|test``).

Every default of lightning-dnc (strategy, stage sizes, pool size, rungs, model choices) may be
chosen on ``tune`` only; README's headline tables report ``test``. A number chosen and reported on
the same tasks is a training score, not a result.

How the split is made (:func:`split`): the tasks are sorted by size, measured as
:data:`CENTRE_SECONDS` (the surrogate's full-training seconds of the bench's centre configuration,
52 epochs; it grows with the data set's rows and columns), and paired off in that order (the two
smallest, the next two, ...); in each pair a coin of ``numpy.random.default_rng(SPLIT_SEED)``
sends one task to ``tune`` and the other to ``test``. So both halves have 17 tasks and the same
spread of sizes. :data:`TUNE` and :data:`TEST` are the result, written out;
``tests/test_hpo_bench.py`` checks that :func:`split` still gives them and that
:data:`CENTRE_SECONDS` matches the surrogate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

SPLIT_SEED = 23
#: Full-training seconds (52 epochs) of the centre configuration per task (surrogate, rounded to 0.1 s).
CENTRE_SECONDS: dict[str, float] = {
    "3945": 186.4, "7593": 997.6, "34539": 191.8, "126025": 165.6, "126026": 106.8, "126029": 149.1,
    "146212": 131.7, "167104": 85.0, "167149": 70.3, "167152": 175.6, "167161": 88.1, "167168": 219.4,
    "167181": 82.4, "167184": 111.9, "167185": 442.6, "167190": 125.9, "167200": 187.1, "167201": 244.2,
    "168329": 286.4, "168330": 388.3, "168331": 193.4, "168335": 230.8, "168868": 141.1, "168908": 2353.5,
    "168910": 395.9, "189354": 764.1, "189862": 166.2, "189865": 91.7, "189866": 728.1, "189873": 1584.4,
    "189905": 48.1, "189906": 107.9, "189908": 784.8, "189909": 211.1,
}


def split(sizes: Mapping[str, float], seed: int = SPLIT_SEED) -> tuple[list[str], list[str]]:
    """``(tune, test)``: tasks paired by size, one of each pair to each half (ids sorted as numbers).

    With an odd count the largest task goes to ``test``.
    """
    ordered = sorted(sizes, key=lambda t: (sizes[t], int(t)))
    rng = np.random.default_rng(seed)
    tune: list[str] = []
    test: list[str] = []
    for i in range(0, len(ordered) - 1, 2):
        a, b = ordered[i], ordered[i + 1]
        first, second = (a, b) if rng.random() < 0.5 else (b, a)
        tune.append(first)
        test.append(second)
    if len(ordered) % 2:
        test.append(ordered[-1])
    return sorted(tune, key=int), sorted(test, key=int)


TUNE: tuple[str, ...] = (
    "34539", "126026", "126029", "167104", "167149", "167161", "167190", "167200", "168329", "168335", "168868",
    "168908", "168910", "189862", "189866", "189908", "189909",
)
TEST: tuple[str, ...] = (
    "3945", "7593", "126025", "146212", "167152", "167168", "167181", "167184", "167185", "167201", "168330",
    "168331", "189354", "189865", "189873", "189905", "189906",
)
HALVES: dict[str, tuple[str, ...]] = {"tune": TUNE, "test": TEST}


def select(name: str, available: Sequence[str]) -> list[str]:
    """The tasks of half ``name`` (``"tune"``, ``"test"``) or ``"all"``, in ``available``'s order."""
    if name == "all":
        return list(available)
    chosen = set(HALVES[name])
    return [t for t in available if t in chosen]


def half_of(task: str) -> str | None:
    """``"tune"`` or ``"test"`` for an LCBench task, else None."""
    return next((name for name, tasks in HALVES.items() if task in tasks), None)
