"""The three-stage greedy Deep-n-Cheap search (SPEC §5) as an ask/tell state machine.

The engine proposes complete configurations and is told their :class:`Evaluation`; it never
trains. It owns the trials and the order of the stages; what each stage proposes is decided by a
stage strategy (:mod:`~lightning_dnc.search.stages.stage`): :class:`~lightning_dnc.search.stages.bo_stage.BayesianStage`
for stages 1 and 3, :class:`~lightning_dnc.search.stages.grid_stage.GridStage` for stage 2. Its state is
a pure function of (settings, spaces, the trials proposed and the evaluations told, in order), so
replaying a journal rebuilds it exactly and the next proposals are those an uninterrupted run
would make.

Events
------
Every proposal and every told evaluation is an event (``proposed``/``finished``) handed to the
observers before the state changes; a journal is one observer. Replay applies the same events
without handing them out again.

Final ranking: the trials each stage ranks (:meth:`~lightning_dnc.search.stages.stage.Stage.ranked`:
the successful stage-3 (and stage-4) trials plus the stage-2 winner) that trained the full budget
(:func:`~lightning_dnc.search.core.trial.at_top`), top-k by loss (ties: lower trial id). A failed trial (or one whose metrics cannot be scored) is never best;
the GP of a BO stage is told :func:`~lightning_dnc.search.core.objective.pessimistic_loss` for it. An
evaluation whose ``failure_reason`` is ``"interrupted"`` is journaled but leaves the trial pending:
it is handed out again by :attr:`StagedSearch.pending` (and after a resume).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from lightning_dnc.search.journal.event_log import JOURNAL_VERSION, Journal
from lightning_dnc.search.core.objective import Objective
from lightning_dnc.search.core.cost_estimates import MODELLED_COSTS, CostEstimates, decision_loss, estimate_costs
from lightning_dnc.search.core.records import STATUS_FAILED, Evaluation
from lightning_dnc.search.journal.replay import EventReplayer
from lightning_dnc.search.core.result import SearchResult
from lightning_dnc.search.core.settings import DEFAULT_STRATEGY, DEFAULT_TIME_MODEL, SearchSettings, default_model
from lightning_dnc.search.stages.stage import Stage
from lightning_dnc.search.stages.strategies import build_stages
from lightning_dnc.search.core.trial import Progress, Proposal, Trial, config_key
from lightning_dnc.validation import SettingError, check_choice, check_int
from lightning_dnc.vocabulary import FAMILIES, STAGE_NAMES

_SETTING_ATTRIBUTES = {name: name for name in ("prior_points", "steps", "training_prior_points", "training_steps",
                                                "explore", "stage2_order", "top_k", "seed")} | {"epochs": "search_epochs"}
Observer = Callable[[Mapping[str, Any]], None]


class StagedSearch(EventReplayer):
    """Ask/tell engine of the three-stage search.

    Parameters
    ----------
    family : {"cnn", "mlp"}
    space : CNNSpace or MLPSpace
        The stage-1 space (its ``family`` must equal ``family``).
    training_space : TrainingSpace
        The stage-3 space.
    objective : Objective, optional
        ``Objective()`` (wc 0.1, penalising t_tr) by default.
    prior_points, steps, explore, epochs, stage2_order, top_k, seed, training_prior_points, training_steps
        See :class:`~lightning_dnc.search.core.settings.SearchSettings` (``epochs`` is its
        ``search_epochs``: the epochs of every candidate, put in each proposed config).
    journal : str, os.PathLike or Journal, optional
        Append every proposed and finished trial there. It must be new or empty; to continue a
        journal use :meth:`from_journal`.
    metadata : dict, optional
        Plain JSON data stored in the journal header (e.g. a dataset fingerprint) and restored
        by :meth:`from_journal` as :attr:`metadata`, for the caller to check on resume.
    strategy : {"paper", "joint", "revisit", "train-first"}, optional
        Which stages run (:mod:`~lightning_dnc.search.stages.strategies`); ``"paper"`` is SPEC §5 exactly;
        :data:`~lightning_dnc.search.core.settings.DEFAULT_STRATEGY` when not given.
    model : {"composite", "scalar"}, optional
        What the BO stages' GP learns (see :class:`~lightning_dnc.search.core.settings.SearchSettings`).

    Examples
    --------
    >>> search = StagedSearch("mlp", MLPSpace(), TrainingSpace(), Objective(wc=0.1))  # doctest: +SKIP
    >>> while not search.finished:                                                      # doctest: +SKIP
    ...     for proposal in search.ask():
    ...         search.tell(proposal.trial_id, evaluate(proposal.config))
    >>> search.result().best_config                                                    # doctest: +SKIP
    """

    def __init__(
        self,
        family: str,
        space: Any,
        training_space: Any,
        objective: Objective | None = None,
        *,
        prior_points: int = 15,
        steps: int = 15,
        explore: int = 1000,
        epochs: int | None = None,
        stage2_order: Sequence[str] | None = None,
        top_k: int = 1,
        seed: int = 0,
        journal: str | os.PathLike[str] | Journal | None = None,
        training_prior_points: int | None = None,
        training_steps: int | None = None,
        metadata: Mapping[str, Any] | None = None,
        strategy: str | None = None,
        model: str | None = None,
    ) -> None:
        check_choice("family", family, FAMILIES)
        epochs_given = {} if epochs is None else {"search_epochs": epochs}
        try:
            settings = SearchSettings(
                family=family, objective=Objective() if objective is None else objective, prior_points=prior_points,
                steps=steps, explore=explore, stage2_order=stage2_order, top_k=top_k, seed=seed,
                training_prior_points=training_prior_points, training_steps=training_steps, strategy=strategy, model=model,
                **epochs_given,
            )
        except SettingError as err:
            if err.name != "search_epochs":
                raise
            raise SettingError("epochs", err.renamed("`epochs`")) from None
        self._setup(settings, space, training_space, metadata)
        if journal is not None:
            self.attach_journal(journal, new=True)
        self._advance()

    @classmethod
    def from_settings(cls, settings: SearchSettings, space: Any, training_space: Any, *,
                      journal: str | os.PathLike[str] | Journal | None = None,
                      metadata: Mapping[str, Any] | None = None) -> StagedSearch:
        """A new search from a settings record (its ``family`` must be set)."""
        if settings.family is None:
            raise SettingError("family", "`family` must be set in the settings to start a search (for_family()).")
        search = cls.__new__(cls)
        search._setup(settings, space, training_space, metadata)
        if journal is not None:
            search.attach_journal(journal, new=True)
        search._advance()
        return search

    def _setup(self, settings: SearchSettings, space: Any, training_space: Any,
               metadata: Mapping[str, Any] | None) -> None:
        family = settings.family
        if getattr(space, "family", None) != family:
            kind = "CNNSpace" if family == "cnn" else "MLPSpace"
            raise ValueError(f"`space` must be the {family!r} stage-1 space ({kind}), got {space!r}.")
        if getattr(training_space, "family", None) != "training":
            raise ValueError(f"`training_space` must be a TrainingSpace, got {training_space!r}.")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(f"`metadata` must be a dict of plain JSON data or None, got {metadata!r}.")
        if settings.strategy is None:
            settings = settings.replace(strategy=DEFAULT_STRATEGY)
        if settings.model is None:
            settings = settings.replace(model=default_model(settings.strategy, settings.fidelity))
        if settings.time_model is None:
            settings = settings.replace(time_model=DEFAULT_TIME_MODEL)
        if settings.time_model == "gp" and settings.objective.penalize in MODELLED_COSTS:
            settings = settings.replace(data_shape=None)  # as composite searches ran before the regression
        self.search_settings = settings
        self.family: str = family  # type: ignore[assignment] # checked by the callers
        self.space = space
        self.training_space = training_space
        self.objective = settings.objective
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._trials: list[Trial] = []
        self._keys: set[str] = set()
        self._observers: list[Observer] = []
        self._bound: Objective | None = None
        self._estimates: CostEstimates | None | bool = False  # False: not computed since the last tell
        self._winners: dict[int, int | None] = {}
        self._replayed: tuple[int, ...] = ()  # trials told in earlier sessions (resume)
        self._stages: dict[int, Stage] = build_stages(settings, space, training_space)
        self._order = tuple(self._stages)
        self._done = self._order[-1] + 1
        self._stage = self._order[0]
        self._stages[self._stage].start(self, None)

    def __getattr__(self, name: str) -> Any:
        """The settings the engine has always exposed as attributes (``search.prior_points``, ...)."""
        if name in _SETTING_ATTRIBUTES and "search_settings" in self.__dict__:
            return getattr(self.search_settings, _SETTING_ATTRIBUTES[name])
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ settings / header
    def settings(self) -> dict[str, Any]:
        """The plain settings stored in the journal header (the record without the objective)."""
        return self.search_settings.header_settings()

    def header(self) -> dict[str, Any]:
        """The journal's header event: everything needed to rebuild this search."""
        from lightning_dnc import __version__

        return {
            "event": "header",
            "version": JOURNAL_VERSION,
            "package_version": __version__,
            "seed": self.seed,
            "settings": self.settings(),
            "objective": self.objective.to_dict(),
            "space": self.space.to_dict(),
            "training_space": self.training_space.to_dict(),
            "metadata": self.metadata,
        }

    def record_header(self) -> None:
        """Hand the current :meth:`header` to the observers (after a forced change of space or data)."""
        self._emit(self.header())

    def attach_journal(self, journal: str | os.PathLike[str] | Journal, new: bool = False) -> None:
        """Append every later event to ``journal`` (``new``: it must be empty; the header is written)."""
        journal = journal if isinstance(journal, Journal) else Journal(journal)
        if new:
            if journal.exists():
                raise ValueError(
                    f"`journal` {str(journal.path)!r} already holds a search; continue it with "
                    "StagedSearch.from_journal(path) or choose a new file."
                )
            journal.append(self.header())
        self._observers.append(journal.append)

    # ------------------------------------------------------------------ state
    @property
    def trials(self) -> tuple[Trial, ...]:
        """Every trial so far, by trial id."""
        return tuple(self._trials)

    @property
    def pending(self) -> list[Proposal]:
        """Proposals not told yet (or told ``"interrupted"``): evaluate them and tell."""
        return [t.as_proposal() for t in self._trials if t.evaluation is None]

    @property
    def stage(self) -> int:
        """The running stage (1-3; 0 and 4 in some strategies); one past the last stage once finished."""
        return self._stage

    @property
    def finished(self) -> bool:
        """True when every stage is done (or stage 1 produced no successful trial)."""
        return self._stage == self._done

    @property
    def bound_objective(self) -> Objective:
        """The objective with its measured references filled in (first successful trial)."""
        if self._bound is None:
            self._bound = self.objective.with_references(t.evaluation for t in self._trials if t.evaluation is not None)
        return self._bound

    @property
    def cost_estimates(self) -> CostEstimates | None:
        """The denoised costs decisions read (composite model, measured times, known data shape), else None."""
        if self._estimates is False:
            s = self.search_settings
            self._estimates = (estimate_costs(self._trials, self.objective, s.family, s.data_shape)
                               if s.model == "composite" else None)
        return self._estimates  # type: ignore[return-value]

    def loss_of(self, trial: Trial | int) -> float | None:
        """The loss a decision reads of a trial (``None`` while pending, failed or unscorable): the
        objective's, with the trial's denoised cost where :attr:`cost_estimates` has one."""
        trial = self._trials[trial] if isinstance(trial, int) else trial
        if trial.evaluation is None:
            return None
        return decision_loss(self.bound_objective, trial.evaluation, trial.trial_id, self.cost_estimates)

    def is_known(self, config: dict[str, Any]) -> bool:
        """True when ``config`` was proposed before (in any stage)."""
        return config_key(config) in self._keys

    def known_keys(self) -> set[str]:
        """The keys of every proposed config."""
        return self._keys

    @property
    def best_trial(self) -> Trial | None:
        """The successful trial with the lowest loss so far, any stage (``None`` if none)."""
        scored = [(loss, t.trial_id) for t in self._trials if (loss := self.loss_of(t)) is not None and t.at_top]
        return self._trials[min(scored)[1]] if scored else None

    @property
    def progress(self) -> Progress:
        """Stage, index within it and the planned counts (see :class:`Progress`)."""
        planned = {n: stage.planned(self, n <= self._stage, n < self._stage) for n, stage in self._stages.items()}
        shown = min(self._stage, self._order[-1])
        return Progress(
            stage=self._stage,
            stage_name="finished" if self.finished else STAGE_NAMES[self._stage],
            index=sum(1 for t in self._trials if t.stage == shown),
            planned=planned[shown],
            group=None if self.finished else self._stages[self._stage].current_group,
            finished_trials=sum(1 for t in self._trials if t.evaluation is not None),
            planned_total=sum(planned.values()),
        )

    # ------------------------------------------------------------------ ask / tell
    def ask(self, n: int = 1) -> list[Proposal]:
        """Up to ``n`` new proposals.

        BO stages give ``n`` distinct configs (pending ones are fantasised at the best loss);
        grid stages give up to ``n`` remaining options of the current group. Fewer (possibly
        none) come back while the stage waits for pending trials; ``[]`` with nothing pending
        means the search is finished.

        Parameters
        ----------
        n : int, default 1
        """
        n = check_int("n", n, minimum=1)
        out: list[Proposal] = []
        while len(out) < n:
            self._advance()
            proposal = self._next_proposal()
            if proposal is None:
                if self._advance():
                    continue
                break
            self._emit({"event": "proposed", "trial_id": proposal.trial_id, "stage": proposal.stage,
                        "group": proposal.group, "config": proposal.config,
                        **({} if proposal.rung is None else {"rung": proposal.rung.to_dict()})})
            self._register(proposal)
            out.append(proposal)
        return out

    def tell(self, trial_id: int, evaluation: Evaluation) -> None:
        """Report the evaluation of a proposed trial.

        Parameters
        ----------
        trial_id : int
            From the :class:`Proposal`.
        evaluation : Evaluation
            A failed one is recorded and never ranked; an ``"interrupted"`` one is recorded in the
            journal but leaves the trial pending, to be re-run.

        Raises
        ------
        ValueError
            For an unknown trial id, a trial already told, or a non-:class:`Evaluation`.
        """
        if not isinstance(evaluation, Evaluation):
            raise ValueError(f"`evaluation` must be an Evaluation record, got {type(evaluation).__name__}.")
        trial = self._pending_trial(trial_id)
        self._emit({"event": "finished", "trial_id": trial.trial_id, "evaluation": evaluation.to_dict()})
        self._apply_finished(trial, evaluation)

    def is_told(self, trial_id: int) -> bool:
        """True once the trial's evaluation was told (an ``"interrupted"`` one does not count)."""
        return self._trials[int(trial_id)].evaluation is not None

    def mark_interrupted(self, trial_id: int, error: str | None = None) -> None:
        """Record that a running trial was interrupted (Ctrl+C, SIGTERM): journaled, and the trial
        stays pending so a resume re-runs it once with the same config."""
        trial = self._pending_trial(trial_id)
        self.tell(
            trial.trial_id,
            Evaluation(config=dict(trial.config), status=STATUS_FAILED, failure_reason="interrupted", error=error),
        )

    def result(self) -> SearchResult:
        """The ranking so far; once finished, the SPEC §5 final ranking.

        Before the search finishes every successful trial is ranked.

        Raises
        ------
        RuntimeError
            When no trial succeeded yet.
        """
        if not any(self.loss_of(t) is not None for t in self._trials):
            failed = sum(1 for t in self._trials if t.state == STATUS_FAILED)
            raise RuntimeError(
                f"No successful trial to rank yet ({len(self._trials)} proposed, {failed} failed); "
                "check the failure reasons in `search.trials`."
            )
        candidates = None  # before the end: every trial that trained the full budget competes
        if self.finished:
            ranked = {i for stage in self._stages.values() for i in stage.ranked(self)}
            candidates = tuple(sorted(i for i in ranked if self._trials[i].at_top and self.loss_of(i) is not None))
        elif not all(t.at_top for t in self._trials):
            candidates = tuple(t.trial_id for t in self._trials if t.at_top and self.loss_of(t) is not None)
        meta: dict[str, Any] = {"settings": self.settings(), "stage1_best": self._winners.get(1)}
        for stage in self._stages.values():
            meta.update(stage.summary(self))
        meta.update({"stage2_winner": self._winners.get(2), "finished": self.finished,
                     "earlier_session_trials": list(self._replayed)})
        return SearchResult(trials=self.trials, objective=self.bound_objective, candidate_ids=candidates,
                            k=self.top_k, family=self.family, meta=meta, cost_estimates=self.cost_estimates)

    def released_checkpoints(self) -> set[int]:
        """Multi-fidelity searches: trials whose rung checkpoint is no longer needed (delete its file)."""
        return {i for n, stage in self._stages.items() for i in stage.released(self, n < self._stage)}

    # ------------------------------------------------------------------ internals
    def _emit(self, event: Mapping[str, Any]) -> None:
        for observer in self._observers:
            observer(event)

    def _register(self, proposal: Proposal) -> None:
        self._trials.append(Trial(proposal.trial_id, proposal.stage, dict(proposal.config), None, proposal.group,
                                  proposal.rung))
        self._keys.add(config_key(proposal.config))
        self._stages[proposal.stage].registered(proposal)

    def _apply_finished(self, trial: Trial, evaluation: Evaluation) -> None:
        if evaluation.status == STATUS_FAILED and evaluation.failure_reason == "interrupted":
            return  # stays pending: re-run once on resume
        self._trials[trial.trial_id] = trial.with_evaluation(evaluation)
        self._bound, self._estimates = None, False
        self._advance()

    def _next_proposal(self) -> Proposal | None:
        if self.finished:
            return None
        return self._stages[self._stage].propose(self, len(self._trials))

    def _advance(self) -> bool:
        """Move through every stage transition (and grid group) the told trials allow; True if any."""
        moved = False
        while not self.finished:
            stage = self._stages[self._stage]
            if stage.advance(self):
                moved = True
                continue
            if not stage.complete(self):
                break
            moved = True
            winner = self._winners[self._stage] = stage.winner(self)
            position = self._order.index(self._stage)
            last = position == len(self._order) - 1
            if last or (winner is None and self._stages[self._order[position + 1]].needs_winner):
                self._stage = self._done  # a stage without a success leaves nothing to refine
            else:
                self._stage = self._order[position + 1]
                self._stages[self._stage].start(self, winner)
        return moved
