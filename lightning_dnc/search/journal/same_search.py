"""Is a journal the same search as the one asked for? One structured diff of journal headers.

A resume replays a journal, so its proposals are those of the uninterrupted run only when the
settings record and the objective are equal. The spaces and the dataset may be changed on purpose
(``force``): the finished trials are kept and the search continues with the new ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lightning_dnc.search.journal.event_log import JOURNAL_VERSION
from lightning_dnc.search.core.objective import normalise_objective_dict
from lightning_dnc.search.core.settings import normalise_header_settings

FORCEABLE = ("space", "training_space", "dataset")
"""What a forced resume may change: the spaces and the data."""


class JournalMismatchError(ValueError):
    """A journal does not belong to this search (other settings, spaces or code)."""


@dataclass(frozen=True)
class HeaderChange:
    """One difference between a journal's header and the search asked for.

    Attributes
    ----------
    name : str
        A setting (``"prior_points"``), an objective field (``"objective.wc"``), ``"space"``,
        ``"training_space"`` or ``"dataset"``.
    stored, now : Any
        The journal's value and the one asked for.
    forceable : bool
        True for the spaces and the dataset.
    """

    name: str
    stored: Any
    now: Any

    @property
    def forceable(self) -> bool:
        """True when a forced resume may accept this change."""
        return self.name in FORCEABLE

    def describe(self) -> str:
        """One phrase naming what changed and how."""
        if self.name == "dataset":
            keys = sorted(k for k in set(self.stored) | set(self.now) if self.stored.get(k) != self.now.get(k))
            return (f"the dataset differs from the one the search started on (fields {keys}: journal "
                    f"{[self.stored.get(k) for k in keys]!r}, now {[self.now.get(k) for k in keys]!r})")
        if self.forceable:
            return f"`{self.name}` {self.now!r} differs from the journal's {self.stored!r}"
        return f"{self.name}: journal {self.stored!r}, now {self.now!r}"


def journal_header(events: Sequence[Mapping[str, Any]], source: str) -> dict[str, Any]:
    """The header in force at the end of ``events`` (read from ``source``), checked for its format version.

    A journal opens with a header; a forced resume onto a new space or dataset appends another
    one (same settings, the new spaces and fingerprint), which later resumes compare against.
    """
    if not events or events[0].get("event") != "header":
        raise JournalMismatchError(f"Journal {source!r} does not start with a header event; it cannot be resumed.")
    header = dict(next(e for e in reversed(events) if e.get("event") == "header"))
    if header.get("version") != JOURNAL_VERSION:
        raise JournalMismatchError(
            f"Journal {source!r} has format version {header.get('version')!r}; this lightning-dnc reads version "
            f"{JOURNAL_VERSION}."
        )
    return header


def header_changes(stored: Mapping[str, Any], now: Mapping[str, Any]) -> list[HeaderChange]:
    """Every difference between two headers: settings, objective, spaces, dataset fingerprint.

    The dataset is compared only when both headers carry a fingerprint (``metadata.dataset``).
    Settings a 0.1.0 header lacks count as what 0.1.0 did (``t_tr_mode="epoch"``).
    """
    changes: list[HeaderChange] = []
    for prefix, key in (("", "settings"), ("objective.", "objective")):
        normalise = normalise_header_settings if key == "settings" else normalise_objective_dict
        old = normalise(stored.get(key) or {})
        new = normalise(now.get(key) or {})
        changes += [HeaderChange(prefix + k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
                    if old.get(k) != new.get(k)]
    changes += [HeaderChange(k, stored.get(k), now.get(k)) for k in ("space", "training_space")
                if stored.get(k) != now.get(k)]
    old_data = (stored.get("metadata") or {}).get("dataset")
    new_data = (now.get("metadata") or {}).get("dataset")
    if old_data is not None and new_data is not None and old_data != new_data:
        changes.append(HeaderChange("dataset", old_data, new_data))
    return changes


def check_same_search(stored: Mapping[str, Any], now: Mapping[str, Any], source: str, force: bool = False) -> None:
    """Raise :class:`JournalMismatchError` unless ``now`` may continue the journal ``stored`` heads.

    Parameters
    ----------
    stored, now : dict
        Journal headers (``StagedSearch.header()``).
    source : str
        The journal's path, for the message.
    force : bool, default False
        Accept changed spaces and dataset.
    """
    changes = header_changes(stored, now)
    fixed = [c for c in changes if not c.forceable]
    if fixed:
        details = "; ".join(c.describe() for c in fixed)
        raise JournalMismatchError(
            f"Cannot resume {source!r}: the search settings differ from the journal's ({details}). Resume with the "
            "run's own settings, or start a new run."
        )
    if changes and not force:
        details = "; ".join(c.describe() for c in changes)
        raise JournalMismatchError(
            f"Cannot resume {source!r}: {details}. Resume with the run's own search space and data, or pass force "
            "(force=True, --force true) to continue with the new ones."
        )


__all__ = ["HeaderChange", "JournalMismatchError", "check_same_search", "header_changes", "journal_header"]
