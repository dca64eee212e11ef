"""The searches compared on the LCBench surrogate: one table of names, each driven through a
:class:`~hpo_trace.Trace` by the module that owns it.

====================  ==============================================================================
``dnc-paper``         lightning-dnc's staged search (``StagedSearch`` ask/tell, SPEC §5), every
                      candidate at full fidelity (52 epochs), stage sizes scaled to the budget
``dnc``               lightning-dnc with its current defaults (``strategy="joint"``, ``model="composite"``)
``dnc-revisit``       lightning-dnc with ``strategy="revisit"``
``dnc-train-first``   lightning-dnc with ``strategy="train-first"``
``dnc-composite``     the default strategy with ``model="composite"`` (run when named)
``dnc-scalar``        the default strategy with ``model="scalar"`` (run when named)   (all six: ``hpo.dnc``)
``random``            Optuna ``RandomSampler``, full fidelity
``tpe``               Optuna ``TPESampler(seed)`` (its defaults), full fidelity
``tpe-mv``            Optuna ``TPESampler(multivariate=True, group=True)``, start-up trials scaled
                      to the budget, full fidelity
``tpe-hyperband``     Optuna ``TPESampler`` + ``HyperbandPruner`` (min 1, max 52 epochs, eta 3)
``asha``              Optuna ``RandomSampler`` + ``SuccessiveHalvingPruner`` (min 1 epoch, eta 3)
``one-epoch-topk``    one epoch for every candidate of a uniform sample, the top k to 52 epochs
                      (all five and this one: ``hpo.optuna``)
``dehb``              ``dehb.DEHB`` (ask/tell; fidelities 1-52 epochs, eta 3)
``smac``              SMAC3 ``HyperparameterOptimizationFacade`` (random-forest BO), full fidelity
``smac-hb``           SMAC3 ``MultiFidelityFacade`` with Hyperband (eta 3, 1-52 epochs) (``hpo.cs``)
``dnc-asha``          lightning-dnc with ``fidelity="asha"`` (its default strategy, every stage in
                      rungs 6, 18, 52 epochs, eta 3; promoted candidates continue from their rung),
                      ``hpo.asha``; compared with its fixed-epoch twin ``dnc``
====================  ==============================================================================

Every method samples the shared reduced space (``hpo.space``), batch size included on the same
linear integer scale, and only a result at 52 epochs can be a method's best (``hpo.metrics``).
"""

from __future__ import annotations

from typing import Any

from hpo import asha as hpo_asha
from hpo import cs as hpo_cs
from hpo import dnc as hpo_dnc
from hpo import optuna as hpo_optuna
from hpo.trace import Trace

METHODS = ("dnc-paper", "dnc", "dnc-revisit", "dnc-train-first", "random", "tpe", "tpe-mv", "tpe-hyperband",
           "asha", "one-epoch-topk", "dehb", "smac", "smac-hb", "dnc-asha")
#: Methods run only when named (``--methods``): ``dnc-asha``'s strategies and rung models compared,
#: and the default strategy with each BO model (``dnc-composite``, ``dnc-scalar``; ``hpo.dnc``).
EXTRA_METHODS = (*(m for m in hpo_asha.VARIANTS if m != "dnc-asha"), "dnc-composite", "dnc-scalar")
#: Every method's driver module (one fact, one place).
OWNER: dict[str, Any] = {
    **{m: hpo_dnc for m in hpo_dnc.DNC_SETTINGS},
    **{m: hpo_optuna for m in (*hpo_optuna.SETTINGS, "one-epoch-topk")},
    **{m: hpo_cs for m in hpo_cs.METHODS},
    **{m: hpo_asha for m in hpo_asha.VARIANTS},
}
#: The method each one's head-to-head counts compare with, when not the suite's ``ours``
#: (a ``dnc-asha`` variant: the same strategy at fixed epochs).
TWIN: dict[str, str] = dict(hpo_asha.FIXED_TWIN)
# Re-exported for the tests and the real suite.
DNC_SETTINGS = hpo_dnc.DNC_SETTINGS
EXPLORE = hpo_dnc.EXPLORE
DNC_STAGE2_OPTIONS = hpo_dnc.DNC_STAGE2_OPTIONS
stage_sizes = hpo_dnc.stage_sizes


def _owner(method: str) -> Any:
    try:
        return OWNER[method]
    except KeyError:
        raise ValueError(f"`method` must be one of {list(METHODS + EXTRA_METHODS)}, got {method!r}.") from None


def missing(method: str) -> str | None:
    """Why ``method`` cannot run here (its package is missing, with the ``pip`` line), else ``None``."""
    owner = _owner(method)
    if owner is hpo_cs:
        return hpo_cs.missing(method)
    if owner is hpo_optuna and method != "one-epoch-topk":
        try:
            import optuna  # noqa: F401
        except ImportError as err:
            return f"{err}; pip install 'lightning-dnc[bench]'"
    return None


def settings_of(method: str, budget: float) -> dict[str, Any]:
    """The settings a method runs with (stored in each JSON row)."""
    return _owner(method).settings_of(method, budget)


def run_method(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    """Run ``method`` until ``trace``'s budget is spent (or the method ends); returns its facts."""
    return _owner(method).run(method, trace, seed)
