"""The three-stage greedy Deep-n-Cheap search (SPEC §5) as an ask/tell state machine.

The engine proposes complete configurations and is told their :class:`Evaluation`; it never
trains. Its state is a pure function of (settings, seed, the trials proposed and the evaluations
told, in order), so replaying a journal rebuilds it exactly and the next proposals are the ones an
uninterrupted run would make.

Stages
------
1. BO over the skeleton (CNN ``out_channels`` + derived max-pools and shortcuts, or MLP
   ``hidden_mlp``): ``prior_points`` distinct Sobol points, then ``steps`` EI picks over a pool
   of ``explore`` random candidates. Configs are completed with the stage-2 defaults and the
   default training (lr 1e-3, weight decay "auto", batch size 256).
2. Grid groups (:mod:`lightning_dnc.search.grid`) in ``stage2_order`` around the current best;
   a group's best option is adopted only when its loss is strictly lower. A group's options are
   fixed when the group starts (minus configs already proposed); the next group starts only
   when every option of the current one is told.
3. BO over ``lr``, ``weight_decay``, ``batch_size`` with the stage-2 winner's architecture.

Final ranking: the successful stage-3 trials plus the stage-2 winner (default training), top-k by
loss (ties: lower trial id).

Failures and interruptions
--------------------------
A failed trial (or one whose metrics cannot be scored) is never best. In the BO stages the GP is
told :func:`~lightning_dnc.search.objective.pessimistic_loss` for it. An evaluation whose
``failure_reason`` is ``"interrupted"`` is journaled but leaves the trial pending: it is handed
out again by :attr:`StagedSearch.pending` (and after a resume) to be re-run once with the same
config.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_dnc.search import bo, grid
from lightning_dnc.search.journal import JOURNAL_VERSION, Journal
from lightning_dnc.search.objective import Objective, pessimistic_loss
from lightning_dnc.search.records import STATUS_FAILED, Evaluation
from lightning_dnc.search.result import SearchResult
from lightning_dnc.search.trial import STAGE_NAMES, Proposal, Trial, config_key
from lightning_dnc.space.config import DEFAULT_BATCH_SIZE, DEFAULT_LR, complete_config

DONE = 4
FAMILIES = ("cnn", "mlp")
SETTING_NAMES = (
    "family",
    "prior_points",
    "steps",
    "training_prior_points",
    "training_steps",
    "explore",
    "epochs",
    "stage2_order",
    "top_k",
    "seed",
)


class JournalMismatchError(ValueError):
    """A journal does not belong to this search (other settings, spaces or code)."""


@dataclass(frozen=True)
class Progress:
    """Where the search stands, for progress displays.

    Attributes
    ----------
    stage : int
        1, 2 or 3; 4 once finished.
    stage_name : str
    index : int
        Trials proposed so far in this stage.
    planned : int
        Trials planned in this stage (stage 2: the option counts of every group, estimated from
        the current best for groups not started yet).
    group : str or None
        The running stage-2 group.
    finished_trials : int
        Trials told so far in the whole search.
    planned_total : int
        Planned trials of the whole search (the same estimate for stages not started).
    """

    stage: int
    stage_name: str
    index: int
    planned: int
    group: str | None
    finished_trials: int
    planned_total: int


class StagedSearch:
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
    prior_points, steps : int, default 15, 15
        Stage-1 Sobol prior points and BO steps (>= 0, at least one in total).
    explore : int, default 1000
        Random candidates per BO pick (>= 1).
    epochs : int, default 100
        Training epochs of every candidate (put in each proposed config).
    stage2_order : list of str, optional
        Grid groups in order; default ``ac, ds, bn, do, sc`` (CNN) or ``ac, do`` (MLP); ``[]``
        skips stage 2.
    top_k : int, default 1
        Configurations returned by the final ranking.
    seed : int, default 0
        Seeds the BO candidate pools.
    journal : str, os.PathLike or Journal, optional
        Append every proposed and finished trial there. It must be new or empty; to continue a
        journal use :meth:`from_journal`.
    training_prior_points, training_steps : int, optional
        Stage-3 budgets (>= 0); default ``prior_points`` and ``steps``.
    metadata : dict, optional
        Plain JSON data stored in the journal header (e.g. a dataset fingerprint) and restored
        by :meth:`from_journal` as :attr:`metadata`, for the caller to check on resume.

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
        epochs: int = 100,
        stage2_order: Sequence[str] | None = None,
        top_k: int = 1,
        seed: int = 0,
        journal: str | os.PathLike[str] | Journal | None = None,
        training_prior_points: int | None = None,
        training_steps: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        if family not in FAMILIES:
            raise ValueError(f"`family` must be one of {list(FAMILIES)}, got {family!r}.")
        if getattr(space, "family", None) != family:
            raise ValueError(
                f"`space` must be the {family!r} stage-1 space ({'CNNSpace' if family == 'cnn' else 'MLPSpace'}), "
                f"got {space!r}."
            )
        if getattr(training_space, "family", None) != "training":
            raise ValueError(f"`training_space` must be a TrainingSpace, got {training_space!r}.")
        objective = Objective() if objective is None else objective
        if not isinstance(objective, Objective):
            raise ValueError(f"`objective` must be an Objective, got {objective!r}.")
        self.family = family
        self.space = space
        self.training_space = training_space
        self.objective = objective
        self.prior_points = _count("prior_points", prior_points)
        self.steps = _count("steps", steps)
        if self.prior_points + self.steps < 1:
            raise ValueError(
                f"Stage 1 needs at least one evaluation: `prior_points` + `steps` must be >= 1, got "
                f"{prior_points!r} + {steps!r}."
            )
        self.training_prior_points = self.prior_points
        if training_prior_points is not None:
            self.training_prior_points = _count("training_prior_points", training_prior_points)
        self.training_steps = self.steps if training_steps is None else _count("training_steps", training_steps)
        self.explore = _count("explore", explore, minimum=1)
        self.epochs = _count("epochs", epochs, minimum=1)
        self.stage2_order = grid.validate_order(family, stage2_order)
        self.top_k = _count("top_k", top_k, minimum=1)
        self.seed = _count("seed", seed)
        if metadata is not None and not isinstance(metadata, Mapping):
            raise ValueError(f"`metadata` must be a dict of plain JSON data or None, got {metadata!r}.")
        self.metadata: dict[str, Any] = dict(metadata or {})

        self._trials: list[Trial] = []
        self._keys: set[str] = set()
        self._stage = 1
        self._exhausted = {1: False, 3: False}
        self._priors: dict[int, list[dict[str, Any]]] = {}
        self._bound: Objective | None = None
        # stage 2
        self._incumbent: int | None = None
        self._group_pos = 0
        self._group_options: list[dict[str, Any]] | None = None
        self._group_ids: list[int] = []
        self._decisions: list[dict[str, Any]] = []
        self._stage1_best: int | None = None
        self._stage2_winner: int | None = None

        self._journal: Journal | None = None
        if journal is not None:
            self._journal = journal if isinstance(journal, Journal) else Journal(journal)
            if self._journal.exists():
                raise ValueError(
                    f"`journal` {str(self._journal.path)!r} already holds a search; continue it with "
                    "StagedSearch.from_journal(path) or choose a new file."
                )
            self._journal.append(self.header())
        self._advance()

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        """The constructor's plain settings (not the spaces or objective), JSON-able."""
        return {
            "family": self.family,
            "prior_points": self.prior_points,
            "steps": self.steps,
            "training_prior_points": self.training_prior_points,
            "training_steps": self.training_steps,
            "explore": self.explore,
            "epochs": self.epochs,
            "stage2_order": list(self.stage2_order),
            "top_k": self.top_k,
            "seed": self.seed,
        }

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
        """The running stage, 1-3; 4 once finished."""
        return self._stage

    @property
    def finished(self) -> bool:
        """True when every stage is done (or stage 1 produced no successful trial)."""
        return self._stage == DONE

    @property
    def bound_objective(self) -> Objective:
        """The objective with its measured references filled in (first successful trial)."""
        if self._bound is None:
            self._bound = self.objective.with_references(t.evaluation for t in self._trials if t.evaluation is not None)
        return self._bound

    def loss_of(self, trial: Trial | int) -> float | None:
        """The loss of a trial (``None`` while pending, failed or unscorable)."""
        trial = self._trials[trial] if isinstance(trial, int) else trial
        if trial.evaluation is None:
            return None
        return self.bound_objective.loss(trial.evaluation)

    @property
    def best_trial(self) -> Trial | None:
        """The successful trial with the lowest loss so far, any stage (``None`` if none)."""
        scored = [(loss, t.trial_id) for t in self._trials if (loss := self.loss_of(t)) is not None]
        return self._trials[min(scored)[1]] if scored else None

    @property
    def progress(self) -> Progress:
        """Stage, index within it and the planned counts (see :class:`Progress`)."""
        planned = {1: self._planned_bo(1), 2: self._planned_grid(), 3: self._planned_bo(3)}
        stage = self._stage
        shown = min(stage, 3)
        index = sum(1 for t in self._trials if t.stage == shown)
        group = None
        if stage == 2 and self._group_pos < len(self.stage2_order):
            group = self.stage2_order[self._group_pos]
        return Progress(
            stage=stage,
            stage_name="finished" if stage == DONE else STAGE_NAMES[stage],
            index=index,
            planned=planned[shown],
            group=group,
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
        n = _count("n", n, minimum=1)
        out: list[Proposal] = []
        while len(out) < n:
            self._advance()
            proposal = self._next_proposal()
            if proposal is None:
                if self._advance():
                    continue
                break
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
        if self._journal is not None:
            self._journal.append({"event": "finished", "trial_id": trial.trial_id, "evaluation": evaluation.to_dict()})
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
        candidates = None
        if self.finished:
            stage3 = [t.trial_id for t in self._trials if t.stage == 3 and self.loss_of(t) is not None]
            candidates = tuple(sorted({*stage3, self._stage2_winner}))
        meta = {
            "settings": self.settings(),
            "stage1_best": self._stage1_best,
            "stage2_decisions": list(self._decisions),
            "stage2_winner": self._stage2_winner,
            "finished": self.finished,
        }
        return SearchResult(
            trials=self.trials,
            objective=self.bound_objective,
            candidate_ids=candidates,
            k=self.top_k,
            family=self.family,
            meta=meta,
        )

    # ------------------------------------------------------------------ journal / resume
    @classmethod
    def from_journal(
        cls,
        path: str | os.PathLike[str] | Journal,
        *,
        space: Any = None,
        training_space: Any = None,
        force: bool = False,
        strict: bool = True,
    ) -> StagedSearch:
        """Rebuild a search from its journal and keep appending to it.

        Parameters
        ----------
        path : str, os.PathLike or Journal
        space, training_space : optional
            The spaces the caller expects; a difference from the journal's raises unless
            ``force`` (then the given spaces are used).
        force : bool, default False
        strict : bool, default True
            See :meth:`replay`.

        Returns
        -------
        StagedSearch
            Its :attr:`pending` trials are the ones to (re-)evaluate first.
        """
        from lightning_dnc.space import space_from_dict

        journal = path if isinstance(path, Journal) else Journal(path)
        events = journal.read()
        if not events or events[0].get("event") != "header":
            raise JournalMismatchError(f"Journal {str(journal.path)!r} does not start with a header event.")
        header = events[0]
        if header.get("version") != JOURNAL_VERSION:
            raise JournalMismatchError(
                f"Journal {str(journal.path)!r} has format version {header.get('version')!r}; this lightning-dnc "
                f"reads version {JOURNAL_VERSION}."
            )
        spaces = {"space": space, "training_space": training_space}
        for name, given in spaces.items():
            stored = header[name]
            if given is None:
                spaces[name] = space_from_dict(stored)
            elif given.to_dict() != stored and not force:
                raise JournalMismatchError(
                    f"`{name}` {given.to_dict()!r} differs from the journal's {stored!r} in {str(journal.path)!r}; "
                    "resume with the journal's space, or pass force=True to continue with the new one."
                )
        settings = dict(header["settings"])
        family = settings.pop("family")
        search = cls(
            family,
            spaces["space"],
            spaces["training_space"],
            Objective.from_dict(header["objective"]),
            **settings,
            metadata=header.get("metadata"),
        )
        search.replay(events[1:], strict=strict)
        search._journal = journal
        return search

    def replay(self, events: Iterable[Mapping[str, Any]], *, strict: bool = True) -> list[Proposal]:
        """Rebuild the state from journal events (``proposed``/``finished``; a ``header`` is checked).

        Every ``proposed`` event is re-derived by the engine and compared with the journal, so the
        state and the next proposals equal those of the uninterrupted run.

        Parameters
        ----------
        events : iterable of dict
            In journal order, without or with its header.
        strict : bool, default True
            When False, a proposed config that differs from the engine's own (e.g. after an
            upgrade changed the numerics) is accepted from the journal instead of raising.

        Returns
        -------
        list of Proposal
            The pending trials (proposed but not finished, or interrupted).

        Raises
        ------
        JournalMismatchError
            When the events do not belong to this search.
        """
        journal, self._journal = self._journal, None  # replayed events are already in the journal
        try:
            for number, event in enumerate(events, start=1):
                kind = event.get("event")
                if kind == "header":
                    if event.get("settings") != self.settings():
                        raise JournalMismatchError(
                            f"Event {number}: the journal's settings {event.get('settings')!r} differ from this "
                            f"search's {self.settings()!r}."
                        )
                elif kind == "proposed":
                    self._replay_proposed(number, event, strict)
                elif kind == "finished":
                    trial = self._pending_trial(event.get("trial_id"), number)
                    self._apply_finished(trial, Evaluation.from_dict(event["evaluation"]))
                else:
                    raise JournalMismatchError(f"Event {number}: unknown event {kind!r}.")
        finally:
            self._journal = journal
        return self.pending

    # ------------------------------------------------------------------ internals: events
    def _replay_proposed(self, number: int, event: Mapping[str, Any], strict: bool) -> None:
        self._advance()
        expected = self._next_proposal()
        if expected is None or event.get("trial_id") != expected.trial_id or event.get("stage") != expected.stage:
            wanted = "nothing" if expected is None else f"trial {expected.trial_id} in stage {expected.stage}"
            raise JournalMismatchError(
                f"Event {number}: the journal proposes trial {event.get('trial_id')!r} in stage "
                f"{event.get('stage')!r}, but this search expects {wanted}; the journal belongs to another search."
            )
        if config_key(event["config"]) != config_key(expected.config):
            if strict:
                raise JournalMismatchError(
                    f"Event {number}: trial {expected.trial_id} was proposed as {event['config']!r}, but this search "
                    f"proposes {expected.config!r} (settings, spaces or code changed). Resume with strict=False to "
                    "trust the journal."
                )
            expected = Proposal(expected.trial_id, expected.stage, dict(event["config"]), expected.group)
        self._register(expected)

    def _register(self, proposal: Proposal) -> None:
        if self._journal is not None:
            self._journal.append(
                {
                    "event": "proposed",
                    "trial_id": proposal.trial_id,
                    "stage": proposal.stage,
                    "group": proposal.group,
                    "config": proposal.config,
                }
            )
        self._trials.append(Trial(proposal.trial_id, proposal.stage, dict(proposal.config), None, proposal.group))
        self._keys.add(config_key(proposal.config))
        if proposal.stage == 2:
            self._group_ids.append(proposal.trial_id)

    def _pending_trial(self, trial_id: Any, event_number: int | None = None) -> Trial:
        where = "" if event_number is None else f"Event {event_number}: "
        known = isinstance(trial_id, numbers.Integral) and not isinstance(trial_id, bool)
        if not known or not 0 <= trial_id < len(self._trials):
            raise ValueError(
                f"{where}`trial_id` must be the id of a proposed trial (0..{len(self._trials) - 1}), got {trial_id!r}."
            )
        trial = self._trials[int(trial_id)]
        if trial.evaluation is not None:
            raise ValueError(f"{where}Trial {trial_id} was already told ({trial.state}); each trial is told once.")
        return trial

    def _apply_finished(self, trial: Trial, evaluation: Evaluation) -> None:
        if evaluation.status == STATUS_FAILED and evaluation.failure_reason == "interrupted":
            return  # stays pending: re-run once on resume
        self._trials[trial.trial_id] = trial.with_evaluation(evaluation)
        self._bound = None
        self._advance()

    # ------------------------------------------------------------------ internals: proposals
    def _next_proposal(self) -> Proposal | None:
        if self._stage in (1, 3):
            return self._next_bo(self._stage)
        if self._stage == 2 and self._group_options is not None:
            index = len(self._group_ids)
            if index < len(self._group_options):
                group = self.stage2_order[self._group_pos]
                return Proposal(len(self._trials), 2, dict(self._group_options[index]), group)
        return None

    def _next_bo(self, stage: int) -> Proposal | None:
        index = sum(1 for t in self._trials if t.stage == stage)
        if index >= self._planned_bo(stage) or self._exhausted[stage]:
            return None
        priors = self._prior_configs(stage)
        if index < len(priors) and config_key(priors[index]) not in self._keys:
            return Proposal(len(self._trials), stage, priors[index])
        space = self.space if stage == 1 else self.training_space
        complete = self._completer(stage)
        candidates = bo.candidate_pool(space, self.explore, self.seed, stage, index, complete, self._keys)
        if not candidates:
            self._exhausted[stage] = True
            return None
        observed, pending = self._gp_data(stage)
        return Proposal(len(self._trials), stage, bo.pick_by_expected_improvement(space, candidates, observed, pending))

    def _gp_data(self, stage: int) -> tuple[list[tuple[dict[str, Any], float]], list[dict[str, Any]]]:
        trials = [t for t in self._trials if t.stage == stage]
        losses = {t.trial_id: self.loss_of(t) for t in trials}
        stage_losses = [loss for loss in losses.values() if loss is not None]
        other = [loss for t in self._trials if t.stage != stage and (loss := self.loss_of(t)) is not None]
        stand_in = pessimistic_loss(stage_losses, other)
        observed, pending = [], []
        for t in trials:
            if t.evaluation is None:
                pending.append(t.config)
            else:
                loss = losses[t.trial_id]
                observed.append((t.config, stand_in if loss is None else loss))
        return observed, pending

    def _prior_configs(self, stage: int) -> list[dict[str, Any]]:
        if stage not in self._priors:
            count = self.prior_points if stage == 1 else self.training_prior_points
            space = self.space if stage == 1 else self.training_space
            self._priors[stage] = bo.prior_configs(space, count, self._completer(stage))
        return self._priors[stage]

    def _completer(self, stage: int) -> bo.Completer:
        if stage == 1:
            base = {"lr": DEFAULT_LR, "weight_decay": "auto", "batch_size": DEFAULT_BATCH_SIZE, "epochs": self.epochs}
            return lambda sample: complete_config({**sample, **base}, family=self.family)
        architecture = dict(self._trials[self._stage2_winner].config)  # type: ignore[index]
        return lambda sample: complete_config({**architecture, **sample, "epochs": self.epochs}, family=self.family)

    # ------------------------------------------------------------------ internals: stage moves
    def _advance(self) -> bool:
        """Move through every stage/group transition that the told trials allow; True if any."""
        moved = False
        while True:
            step = self._advance_once()
            if not step:
                return moved
            moved = True

    def _advance_once(self) -> bool:
        if self._stage in (1, 3):
            stage = self._stage
            trials = [t for t in self._trials if t.stage == stage]
            complete = len(trials) >= self._planned_bo(stage) or self._exhausted[stage]
            if not complete or any(t.evaluation is None for t in trials):
                return False
            if stage == 3:
                self._stage = DONE
                return True
            self._stage1_best = self._best_of(t.trial_id for t in trials)
            if self._stage1_best is None:
                self._stage = DONE  # nothing succeeded: there is no architecture to refine
                return True
            self._incumbent = self._stage1_best
            self._stage = 2
            return True
        if self._stage != 2:
            return False
        if self._group_pos >= len(self.stage2_order):
            self._stage2_winner = self._incumbent
            self._stage = 3
            return True
        group = self.stage2_order[self._group_pos]
        if self._group_options is None:
            options = grid.group_options(group, self._trials[self._incumbent].config)  # type: ignore[index]
            self._group_options = [o for o in options if config_key(o) not in self._keys]
            self._group_ids = []
            if not self._group_options:
                self._decisions.append({"group": group, "options": 0, "best_trial": None, "adopted": False})
                self._next_group()
            return True
        if len(self._group_ids) < len(self._group_options) or any(
            self._trials[i].evaluation is None for i in self._group_ids
        ):
            return False
        best = self._best_of(self._group_ids)
        best_loss = None if best is None else self.loss_of(best)
        incumbent_loss = self.loss_of(self._incumbent)  # type: ignore[arg-type]
        adopted = best_loss is not None and incumbent_loss is not None and best_loss < incumbent_loss
        self._decisions.append(
            {"group": group, "options": len(self._group_ids), "best_trial": best, "adopted": bool(adopted)}
        )
        if adopted:
            self._incumbent = best
        self._next_group()
        return True

    def _next_group(self) -> None:
        self._group_pos += 1
        self._group_options = None
        self._group_ids = []

    def _best_of(self, trial_ids: Iterable[int]) -> int | None:
        scored = [(loss, i) for i in trial_ids if (loss := self.loss_of(i)) is not None]
        return min(scored)[1] if scored else None

    def _planned_bo(self, stage: int) -> int:
        if stage == 1:
            planned = self.prior_points + self.steps
        else:
            planned = self.training_prior_points + self.training_steps
        if self._exhausted[stage] or (stage == 1 and self._stage > 1) or (stage == 3 and self._stage == DONE):
            return sum(1 for t in self._trials if t.stage == stage)
        return planned

    def _planned_grid(self) -> int:
        done = sum(1 for t in self._trials if t.stage == 2)
        if self._stage > 2:
            return done
        if self._stage == 2 and self._group_options is not None:
            done += len(self._group_options) - len(self._group_ids)
            start = self._group_pos + 1
        else:
            start = self._group_pos
        if self._incumbent is None:
            base = self._prior_configs(1)[0] if self._prior_configs(1) else None
        else:
            base = self._trials[self._incumbent].config
        if base is None:
            return done
        return done + sum(len(grid.group_options(g, base)) for g in self.stage2_order[start:])


def _count(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)
