"""Resuming a search: find its journal, check it is the same search on the same data, replay it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_dnc.search import Journal, JournalMismatchError, Objective, StagedSearch

if TYPE_CHECKING:
    from lightning_dnc.lightning.tuner import DeepNCheapTuner

JOURNAL_NAME = "trials.jsonl"


def journal_header(path: Path) -> dict[str, Any]:
    """The header event of the journal at ``path`` (settings, spaces, objective, dataset fingerprint)."""
    events = Journal(path).read()
    header = events[0] if events else {}
    if header.get("event") != "header":
        raise JournalMismatchError(f"Journal {str(path)!r} does not start with a header event; it cannot be resumed.")
    return header


def stored_space(header: Mapping[str, Any], key: str) -> Any:
    """The space the journal's header stored under ``key`` (``"space"``/``"training_space"``), or None."""
    from lightning_dnc.space import space_from_dict

    return space_from_dict(header[key]) if key in header else None


def resumed_engine(dnc: DeepNCheapTuner, header: Mapping[str, Any], family: str, space: Any, training_space: Any,
                    objective: Objective, settings: Mapping[str, Any], metadata: Mapping[str, Any],
                    read_only: bool = False) -> StagedSearch:
    """Rebuild the search from ``dnc.resume`` after checking it is the same search on the same data.

    ``read_only``: replay the journal without appending to it (the other ranks of a DDP run).
    """
    path = dnc.resume
    journal = Journal(path)  # type: ignore[arg-type] # only called when resuming
    for name, given in (("space", space), ("training_space", training_space)):
        if given.to_dict() != header.get(name) and not dnc.force_resume:
            raise JournalMismatchError(
                f"Cannot resume {str(path)!r}: `{name}` {given.to_dict()!r} differs from the journal's "
                f"{header.get(name)!r}. Resume with the run's own space, or pass force (--force) to continue with "
                "the new one."
            )
    # The settings and the objective must be equal: the journal's proposals depend on them. A derived
    # n_params_ref (from the largest network of the space) is the journal's, so old losses stay comparable.
    fresh = StagedSearch(family, space, training_space, objective, metadata=metadata, **settings)
    stored_objective = dict(header.get("objective") or {})
    expected_objective = objective.to_dict()
    if dnc.n_params_ref is None:
        expected_objective["n_params_ref"] = stored_objective.get("n_params_ref")
    expected = {**fresh.settings(), "objective": expected_objective}
    stored = {**dict(header.get("settings") or {}), "objective": stored_objective}
    changed = sorted(k for k in set(expected) | set(stored) if expected.get(k) != stored.get(k))
    if changed:
        details = "; ".join(f"{k}: journal {stored.get(k)!r}, now {expected.get(k)!r}" for k in changed)
        raise JournalMismatchError(
            f"Cannot resume {str(path)!r}: the search settings differ from the journal's ({details}). Resume with "
            "the run's own settings, or start a new run."
        )
    stored_data = (header.get("metadata") or {}).get("dataset")
    if stored_data is not None and stored_data != metadata["dataset"] and not dnc.force_resume:
        diff = sorted(k for k in set(stored_data) | set(metadata["dataset"])
                      if stored_data.get(k) != metadata["dataset"].get(k))
        raise JournalMismatchError(
            f"Cannot resume {str(path)!r}: the dataset differs from the one the search started on (fields "
            f"{diff}: journal {[stored_data.get(k) for k in diff]!r}, now "
            f"{[metadata['dataset'].get(k) for k in diff]!r}). Resume on the same data, or pass force (--force) to "
            "continue on this one."
        )
    if read_only:
        fresh.replay(journal.read(), strict=not dnc.force_resume)
        return fresh
    return StagedSearch.from_journal(journal, space=space, training_space=training_space, force=dnc.force_resume,
                                     strict=not dnc.force_resume)


def resolve_resume(resume: str | os.PathLike[str]) -> Path:
    """The journal a ``resume`` argument names: ``RUN_DIR/trials.jsonl`` or the file itself.

    Raises
    ------
    ValueError
        When the path does not exist, or is a folder without ``trials.jsonl``, or a file that is
        not a JSON-lines journal (e.g. a checkpoint: nothing is ever unpickled).
    """
    if not isinstance(resume, (str, os.PathLike)) or not str(resume):
        raise ValueError(f"`resume` must be a results folder or a journal path, got {resume!r}.")
    path = Path(resume).expanduser().resolve()
    if path.is_dir():
        path = path / JOURNAL_NAME
        if not path.is_file():
            raise ValueError(
                f"`resume` {str(resume)!r} is a folder without {JOURNAL_NAME}; pass the results folder of a search "
                "started with a journal (or the journal file itself)."
            )
    elif not path.is_file():
        raise ValueError(f"`resume` {str(resume)!r} does not exist; pass a results folder or its {JOURNAL_NAME}.")
    with open(path, "rb") as fh:
        head = fh.read(64)
    if path.suffix not in (".jsonl", ".json") or not head.lstrip().startswith(b"{"):
        raise ValueError(
            f"`resume` {str(resume)!r} is not a search journal (a .jsonl file of JSON events); checkpoints and "
            "pickles are never loaded."
        )
    return path


def dataset_fingerprint(datamodule: Any) -> dict[str, Any]:
    """Plain-data identity of a datamodule, stored in the journal header and checked on resume.

    Holds the class name, input shape, outputs, task, sample counts per split (when the
    datamodule offers ``num_samples``) and a SHA-256 of the first and last 32 training and
    validation samples and labels (when it offers ``arrays(stage)``).
    """
    import numpy as np

    info: dict[str, Any] = {"class": type(datamodule).__name__}
    for key in ("input_shape", "num_outputs", "task"):
        value = getattr(datamodule, key, None)
        info[key] = list(value) if isinstance(value, tuple) else value
    counter = getattr(datamodule, "num_samples", None)
    if callable(counter):
        info["num_samples"] = {stage: int(counter(stage)) for stage in ("train", "val", "test")}
    arrays = getattr(datamodule, "arrays", None)
    if callable(arrays):
        digest = hashlib.sha256()
        for stage in ("train", "val"):
            x, y = arrays(stage)
            for tensor in (x[:32], x[-32:], y[:32], y[-32:]):
                data = np.ascontiguousarray(tensor.detach().cpu().numpy())
                digest.update(str(data.dtype).encode() + str(data.shape).encode() + data.tobytes())
        info["sha256"] = digest.hexdigest()
    return info
