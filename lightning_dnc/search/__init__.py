"""The staged search engine: ask/tell over frozen trial records, no torch or lightning.

Modules: ``records`` (the :class:`Evaluation` the evaluator returns), ``objective`` (SPEC §1),
``trial`` (proposal and trial records), ``grid`` (stage-2 groups), ``bo`` (one BO pick),
``journal`` (JSON-lines event log), ``engine`` (:class:`StagedSearch`), ``result``
(:class:`SearchResult`).
"""

from lightning_dnc.search.engine import JournalMismatchError, Progress, StagedSearch
from lightning_dnc.search.grid import CNN_GROUPS, MLP_GROUPS, default_order, group_options
from lightning_dnc.search.journal import Journal, JournalCorruptError, TornJournalWarning
from lightning_dnc.search.objective import PENALTIES, Objective, pessimistic_loss
from lightning_dnc.search.records import FAILURE_REASONS, Evaluation
from lightning_dnc.search.result import RankedTrial, SearchResult
from lightning_dnc.search.trial import Proposal, Trial, config_key

__all__ = [
    "CNN_GROUPS",
    "FAILURE_REASONS",
    "MLP_GROUPS",
    "PENALTIES",
    "Evaluation",
    "Journal",
    "JournalCorruptError",
    "JournalMismatchError",
    "Objective",
    "Progress",
    "Proposal",
    "RankedTrial",
    "SearchResult",
    "StagedSearch",
    "TornJournalWarning",
    "Trial",
    "config_key",
    "default_order",
    "group_options",
    "pessimistic_loss",
]
