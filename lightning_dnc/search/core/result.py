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

from lightning_dnc.search.core.cost_estimates import CostEstimates, decision_loss
from lightning_dnc.search.core.objective import REFERENCE_FIELDS, Objective
from lightning_dnc.search.core.trial import Trial
from lightning_dnc.space.config import auto_weight_decay
from lightning_dnc.validation import SettingError, check_choices
from lightning_dnc.vocabulary import PENALTIES

DEFAULT_PARETO_COSTS = ("t_tr", "n_params")
"""Costs of :meth:`SearchResult.pareto_front` besides ``f_p`` when none are chosen."""

RESULT_VERSION = 1


@dataclass(frozen=True)
class RankedTrial:
    """One trial in a ranking.

    Attributes
    ----------
    rank : int
        1 for the best (as every table and report prints it).
    trial : Trial
    loss : float
        Its loss under the ranking's objective (with its denoised cost where the result has one).
    cost_estimate : dict, optional
        ``{"measure", "measured", "line", "estimate", "held_out"}``: the penalised measure as measured,
        the cost model's line at the configuration, the denoised estimate the ranking used and the
        model's prediction from the other trials (seconds;
        :mod:`~lightning_dnc.search.core.cost_estimates`).
    """

    rank: int
    trial: Trial
    loss: float
    cost_estimate: dict[str, Any] | None = None

    @property
    def trial_id(self) -> int:
        """The trial's id."""
        return self.trial.trial_id

    @property
    def config(self) -> dict[str, Any]:
        """What a final training uses: the configuration that was trained (architecture, lr, weight
        decay, batch size), with ``weight_decay="auto"`` resolved to the number it meant (SPEC §2
        rule of the trained ``N_p``) and without ``epochs`` (the search's epochs per candidate,
        ``trial.trained_config["epochs"]``; a final training sets its own)."""
        return final_training_config(self.trial.trained_config, self.trial.evaluation)

    def __repr__(self) -> str:
        """A one-row table: rank, id, stage, loss, metric, t_tr, N_p, configuration."""
        from lightning_dnc.search.core.tables import header_for, text_table, trial_row

        header = ["rank", *header_for([self.trial.evaluation])]
        return text_table(header, [[str(self.rank), *trial_row(self.trial, self.loss, self.config)]])

    def to_dict(self) -> dict[str, Any]:
        """Plain summary: rank (1 = best), trial id, stage, loss, metrics (regression: in the user's units), every
        cost and config."""
        ev = self.trial.evaluation
        return {
            "rank": self.rank,
            "trial_id": self.trial_id,
            "stage": self.trial.stage,
            "loss": self.loss,
            "best_val_acc": None if ev is None else ev.best_val_acc,
            "best_val_loss": None if ev is None else ev.best_val_loss,
            **{name: None if ev is None else getattr(ev, name)
               for name in ("t_tr", "t_tr_epoch", "t_tr_step", "n_params", "flops", "flops_train", "latency",
                            "memory")},
            **({"regression": dict(ev.extra["regression"])} if ev is not None and ev.extra.get("regression") else {}),
            **({"cost_estimate": dict(self.cost_estimate)} if self.cost_estimate else {}),
            "config": self.config,
        }


def final_training_config(config: Mapping[str, Any], evaluation: Any = None) -> dict[str, Any]:
    """``config`` as a final training uses it: no ``epochs``, ``weight_decay="auto"`` resolved.

    ``"auto"`` becomes :func:`~lightning_dnc.space.config.auto_weight_decay` of the trained
    ``N_p`` (``evaluation.n_params``), the value the candidate trained with; it stays ``"auto"``
    when the parameter count is unknown.
    """
    out = {k: v for k, v in config.items() if k != "epochs"}
    n_params = getattr(evaluation, "n_params", None)
    if out.get("weight_decay") == "auto" and isinstance(n_params, int) and "family" in out:
        out["weight_decay"] = auto_weight_decay(out["family"], n_params)
    return out


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
    cost_estimates : CostEstimates, optional
        The denoised costs the search decided on (composite model, measured times): the ranking
        reads them instead of the raw measurements, which stay in the trials.

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
        cost_estimates: CostEstimates | None = None,
    ) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"`k` must be an integer >= 1, got {k!r}.")
        self.trials: tuple[Trial, ...] = tuple(trials)
        self.objective = objective
        self.candidate_ids = None if candidate_ids is None else tuple(int(i) for i in candidate_ids)
        self.k = k
        self.family = family
        self.meta: dict[str, Any] = dict(meta or {})
        self.cost_estimates = cost_estimates
        by_id = {t.trial_id: t for t in self.trials}
        ids = sorted(by_id) if self.candidate_ids is None else self.candidate_ids
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise ValueError(f"`candidate_ids` {unknown} are not trial ids of `trials`.")
        scored = [(loss, i) for i in ids if (loss := self.loss_of(by_id[i])) is not None]
        if not scored:
            raise ValueError("No successful trial among the candidates: there is nothing to rank.")
        self.ranking: list[RankedTrial] = [
            RankedTrial(rank, by_id[i], loss, self.cost_estimate(i)) for rank, (loss, i) in enumerate(sorted(scored), 1)
        ]

    def loss_of(self, trial: Trial) -> float | None:
        """The loss the ranking reads of ``trial`` (its denoised cost where :attr:`cost_estimates` has one)."""
        return decision_loss(self.objective, trial.evaluation, trial.trial_id, self.cost_estimates)

    def cost_estimate(self, trial_id: int) -> dict[str, Any] | None:
        """``{"measure", "measured", "line", "estimate", "held_out"}`` of a trial, or None without an estimate."""
        ce = self.cost_estimates
        if ce is None or trial_id not in ce.estimate:
            return None
        return {"measure": ce.penalize, "measured": ce.measured[trial_id], "line": ce.line[trial_id],
                "estimate": ce.estimate[trial_id], "held_out": ce.held_out.get(trial_id)}

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
        """What the final training uses: architecture + lr + weight decay (a number) + batch size.

        No ``epochs``: the final training's come from the Trainer's ``max_epochs`` (``--epochs``).
        See :attr:`RankedTrial.config`."""
        return self.best.config

    @property
    def best_loss(self) -> float:
        """The best candidate's loss."""
        return self.best.loss

    def pareto_front(self, costs: Sequence[str] = DEFAULT_PARETO_COSTS) -> list[Trial]:
        """Successful trials not dominated in ``(f_p, *costs)``, all minimised.

        Parameters
        ----------
        costs : sequence of str, default ``("t_tr", "n_params")``
            Measures from :data:`~lightning_dnc.vocabulary.PENALTIES`; ``t_tr`` is the objective's
            ``t_tr_mode`` value. ``f_p`` is ``1 - best_val_acc`` (classification) or the scaled
            validation loss (regression).

        Returns
        -------
        list of Trial
            Trials lacking one of the values are left out. Sorted by f_p, then the costs in
            order, then trial id.
        """
        front = self._front(costs)
        return [t for _, t in front]

    def pareto_points(self, costs: Sequence[str] = DEFAULT_PARETO_COSTS) -> list[dict[str, Any]]:
        """The Pareto front of :meth:`pareto_front` as plain data: id, stage, ``f_p``, costs, configuration."""
        costs = _check_costs(costs)
        return [{"trial_id": t.trial_id, "stage": t.stage, "group": t.group, "f_p": values[0],
                 **dict(zip(costs, values[1:])), "config": t.trained_config}
                for values, t in self._front(costs)]

    def _front(self, costs: Sequence[str]) -> list[tuple[tuple[float, ...], Trial]]:
        costs = _check_costs(costs)
        points = []
        for t in self.trials:
            ev = t.evaluation
            if ev is None or not ev.ok:
                continue
            values = (self.objective.performance(ev), *(self.objective.measure(ev, name) for name in costs))
            if all(v is not None and math.isfinite(float(v)) for v in values):
                points.append((tuple(float(v) for v in values), t))  # type: ignore[arg-type]
        front = [
            (p, t)
            for p, t in points
            if not any(all(a <= b for a, b in zip(q, p)) and any(a < b for a, b in zip(q, p)) for q, _ in points)
        ]
        front.sort(key=lambda item: (*item[0], item[1].trial_id))
        return front

    def rescore(
        self,
        wc: float | None = None,
        penalize: str | None = None,
        *,
        k: int | None = None,
        t_tr_mode: str | None = None,
        **references: float | None,
    ) -> SearchResult:
        """The ranking of every successful trial under another trade-off, without training.

        Parameters
        ----------
        wc : float, optional
            New cost weight (>= 0); this result's by default.
        penalize : {"t_tr", "n_params", "flops", "latency", "memory"}, optional
            New penalty; this result's by default.
        k : int, optional
            Length of the new ``top_k``; this result's by default.
        t_tr_mode : {"step", "epoch"}, optional
            Rank by the other ``t_tr`` measurement; this result's by default.
        **references : float
            ``t_tr_ref``, ``n_params_ref``, ``flops_ref``, ``latency_ref``, ``memory_ref``; this
            result's by default, else the first successful trial's value.

        Returns
        -------
        SearchResult
            Ranking all successful trials (the greedy path of the search was specific to its own
            objective, so every evaluated configuration competes); in a multi-fidelity search,
            those that trained the full ``search_epochs``.

        Raises
        ------
        ValueError
            For an unknown reference name, or when no trial recorded the penalised measure
            (runs of lightning-dnc 0.1.0 have no ``flops``, ``latency`` or ``memory``), or when the
            penalised cost's reference is unknown: only ``t_tr_ref`` may come from a trial (the
            first candidate, SPEC §1); the others are those of the largest network of the searched
            space, which a search stores whatever it penalised (pass them for a result of 0.1.0).
        """
        unknown = sorted(set(references) - set(REFERENCE_FIELDS.values()))
        if unknown:
            raise SettingError(unknown[0], f"Unknown reference(s) {unknown}; valid: {sorted(REFERENCE_FIELDS.values())}.")
        settings = self.objective.to_dict()
        settings.update({name: value for name, value in references.items() if value is not None})
        if wc is not None:
            settings["wc"] = wc
        if penalize is not None:
            settings["penalize"] = penalize
        if t_tr_mode is not None:
            settings["t_tr_mode"] = t_tr_mode
        objective = Objective(**settings)
        ordered = [t.evaluation for t in sorted(self.trials, key=lambda t: t.trial_id) if t.evaluation is not None]
        if objective.wc > 0 and not any(ev.ok and objective.measure(ev) is not None for ev in ordered):
            raise ValueError(
                f"No successful trial recorded `{objective.penalize}`, so the run cannot be ranked by it (runs of "
                "lightning-dnc 0.1.0 recorded only t_tr and n_params)."
            )
        if objective.wc > 0 and objective.penalize != "t_tr" and objective.reference is None:
            field = REFERENCE_FIELDS[objective.penalize]
            raise ValueError(
                f"This result does not know `{field}`, the {objective.penalize} of the largest network of its space "
                f"(the reference for penalising it, SPEC §1); pass `{field}=` "
                "(lightning_dnc.models.largest_network_params(space, input_shape, num_outputs) for N_p)."
            )
        sizes = {field: getattr(objective, field) for name, field in REFERENCE_FIELDS.items() if name != "t_tr"}
        objective = replace(objective.with_references(ordered), **sizes)  # only t_tr_ref comes from a trial
        meta = {**self.meta, "rescored_from": self.objective.to_dict()}
        same_measure = (objective.penalize == self.objective.penalize and objective.t_tr_mode == self.objective.t_tr_mode
                        and references.get(REFERENCE_FIELDS[objective.penalize]) is None)
        estimates = self.cost_estimates if same_measure else None  # the estimates are of the same measurements
        full = None  # multi-fidelity searches: only candidates that trained the whole budget compete
        if not all(t.at_top for t in self.trials):
            full = [t.trial_id for t in self.trials if t.at_top]
        return SearchResult(self.trials, objective, full, self.k if k is None else k, self.family, meta, estimates)

    # ------------------------------------------------------------------ export
    def summary(self) -> dict[str, Any]:
        """The result in plain data, for logs and notebooks (``print(result)`` shows a table).

        Returns
        -------
        dict
            ``family``; ``objective`` (its settings and references); ``trials``, ``ok``,
            ``failed``, ``pending`` (counts) and ``per_stage`` (the same counts per stage);
            ``best`` and ``top_k`` (:meth:`RankedTrial.to_dict`: rank (1 = best), trial id, stage, loss,
            ``best_val_acc``/``best_val_loss``, every cost (``t_tr``, ``t_tr_epoch``, ``t_tr_step``,
            ``n_params``, ``flops``, ``flops_train``, ``latency``, ``memory``), for regression
            ``regression`` = ``{"rmse", "mae", "r2"}`` in the targets' units, and ``config``);
            ``pareto_front`` (trial ids); ``budget_ended`` (None, or which limit ended it).
        """
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
            "budget_ended": self.meta.get("budget_ended"),
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
            "cost_estimates": None if self.cost_estimates is None else self.cost_estimates.to_dict(),
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
            cost_estimates=None if data.get("cost_estimates") is None else CostEstimates.from_dict(data["cost_estimates"]),
        )

    def to_json(self, indent: int | None = 2) -> str:
        """The result as JSON text (strict JSON: non-finite numbers become ``null``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> SearchResult:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def to_dataframe(self) -> Any:
        """Every trial as a ``pandas.DataFrame``, one row per trial (needs the ``pandas`` extra).

        Columns: see :func:`lightning_dnc.search.core.tables.result_records`: every cost the search
        measured (``t_tr``, ``t_tr_step``, ``t_tr_epoch``, ``n_params``, ``flops``, ``flops_train``,
        ``latency``, ``memory``); ``rank`` is 1 for the best and empty for trials outside the
        ranking.

        Raises
        ------
        ModuleNotFoundError
            When pandas is not installed; the message ends with the ``pip install`` line.
        """
        from lightning_dnc._optional import require
        from lightning_dnc.search.core.tables import result_records

        require("pandas", "`SearchResult.to_dataframe()`")
        import pandas as pd

        return pd.DataFrame(result_records(self)).set_index("trial_id")

    def __repr__(self) -> str:
        """A short table: the counts, then the best ranked trials (id, stage, loss, metric, t_tr, N_p, config)."""
        from lightning_dnc.search.core.tables import result_text

        return result_text(self)


def _check_costs(costs: Sequence[str]) -> tuple[str, ...]:
    return check_choices("costs", costs, PENALTIES)
