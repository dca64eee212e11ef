"""The staged search engine: ask/tell over frozen trial records, no torch or lightning.

Folders by job: ``core`` (evaluation and trial records, the objective of SPEC §1, settings, the
engine :class:`StagedSearch` and the :class:`SearchResult` it builds), ``stages`` (the stage
interface, BO and grid stages, one BO pick, stage-2 groups, strategies), ``fidelity`` (rungs,
promotions and the multi-fidelity stages) and ``journal`` (the JSON-lines event log, its lock,
replay and the same-search check on resume).
"""

from lightning_dnc.search.core.engine import StagedSearch
from lightning_dnc.search.stages.grid import CNN_GROUPS, MLP_GROUPS, default_order, group_options
from lightning_dnc.search.journal.event_log import Journal, JournalCorruptError, TornJournalWarning
from lightning_dnc.search.core.objective import Objective, pessimistic_loss
from lightning_dnc.search.core.records import FAILURE_REASONS, Evaluation
from lightning_dnc.search.core.result import RankedTrial, SearchResult
from lightning_dnc.search.journal.same_search import HeaderChange, JournalMismatchError, check_same_search, header_changes
from lightning_dnc.search.core.settings import DEFAULT_SEARCH_EPOCHS, SearchSettings
from lightning_dnc.search.core.trial import Progress, Proposal, Trial, config_key

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
