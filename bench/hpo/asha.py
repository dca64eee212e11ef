"""lightning-dnc with ``fidelity="asha"`` on the LCBench surrogate, driven rung by rung through ask/tell.

Every proposal carries its rung (:class:`lightning_dnc.search.core.trial.RungRun`): a new candidate
trains from scratch to the lowest rung, a promoted one continues from its previous rung
(``trace.train(config, rung.epochs, rung.from_epoch)``), so only the epochs between two rungs are
charged. The rung objective is the trace's: ``f_p`` from the best validation accuracy up to the
rung's epoch, ``t_tr`` the surrogate's seconds per epoch there.

Stage sizes: :data:`SCALE` times the candidates ``dnc`` trains within the budget, split between
the stages as ``dnc`` splits them (:func:`hpo_dnc.stage_sizes`). At the rung structure's
expected cost per candidate (:func:`expected_epochs`) that is a fraction of ``dnc``'s epochs; the
search stops when its stages end (or the budget is spent).

Variants (``--methods``), each a strategy x ``rung_model`` (:data:`VARIANTS`): ``dnc-asha`` is
lightning-dnc's defaults with ``fidelity="asha"`` (strategy ``"joint"``, the default
``rung_model``); ``dnc-asha-paper``, ``dnc-asha-revisit`` and ``dnc-asha-train-first`` run the other
strategies' stages under rungs; ``dnc-asha-highest``, ``dnc-asha-shifted`` and ``dnc-asha-top`` pin
the point the stages see per candidate, for the comparison of designs. Each one's fixed-epoch twin
(:data:`FIXED_TWIN`) is the same strategy at 52 epochs.
"""

from __future__ import annotations

from typing import Any

from hpo import dnc as hpo_dnc
import hpo.space as hs
from hpo.lcbench import MAX_EPOCHS
from hpo.trace import Trace

#: ``(strategy, rung_model)`` of every variant (``None``: lightning-dnc's default).
VARIANTS: dict[str, tuple[str | None, str | None]] = {
    "dnc-asha": (None, None),
    "dnc-asha-paper": ("paper", None), "dnc-asha-revisit": ("revisit", None),
    "dnc-asha-train-first": ("train-first", None),
    "dnc-asha-highest": (None, "highest"), "dnc-asha-shifted": (None, "shifted"), "dnc-asha-top": (None, "top"),
}
#: The same strategy at fixed epochs, per variant.
FIXED_TWIN = {method: {"paper": "dnc-paper", "revisit": "dnc-revisit", "train-first": "dnc-train-first"}.get(
    strategy or "", "dnc") for method, (strategy, _) in VARIANTS.items()}
#: Lowest rung and reduction factor: rungs 6, 18, 52 epochs (min 2: rungs 2, 6, 18, 52 gave higher
#: regret on 8 tasks x 2 seeds, 0.59 vs 0.52 at wc 0 and 0.63 vs 0.46 at wc 0.1).
MIN_EPOCHS = 6
ETA = 3
#: Candidates per stage, relative to ``dnc``'s trainings within the same budget.
SCALE = 3.0


def expected_epochs(ladder: tuple[int, ...], eta: int) -> float:
    """Epochs one candidate trains on average when a ``1/eta`` share of each rung goes on."""
    previous, total = 0, 0.0
    for k, epochs in enumerate(ladder):
        total += (epochs - previous) / eta**k
        previous = epochs
    return total


def settings_of(method: str, budget: float) -> dict[str, Any]:
    """The settings ``method`` runs with (stored in each JSON row)."""
    from lightning_dnc.search.fidelity.rungs import rung_epochs

    ladder = rung_epochs(MAX_EPOCHS, MIN_EPOCHS, ETA)
    candidates = SCALE * budget
    from lightning_dnc.search.core.settings import DEFAULT_STRATEGY
    from lightning_dnc.search.fidelity.rungs import DEFAULT_RUNG_MODEL

    strategy, rung_model = VARIANTS[method]
    return {"engine": "lightning_dnc.search.StagedSearch", "explore": hpo_dnc.EXPLORE, "epochs": MAX_EPOCHS,
            "fidelity": "asha", "min_epochs": MIN_EPOCHS, "reduction_factor": ETA,
            "strategy": strategy or DEFAULT_STRATEGY, "rung_model": rung_model or DEFAULT_RUNG_MODEL,
            "rungs": list(ladder), "scale": SCALE, "expected_epochs_per_candidate": expected_epochs(ladder, ETA),
            "stage2_order": list(hs.DNC_STAGE2_ORDER), **hpo_dnc.stage_sizes(candidates),
            "note": "lightning-dnc's staged search of the strategy, every stage wrapped in asynchronous successive "
                    "halving (Rungs); promoted candidates continue from their rung"}


def run(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    """Run one ``dnc-asha`` variant until the search ends or ``trace``'s budget is spent."""
    from lightning_dnc.search import Objective, SearchSettings, StagedSearch

    settings = settings_of(method, trace.budget)
    space, training_space = hs.dnc_spaces()
    sizes = {k: settings[k] for k in ("prior_points", "steps", "training_prior_points", "training_steps")}
    with trace.deciding():
        record = SearchSettings(family="mlp", objective=Objective(wc=trace.wc, t_tr_ref=trace.task.t_tr_ref),
                                explore=settings["explore"], search_epochs=MAX_EPOCHS,
                                stage2_order=tuple(hs.DNC_STAGE2_ORDER), seed=seed, fidelity="asha",
                                min_epochs=MIN_EPOCHS, reduction_factor=ETA, rung_model=settings["rung_model"],
                                strategy=settings["strategy"], **sizes)
        search = StagedSearch.from_settings(record, space, training_space)
    stages = hpo_dnc.drive(search, trace)
    meta = search.result().meta.get("rungs", {}) if search.best_trial is not None else {}
    return {"finished": search.finished, "stage_counts": stages, "stage_reached": min(search.stage, 4),
            "candidates_per_rung": meta.get("candidates_per_rung"), "epochs_trained": meta.get("epochs_trained")}
