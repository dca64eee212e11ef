"""Resuming a search: read its journal once, check it is the same search on the same data, replay it."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Mapping
from typing import Any

from lightning_dnc.executors.options import RunOptions
from lightning_dnc.search import Journal, SearchSettings, StagedSearch, check_same_search, header_changes
from lightning_dnc.search.journal.same_search import journal_header


class JournalToResume:
    """The journal a search resumes, read once: its events and its header.

    Parameters
    ----------
    options : RunOptions
        Its ``resume`` names the journal.
    """

    def __init__(self, options: RunOptions) -> None:
        if options.resume is None:
            raise ValueError("`resume` is not set: there is no journal to resume.")
        self.path = options.resume
        self.force = options.force_resume
        self.events = Journal(self.path).read()
        self.header = journal_header(self.events, str(self.path))

    def stored_space(self, key: str) -> Any:
        """The space the header stored under ``key`` (``"space"``/``"training_space"``), or None."""
        from lightning_dnc.space import space_from_dict

        return space_from_dict(self.header[key]) if key in self.header else None

    def stored_objective(self) -> dict[str, Any]:
        """The journal's objective settings, with what a 0.1.0 journal lacks filled in as it behaved."""
        from lightning_dnc.search.core.objective import normalise_objective_dict

        return normalise_objective_dict(self.header.get("objective") or {})

    def engine(self, settings: SearchSettings, metadata: Mapping[str, Any], read_only: bool = False) -> StagedSearch:
        """The search rebuilt from the journal, after checking ``settings`` and ``metadata`` match it.

        ``settings`` must carry both spaces. ``read_only``: replay without appending (the other ranks
        of a DDP run).
        """
        now = {
            "settings": settings.header_settings(),
            "objective": settings.objective.to_dict(),
            "space": settings.space.to_dict(),
            "training_space": settings.training_space.to_dict(),
            "metadata": dict(metadata),
        }
        check_same_search(self.header, now, str(self.path), force=self.force)
        engine = StagedSearch.resume(self.events, settings, settings.space, settings.training_space,
                                     journal=None if read_only else self.path, metadata=self.header.get("metadata"),
                                     strict=not self.force)
        if header_changes(self.header, now) and not read_only:
            # A forced resume onto a new space or dataset: record them, so the next resume compares with them.
            engine.metadata = dict(metadata)
            engine.record_header()
        return engine


def dataset_fingerprint(datamodule: Any) -> dict[str, Any]:
    """Plain-data identity of a datamodule, stored in the journal header and checked on resume.

    Holds the class name, input shape, outputs, task, sample counts per split (when the
    datamodule offers ``num_samples``) and a SHA-256 of the first and last 32 training and
    validation samples (normalised where ``arrays`` offers ``normalized=``) and labels (when it offers
    ``arrays(stage)``).
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
        # Normalised, as the fingerprints of runs from before models normalised their own inputs.
        kwargs = {"normalized": True} if "normalized" in inspect.signature(arrays).parameters else {}
        for stage in ("train", "val"):
            x, y = arrays(stage, **kwargs)
            for tensor in (x[:32], x[-32:], y[:32], y[-32:]):
                data = np.ascontiguousarray(tensor.detach().cpu().numpy())
                digest.update(str(data.dtype).encode() + str(data.shape).encode() + data.tobytes())
        info["sha256"] = digest.hexdigest()
    return info
