"""Replay of journal events into a search: the same state changes as ask/tell, no events handed out.

:class:`EventReplayer` is the part of :class:`~lightning_dnc.search.engine.StagedSearch` that
reads ``proposed`` and ``finished`` events back. Every ``proposed`` event is re-derived by the
engine and compared with the journal, so the state and the next proposals equal those of the
uninterrupted run.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

from lightning_dnc.search.records import Evaluation
from lightning_dnc.search.same_search import JournalMismatchError
from lightning_dnc.search.settings import normalise_header_settings
from lightning_dnc.search.trial import Proposal, Trial, config_key


class EventReplayer:
    """Mixin: :meth:`replay` for an engine with ``_trials``, ``_advance``, ``_next_proposal``,
    ``_register``, ``_apply_finished``, ``settings`` and ``pending``."""

    _trials: list[Trial]

    def replay(self, events: Iterable[Mapping[str, Any]], *, strict: bool = True) -> list[Proposal]:
        """Rebuild the state from journal events (``proposed``/``finished``; a ``header`` is checked).

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
        for number, event in enumerate(events, start=1):
            kind = event.get("event")
            if kind == "header":
                settings = self.settings()  # type: ignore[attr-defined]
                if normalise_header_settings(event.get("settings") or {}) != settings:
                    raise JournalMismatchError(
                        f"Event {number}: the journal's settings {event.get('settings')!r} differ from this "
                        f"search's {settings!r}."
                    )
            elif kind == "proposed":
                self._replay_proposed(number, event, strict)
            elif kind == "finished":
                trial = self._pending_trial(event.get("trial_id"), number)
                self._apply_finished(trial, Evaluation.from_dict(event["evaluation"]))  # type: ignore[attr-defined]
            else:
                raise JournalMismatchError(f"Event {number}: unknown event {kind!r}.")
        return self.pending  # type: ignore[attr-defined,no-any-return]

    def _replay_proposed(self, number: int, event: Mapping[str, Any], strict: bool) -> None:
        self._advance()  # type: ignore[attr-defined]
        expected = self._next_proposal()  # type: ignore[attr-defined]
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
        self._register(expected)  # type: ignore[attr-defined]

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
