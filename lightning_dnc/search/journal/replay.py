"""Resume: a search rebuilt from its journal by replaying the events (the same state changes as
ask/tell, no events handed out).

:class:`EventReplayer` is the part of :class:`~lightning_dnc.search.core.engine.StagedSearch` that
reads ``proposed`` and ``finished`` events back. Every ``proposed`` event is re-derived by the
engine and compared with the journal, so the state and the next proposals equal those of the
uninterrupted run.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lightning_dnc.search.journal.event_log import Journal
from lightning_dnc.search.core.records import Evaluation
from lightning_dnc.search.journal.same_search import JournalMismatchError, check_same_search, journal_header
from lightning_dnc.search.core.settings import SearchSettings, normalise_header_settings
from lightning_dnc.search.core.trial import Proposal, Trial, config_key


class EventReplayer:
    """Mixin of the engine: :meth:`from_journal`, :meth:`resume` and :meth:`replay`, for an engine with
    ``from_settings``, ``attach_journal``, ``_trials``, ``_advance``, ``_next_proposal``, ``_register``,
    ``_apply_finished``, ``settings`` and ``pending``."""

    _trials: list[Trial]

    @classmethod
    def from_journal(cls, path: str | os.PathLike[str] | Journal, *, space: Any = None, training_space: Any = None,
                     force: bool = False, strict: bool = True) -> Any:
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
        header = journal_header(events, str(journal.path))
        settings = SearchSettings.from_header(header["settings"], header["objective"])
        space = space_from_dict(header["space"]) if space is None else space
        training_space = space_from_dict(header["training_space"]) if training_space is None else training_space
        now = {**header, "space": space.to_dict(), "training_space": training_space.to_dict()}
        check_same_search(header, now, str(journal.path), force=force)
        return cls.resume(events, settings, space, training_space, journal=journal, metadata=header.get("metadata"),
                          strict=strict)

    @classmethod
    def resume(cls, events: Sequence[Mapping[str, Any]], settings: SearchSettings, space: Any, training_space: Any,
               *, journal: str | os.PathLike[str] | Journal | None = None, metadata: Mapping[str, Any] | None = None,
               strict: bool = True) -> Any:
        """A search rebuilt by replaying ``events`` (a journal's, header first), then appending to ``journal``.

        The caller has checked that the events belong to this search
        (:func:`~lightning_dnc.search.journal.same_search.check_same_search`).
        """
        search = cls.from_settings(settings, space, training_space, metadata=metadata)
        body = list(events[1:]) if events and events[0].get("event") == "header" else list(events)
        search.replay(body, strict=strict)
        search._replayed = tuple(t.trial_id for t in search._trials if t.evaluation is not None)
        if journal is not None:
            search.attach_journal(journal)
        return search

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
        rung = None if expected.rung is None else expected.rung.to_dict()
        if event.get("rung") != rung:
            raise JournalMismatchError(
                f"Event {number}: trial {expected.trial_id} was proposed at rung {event.get('rung')!r}, but this "
                f"search proposes rung {rung!r}; the journal belongs to another search."
            )
        if config_key(event["config"]) != config_key(expected.config):
            if strict:
                raise JournalMismatchError(
                    f"Event {number}: trial {expected.trial_id} was proposed as {event['config']!r}, but this search "
                    f"proposes {expected.config!r} (settings, spaces or code changed). Resume with strict=False to "
                    "trust the journal."
                )
            expected = Proposal(expected.trial_id, expected.stage, dict(event["config"]), expected.group, expected.rung)
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
