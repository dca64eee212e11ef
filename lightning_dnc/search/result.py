"""What a search returns: the ranking, the best configuration, the Pareto front and re-scoring.

Losses are never stored: they are recomputed from each trial's raw metrics with the result's
:class:`Objective`, so :meth:`SearchResult.rescore` can rank the same trials for another ``wc`` or
penalty without training anything.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lightning_dnc.search.objective import Objective
from lightning_dnc.search.trial import Trial

RESULT_VERSION = 1


@dataclass(frozen=True)
class RankedTrial:
    """One trial in a ranking.

    Attributes
    ----------
    rank : int
        0 for the best.
    trial : Trial
    loss : float
        Its loss under the ranking's objective.
    """

    rank: int
    trial: Trial
    loss: float

    @property
    def trial_id(self) -> int:
        """The trial's id."""
        return self.trial.trial_id

    @property
    def config(self) -> dict[str, Any]:
        """The complete configuration that was trained (architecture, lr, weight decay, batch size,
        epochs)."""
        return self.trial.trained_config

    def to_dict(self) -> dict[str, Any]:
        """Plain summary: rank, trial id, stage, loss, metrics and config."""
        ev = self.trial.evaluation
        return {
            "rank": self.rank,
            "trial_id": self.trial_id,
            "stage": self.trial.stage,
            "loss": self.loss,
            "best_val_acc": None if ev is None else ev.best_val_acc,
            "best_val_loss": None if ev is None else ev.best_val_loss,
            "t_tr": None if ev is None else ev.t_tr,
            "n_params": None if ev is None else ev.n_params,
            "config": self.config,
        }


class SearchResult:
    """The outcome of a search (or of a search so far).

    Parameters
    ----------
    trials : sequence of Trial
        Every trial, by id (pending and failed ones included).
    objective : Objective
        The objective with its references filled in.
    candidate_ids : sequence of int, optional
        The trials eligible for the ranking (the search's final candidates: stage-3 trials and
        the stage-2 winner). ``None``: every successful trial.
    k : int, default 1
        Length of :attr:`top_k`.
    family : {"cnn", "mlp"}, optional
    meta : dict, optional
        Plain data about the run (settings, stage-2 decisions, ...), kept by ``to_json``.

    Raises
    ------
    ValueError
        When no eligible trial has a loss.
    """

    def __init__(
        self,
        trials: Sequence[Trial],
        objective: Objective,
        candidate_ids: Sequence[int] | None = None,
        k: int = 1,
        family: str | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be an integer >= 1, got {k!r}.")
        self.trials: tuple[Trial, ...] = tuple(trials)
        self.objective = objective
        self.candidate_ids = None if candidate_ids is None else tuple(int(i) for i in candidate_ids)
        self.k = k
        self.family = family
        self.meta: dict[str, Any] = dict(meta or {})
        by_id = {t.trial_id: t for t in self.trials}
        ids = sorted(by_id) if self.candidate_ids is None else self.candidate_ids
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ValueError(f"`candidate_ids` {unknown} are not trial ids of `trials`.")
        scored = []
        for i in ids:
            ev = by_id[i].evaluation
            loss = None if ev is None else objective.loss(ev)
            if loss is not None:
                scored.append((loss, i))
        if not scored:
            raise ValueError("No successful trial among the candidates: there is nothing to rank.")
        self.ranking: list[RankedTrial] = [
            RankedTrial(rank, by_id[i], loss) for rank, (loss, i) in enumerate(sorted(scored))
        ]

    # ------------------------------------------------------------------ ranking
    @property
    def top_k(self) -> list[RankedTrial]:
        """The ``k`` best candidates, best first."""
        return self.ranking[: self.k]

    @property
    def best(self) -> RankedTrial:
        """The best candidate."""
        return self.ranking[0]

    @property
    def best_config(self) -> dict[str, Any]:
        """The best complete training configuration (architecture + lr + weight decay + batch
        size + epochs). ``weight_decay`` may be ``"auto"`` (SPEC §2 rule, resolved when the
        model is built)."""
        return self.best.config

    @property
    def best_loss(self) -> float:
        """The best candidate's loss."""
        return self.best.loss

    def pareto_front(self) -> list[Trial]:
        """Successful trials not dominated in (f_p, t_tr, N_p), all minimised.

        ``f_p`` is ``1 - best_val_acc`` (classification) or the scaled validation loss
        (regression). Trials lacking one of the three values are left out. Sorted by f_p, then
        t_tr, N_p and trial id.
        """
        points = []
        for t in self.trials:
            ev = t.evaluation
            if ev is None or not ev.ok:
                continue
            f_p = self.objective.performance(ev)
            values = (f_p, ev.t_tr, ev.n_params)
            if all(v is not None and math.isfinite(float(v)) for v in values):
                points.append((tuple(float(v) for v in values), t))  # type: ignore[arg-type]
        front = [
            (p, t)
            for p, t in points
            if not any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)) for q, _ in points)
        ]
        front.sort(key=lambda item: (*item[0], item[1].trial_id))
        return [t for _, t in front]

    def rescore(
        self,
        wc: float | None = None,
        penalize: str | None = None,
        *,
        t_tr_ref: float | None = None,
        n_params_ref: float | None = None,
        k: int | None = None,
    ) -> SearchResult:
        """The ranking of every successful trial under another trade-off, without training.

        Parameters
        ----------
        wc : float, optional
            New cost weight (>= 0); this result's by default.
        penalize : {"t_tr", "n_params"}, optional
            New penalty; this result's by default.
        t_tr_ref : float, optional
            Reference seconds per epoch; this result's by default, else the first successful
            trial's (SPEC §1).
        n_params_ref : float, optional
            Reference parameter count; this result's by default: N_p of the largest network of the
            searched space, which the search stores whatever it penalised (SPEC §1). Never taken
            from a trial.
        k : int, optional
            Length of the new ``top_k``; this result's by default.

        Returns
        -------
        SearchResult
            Ranking all successful trials (the greedy path of the search was specific to its own
            objective, so every evaluated configuration competes).

        Raises
        ------
        ValueError
            When N_p is penalised and no ``n_params_ref`` is known (a result saved by 0.1.0 from a
            search that penalised ``t_tr``): pass it.
        """
        n_ref = self.objective.n_params_ref if n_params_ref is None else n_params_ref
        objective = Objective(
            wc=self.objective.wc if wc is None else wc,
            penalize=self.objective.penalize if penalize is None else penalize,
            t_tr_ref=self.objective.t_tr_ref if t_tr_ref is None else t_tr_ref,
            n_params_ref=n_ref,
            regression_scale=self.objective.regression_scale,
        )
        if objective.penalize == "n_params" and n_ref is None:
            raise ValueError(
                "This result does not know N_p of the largest network of its space (`n_params_ref`), the reference "
                "for penalising N_p (SPEC §1); pass `n_params_ref=` "
                "(lightning_dnc.models.largest_network_params(space, input_shape, num_outputs))."
            )
        evaluations = (t.evaluation for t in sorted(self.trials, key=lambda t: t.trial_id) if t.evaluation)
        objective = replace(objective.with_references(evaluations), n_params_ref=n_ref)
        meta = {**self.meta, "rescored_from": self.objective.to_dict()}
        return SearchResult(self.trials, objective, None, self.k if k is None else k, self.family, meta)

    # ------------------------------------------------------------------ export
    def summary(self) -> dict[str, Any]:
        """Plain dict: counts per stage and state, the objective, the best and the top-k."""
        stages: dict[str, dict[str, int]] = {}
        for t in self.trials:
            counts = stages.setdefault(str(t.stage), {"ok": 0, "failed": 0, "pending": 0})
            counts[t.state] += 1
        return {
            "family": self.family,
            "objective": self.objective.to_dict(),
            "trials": len(self.trials),
            "ok": sum(1 for t in self.trials if t.state == "ok"),
            "failed": sum(1 for t in self.trials if t.state == "failed"),
            "pending": sum(1 for t in self.trials if t.state == "pending"),
            "per_stage": stages,
            "best": self.best.to_dict(),
            "top_k": [r.to_dict() for r in self.top_k],
            "pareto_front": [t.trial_id for t in self.pareto_front()],
        }

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict (see :meth:`from_dict`)."""
        return {
            "version": RESULT_VERSION,
            "family": self.family,
            "objective": self.objective.to_dict(),
            "candidate_ids": None if self.candidate_ids is None else list(self.candidate_ids),
            "k": self.k,
            "meta": self.meta,
            "trials": [t.to_dict() for t in self.trials],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchResult:
        """Inverse of :meth:`to_dict`."""
        if data.get("version") != RESULT_VERSION:
            raise ValueError(
                f"Search result format version {data.get('version')!r} is not supported; expected {RESULT_VERSION}."
            )
        return cls(
            trials=[Trial.from_dict(t) for t in data["trials"]],
            objective=Objective.from_dict(data["objective"]),
            candidate_ids=data.get("candidate_ids"),
            k=int(data.get("k", 1)),
            family=data.get("family"),
            meta=data.get("meta"),
        )

    def to_json(self, indent: int | None = 2) -> str:
        """The result as JSON text (strict JSON: non-finite numbers become ``null``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> SearchResult:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def __repr__(self) -> str:
        return (
            f"SearchResult(family={self.family!r}, trials={len(self.trials)}, best_trial={self.best.trial_id}, "
            f"best_loss={self.best_loss:.4f})"
        )
