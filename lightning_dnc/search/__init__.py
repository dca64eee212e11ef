"""The staged search engine: ask/tell over frozen trial records, no torch or lightning.

Modules: ``records`` (the :class:`Evaluation` the evaluator returns), ``objective`` (SPEC §1),
``trial`` (proposal, trial and progress records), ``settings`` (the :class:`SearchSettings`
record), ``stage`` (the stage interface), ``bo_stage`` and ``grid_stage`` (the strategies of
stages 1/3 and 2), ``rungs`` and ``asha_stage`` (multi-fidelity: rungs, promotions, their
stages), ``bo`` (one BO pick), ``grid`` (stage-2 groups), ``journal`` (JSON-lines event
log), ``replay`` and ``same_search`` (resume), ``engine`` (:class:`StagedSearch`), ``result``
(:class:`SearchResult`).
"""

from lightning_dnc.search.engine import StagedSearch
from lightning_dnc.search.grid import CNN_GROUPS, MLP_GROUPS, default_order, group_options
from lightning_dnc.search.journal import Journal, JournalCorruptError, TornJournalWarning
from lightning_dnc.search.objective import Objective, pessimistic_loss
from lightning_dnc.search.records import FAILURE_REASONS, Evaluation
from lightning_dnc.search.result import RankedTrial, SearchResult
from lightning_dnc.search.same_search import HeaderChange, JournalMismatchError, check_same_search, header_changes
from lightning_dnc.search.settings import DEFAULT_SEARCH_EPOCHS, SearchSettings
from lightning_dnc.search.trial import Progress, Proposal, Trial, config_key

__all__ = [
    "CNN_GROUPS",
    "DEFAULT_SEARCH_EPOCHS",
    "Evaluation",
    "FAILURE_REASONS",
    "HeaderChange",
    "Journal",
    "JournalCorruptError",
    "JournalMismatchError",
    "MLP_GROUPS",
    "Objective",
    "Progress",
    "Proposal",
    "RankedTrial",
    "SearchResult",
    "SearchSettings",
    "StagedSearch",
    "TornJournalWarning",
    "Trial",
    "check_same_search",
    "config_key",
    "default_order",
    "group_options",
    "header_changes",
    "pessimistic_loss",
]
