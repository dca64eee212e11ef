"""Multi-fidelity search (``fidelity="asha"``): the rungs, the promotion rule, and which checkpoints
are still needed. Pure functions of the trials told so far, so a replayed journal makes the same
promotions.

Rungs
-----
A candidate trains to the epochs of its rung, ``min_epochs * eta**k`` for ``k = 0, 1, ...`` below
``search_epochs``, and the top rung is ``search_epochs`` itself (:func:`rung_epochs`). An
intermediate rung closer than a factor ``sqrt(eta)`` to the top is left out: it would add one more
comparison while saving almost no epochs (with 10 search epochs and ``eta = 3``: 1, 3, 10, not
1, 3, 9, 10). A promoted candidate continues from the checkpoint of its previous rung with the
learning-rate schedule of the full ``search_epochs``, so its top-rung result is the one an
uninterrupted run would have given.

Promotion (asynchronous successive halving)
-------------------------------------------
Whenever a worker asks for work, the highest rung first: a candidate whose result at rung ``k`` is
among the best ``floor(n_k / eta)`` of the ``n_k`` results finished at rung ``k`` (failed runs
count in ``n_k`` and rank last) and that was not promoted yet goes to rung ``k + 1``
(:func:`next_promotion`). Only when nothing can be promoted does a new candidate start. When the
stage has started all its candidates, nothing runs and no candidate reached the top rung, the best
candidate of the highest rung reached is promoted anyway (:func:`forced_promotion`), so every
stage hands on a top-rung winner.

Rung objective
--------------
The objective of a rung result is SPEC §1 with ``f_p`` from the best validation accuracy up to the
rung's epoch and ``t_tr`` from epochs 2..e (epoch 1 when e = 1): the evaluator reports a continued
candidate's whole curve and epoch times, so the engine scores a rung trial like any other.

What the inner stage sees (``rung_model``)
------------------------------------------
The stage inside :class:`~lightning_dnc.search.fidelity.rung_stage.Rungs` sees one point per
candidate (:func:`candidate_points`):

``"highest"``
    Its result at the highest rung it finished (as soon as its first rung is told).
``"shifted"``
    As ``"highest"``, plus the median gap between the top rung and that rung over the candidates
    that finished both (:func:`rung_gaps`; no shift before such pairs exist): a learning-curve
    correction that puts results of every rung on the top rung's scale.
``"top"``
    Its top-rung result once its successive halving is settled; a candidate stopped below the top
    counts as failed (the GP's pessimistic stand-in), one that may still rise is pending.

A stage that decides on final results (:attr:`~lightning_dnc.search.stages.stage.Stage.waits_for_final`,
the grid) always sees ``"top"``, and every stage's winner and ranking are judged on it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import statistics

from lightning_dnc.search.core.records import Evaluation
from lightning_dnc.search.core.trial import RungRun, Trial
from lightning_dnc.validation import SettingError, check_choice, check_int

FIDELITIES = ("asha",)
"""Values of ``fidelity`` besides ``None`` (every candidate at ``search_epochs``, the paper)."""
RUNG_MODELS = ("highest", "shifted", "top")
"""Values of ``rung_model``."""
DEFAULT_RUNG_MODEL = "shifted"
"""``rung_model`` when none is given (chosen on the benchmark's tuning half, docs/multi-fidelity.md)."""
FIDELITY_KEYS = ("fidelity", "min_epochs", "reduction_factor", "rung_model")
"""Settings of multi-fidelity searches (left out of the journal header when ``fidelity`` is None)."""

LossOf = Callable[[Trial], "float | None"]


def default_min_epochs(search_epochs: int, eta: int) -> int:
    """Epochs of the lowest rung when not given: ``search_epochs / eta**3`` rounded, at least 1
    (100 epochs, eta 3: rungs 4, 12, 36, 100)."""
    return max(1, min(int(search_epochs), round(search_epochs / eta**3)))


def rung_epochs(search_epochs: int, min_epochs: int, eta: int) -> tuple[int, ...]:
    """The epochs of every rung, lowest first; the last is ``search_epochs`` (see the module notes)."""
    rungs = []
    epochs = int(min_epochs)
    while epochs < search_epochs:
        rungs.append(epochs)
        epochs *= eta
    if len(rungs) > 1 and rungs[-1] * math.sqrt(eta) > search_epochs:
        rungs.pop()  # the lowest rung is the user's min_epochs and always kept
    return (*rungs, int(search_epochs))


def check_fidelity(fidelity: Any, min_epochs: Any, reduction_factor: Any, rung_model: Any, search_epochs: int,
                   patience: int | None) -> dict[str, Any]:
    """The multi-fidelity settings, validated and with ``min_epochs`` defaulted.

    Raises
    ------
    SettingError
        Naming the setting, the value and what is allowed.
    """
    if fidelity is not None:
        check_choice("fidelity", fidelity, FIDELITIES)
    eta = check_int("reduction_factor", reduction_factor, 2)
    if rung_model is not None:
        check_choice("rung_model", rung_model, RUNG_MODELS)
    if fidelity is None:
        for name, value in (("min_epochs", min_epochs), ("rung_model", rung_model)):
            if value is not None:
                raise SettingError(name, f"`{name}` ({value!r}) applies only with fidelity='asha'; "
                                         f"set `fidelity` to 'asha' or leave `{name}` unset.")
        return {"fidelity": None, "min_epochs": None, "reduction_factor": eta, "rung_model": None}
    rung_model = DEFAULT_RUNG_MODEL if rung_model is None else rung_model
    if patience is not None:
        raise SettingError("patience", f"`patience` ({patience!r}) cannot be combined with fidelity='asha': the "
                                       "rungs decide when a candidate stops. Leave one of them unset.",
                           others=("fidelity",))
    if min_epochs is None:
        min_epochs = default_min_epochs(search_epochs, eta)
    min_epochs = check_int("min_epochs", min_epochs, 1)
    if min_epochs > search_epochs:
        raise SettingError("min_epochs", f"`min_epochs` must be between 1 and `search_epochs` ({search_epochs}), "
                                         f"got {min_epochs!r}.", others=("search_epochs",))
    return {"fidelity": fidelity, "min_epochs": min_epochs, "reduction_factor": eta, "rung_model": rung_model}


# ---------------------------------------------------------------------------------- ladder views
def by_candidate(trials: Iterable[Trial]) -> dict[int, list[Trial]]:
    """The rung trials of each candidate (keyed by its first trial's id), lowest rung first."""
    out: dict[int, list[Trial]] = {}
    for trial in trials:
        if trial.rung is not None:
            out.setdefault(trial.rung.candidate, []).append(trial)
    for runs in out.values():
        runs.sort(key=lambda t: t.rung.rung)  # type: ignore[union-attr]
    return out


def rung_results(trials: Iterable[Trial], rung: int, loss_of: LossOf) -> list[tuple[float | None, int]]:
    """``(loss or None, candidate)`` of every finished trial at ``rung`` (None: failed or unscorable)."""
    return [(loss_of(t), t.rung.candidate) for t in trials  # type: ignore[union-attr]
            if t.rung is not None and t.rung.rung == rung and t.evaluation is not None]


def _ranked(results: list[tuple[float | None, int]]) -> list[int]:
    return [candidate for _, candidate in sorted((loss, c) for loss, c in results if loss is not None)]


def next_promotion(trials: list[Trial], top: int, eta: int, loss_of: LossOf) -> Trial | None:
    """The trial to promote now by the ASHA rule (highest rung first), or ``None``."""
    ladder = by_candidate(trials)
    for rung in reversed(range(top)):
        results = rung_results(trials, rung, loss_of)
        for candidate in _ranked(results)[: len(results) // eta]:
            runs = ladder[candidate]
            if runs[-1].rung.rung == rung:  # type: ignore[union-attr] # not promoted yet
                return runs[-1]
    return None


def forced_promotion(trials: list[Trial], top: int, loss_of: LossOf) -> Trial | None:
    """When no candidate finished the top rung: the best unpromoted one of the highest rung reached."""
    if _ranked(rung_results(trials, top, loss_of)):
        return None
    ladder = by_candidate(trials)
    for rung in reversed(range(top)):
        waiting = [c for c in _ranked(rung_results(trials, rung, loss_of)) if ladder[c][-1].rung.rung == rung]  # type: ignore[union-attr]
        if waiting:
            return ladder[waiting[0]][-1]
    return None


def first_run(trial_id: int, ladder: Sequence[int]) -> RungRun:
    """The run of a new candidate: from scratch to the lowest rung."""
    return RungRun(0, ladder[0], 0, None, trial_id, save=len(ladder) > 1)


def promotion(trial: Trial, ladder: Sequence[int]) -> RungRun:
    """The run that continues ``trial``'s candidate from its checkpoint to the next rung."""
    run = trial.rung
    if run is None:
        raise ValueError(f"Trial {trial.trial_id} is not a rung run: it cannot be promoted.")
    rung = run.rung + 1
    return RungRun(rung, ladder[rung], run.epochs, trial.trial_id, run.candidate, save=rung < len(ladder) - 1)


def synchronous_promotion(trials: list[Trial], top: int, eta: int, loss_of: LossOf,
                          new_candidates_left: int) -> Trial | None:
    """Successive halving in waves, for a bracket whose candidates are all known up front (a grid
    group): once every candidate was proposed and every run of rung ``k`` told, the best
    ``max(1, floor(n_k / eta))`` of rung ``k`` (by loss, then trial id; failed runs count in ``n_k``)
    go on, in that order; the next wave waits for all of them."""
    if new_candidates_left:
        return None
    ladder = by_candidate(trials)
    for rung in range(top):
        at_rung = [t for t in trials if t.rung.rung == rung]  # type: ignore[union-attr]
        if not at_rung or any(t.evaluation is None for t in at_rung):
            return None
        ranked = sorted((loss, t.trial_id, t.rung.candidate) for t in at_rung  # type: ignore[union-attr]
                        if (loss := loss_of(t)) is not None)
        wave = [candidate for _, _, candidate in ranked[: max(1, len(at_rung) // eta)]]
        waiting = [c for c in wave if ladder[c][-1].rung.rung == rung]  # type: ignore[union-attr]
        if waiting:
            return ladder[waiting[0]][-1]
    return None


def promotion_due(trials: list[Trial], top: int, eta: int, loss_of: LossOf, new_candidates_left: int,
                  synchronous: bool) -> Trial | None:
    """The promotion a bracket makes now: :func:`synchronous_promotion`, or :func:`next_promotion`
    (ASHA) and, once nothing else can happen, :func:`forced_promotion`."""
    if synchronous:
        return synchronous_promotion(trials, top, eta, loss_of, new_candidates_left)
    promote = next_promotion(trials, top, eta, loss_of)
    if promote is None and new_candidates_left == 0 and all(t.evaluation is not None for t in trials):
        promote = forced_promotion(trials, top, loss_of)
    return promote


def bracket_idle(trials: list[Trial], top: int, eta: int, loss_of: LossOf, new_candidates_left: int,
                 synchronous: bool = False) -> bool:
    """True when a bracket's successive halving is over: no candidate to come, nothing running,
    nothing to promote (forced promotions included)."""
    return (new_candidates_left == 0 and all(t.evaluation is not None for t in trials)
            and promotion_due(trials, top, eta, loss_of, 0, synchronous) is None)


def settled(trials: list[Trial], top: int, eta: int, loss_of: LossOf, new_candidates_left: int,
            synchronous: bool = False) -> set[int]:
    """Candidates of a bracket whose result is final: at the top rung, failed, or no longer able to
    rise (all of them once the bracket is idle)."""
    ladder = by_candidate(trials)
    idle = bracket_idle(trials, top, eta, loss_of, new_candidates_left, synchronous)
    out = set()
    for candidate, runs in ladder.items():
        last = runs[-1]
        if last.evaluation is None:
            continue
        if idle or last.rung.rung == top or loss_of(last) is None or not _may_rise(  # type: ignore[union-attr]
                last, trials, ladder, eta, loss_of, new_candidates_left):
            out.add(candidate)
    return out


def rung_gaps(trials: Iterable[Trial], top: int, loss_of: LossOf) -> dict[int, float]:
    """``rung -> median(loss at the top rung - loss at rung)`` over candidates that finished both."""
    losses: dict[int, dict[int, float]] = {}
    for candidate, runs in by_candidate(trials).items():
        for run in runs:
            if run.evaluation is not None and (loss := loss_of(run)) is not None:
                losses.setdefault(candidate, {})[run.rung.rung] = loss  # type: ignore[union-attr]
    gaps = {}
    for rung in range(top):
        pairs = [by_rung[top] - by_rung[rung] for by_rung in losses.values() if top in by_rung and rung in by_rung]
        if pairs:
            gaps[rung] = statistics.median(pairs)
    return gaps


def candidate_points(trials: Sequence[Trial], top: int, model: str, loss_of: LossOf,
                     final: set[int]) -> dict[int, tuple[Evaluation | None, float | None]]:
    """One point per candidate under ``model`` (see the module notes): ``candidate -> (evaluation,
    loss)``; ``(None, None)`` while pending. ``final``: the candidates settled (``"top"``)."""
    gaps = rung_gaps(trials, top, loss_of) if model == "shifted" else {}
    out: dict[int, tuple[Evaluation | None, float | None]] = {}
    for candidate, runs in by_candidate(trials).items():
        if model == "top":
            last = runs[-1]
            if candidate not in final or last.evaluation is None:
                out[candidate] = (None, None)
            else:
                out[candidate] = (last.evaluation, loss_of(last) if last.rung.rung == top else None)  # type: ignore[union-attr]
            continue
        told = [t for t in runs if t.evaluation is not None]
        if not told:
            out[candidate] = (None, None)
            continue
        loss = loss_of(told[-1])
        if loss is not None:
            loss += gaps.get(told[-1].rung.rung, 0.0)  # type: ignore[union-attr]
        out[candidate] = (told[-1].evaluation, loss)
    return out


def rung_summary(ladder: Sequence[int], eta: int, rung_model: str, trials: Sequence[Trial]) -> dict[str, Any]:
    """Plain facts for the result's ``meta["rungs"]``: the rungs, how many candidates reached each,
    and the epochs trained against a fixed-epoch search of the same candidates."""
    told = [t for t in trials if t.rung is not None and t.evaluation is not None]
    reached = [sum(1 for t in told if t.rung.rung == k) for k in range(len(ladder))]  # type: ignore[union-attr]
    candidates = len({t.rung.candidate for t in told})  # type: ignore[union-attr]
    trained = sum(t.rung.epochs - t.rung.from_epoch for t in told)  # type: ignore[union-attr]
    return {"epochs": list(ladder), "reduction_factor": eta, "rung_model": rung_model,
            "candidates_per_rung": reached, "candidates": candidates, "epochs_trained": trained,
            "fixed_epoch_equivalent": candidates * ladder[-1],
            "promotions": sum(1 for t in trials if t.rung is not None and t.rung.rung > 0)}


def released_checkpoints(trials: list[Trial], top: int, eta: int, loss_of: LossOf, new_candidates_left: int,
                         stage_done: bool) -> set[int]:
    """Trials whose checkpoint is no longer needed: its candidate went on (and that run finished),
    failed there, or can no longer be promoted.

    A candidate waiting at rung ``k`` can still be promoted while its rank among the results of
    rung ``k`` is below ``floor((n_k + m) / eta)``, ``m`` being the results rung ``k`` may still
    receive (runs in flight at or below ``k`` and candidates not started yet); the best of a rung
    is kept for :func:`forced_promotion`.
    """
    ladder = by_candidate(trials)
    released: set[int] = set()
    for runs in ladder.values():
        for position, trial in enumerate(runs):
            if trial.rung is None or not trial.rung.save or trial.evaluation is None:
                continue
            if position + 1 < len(runs):
                if runs[position + 1].evaluation is not None:
                    released.add(trial.trial_id)
            elif stage_done or loss_of(trial) is None:
                released.add(trial.trial_id)
            elif not _may_rise(trial, trials, ladder, eta, loss_of, new_candidates_left):
                released.add(trial.trial_id)
    return released


def _may_rise(trial: Trial, trials: list[Trial], ladder: Mapping[int, list[Trial]], eta: int, loss_of: LossOf,
              new_candidates_left: int) -> bool:
    rung = trial.rung.rung  # type: ignore[union-attr]
    results = rung_results(trials, rung, loss_of)
    rank = _ranked(results).index(trial.rung.candidate)  # type: ignore[union-attr]
    coming = new_candidates_left + sum(
        1 for runs in ladder.values()
        if runs[-1].rung.rung <= rung and (runs[-1].evaluation is None or runs[-1].rung.rung < rung)  # type: ignore[union-attr]
    )
    return rank == 0 or rank < (len(results) + coming) // eta


__all__ = ["DEFAULT_RUNG_MODEL", "FIDELITIES", "FIDELITY_KEYS", "RUNG_MODELS", "bracket_idle", "by_candidate",
           "candidate_points", "check_fidelity", "default_min_epochs", "first_run", "forced_promotion",
           "next_promotion", "promotion", "promotion_due", "released_checkpoints", "rung_epochs", "rung_gaps", "rung_results",
           "rung_summary", "settled", "synchronous_promotion"]
