"""The results folder: created safely, never overwritten by accident, files kept inside it."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path
from typing import Any

import yaml


def check_output_folder(out: str | os.PathLike[str] | None, overwrite: bool = False) -> Path:
    """Resolve ``--out`` and refuse folders that must not be written; creates nothing.

    Parameters
    ----------
    out : path-like, optional
        The requested folder; ``runs/<timestamp>`` when None.
    overwrite : bool
        Allow an existing non-empty folder.

    Raises
    ------
    ValueError
        When the folder is a symlink, is a file, or is not empty and ``overwrite`` is False.
    """
    if out is None:
        out = Path("runs") / _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    requested = Path(out).expanduser()
    if requested.is_symlink():
        raise ValueError(
            f"--out {str(out)!r} is a symbolic link; pass the real folder ({str(requested.resolve())!r}) so it is "
            "clear where results are written."
        )
    path = requested.resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise ValueError(
            f"--out {str(out)!r} exists and is not empty; choose another folder or pass --overwrite true."
        )
    return path


class ResultsFolder:
    """Writes files by bare name inside one folder (no path can escape it)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: Path) -> ResultsFolder:
        """Create ``path`` (and parents) and return the folder."""
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    def file(self, name: str) -> Path:
        """The path of ``name`` inside the folder; refuses names that would leave it."""
        target = (self.path / name).resolve()
        if target.parent != self.path.resolve():
            raise ValueError(f"Refusing to write {name!r} outside the results folder {str(self.path)!r}.")
        return target

    def write_text(self, name: str, text: str) -> Path:
        """Write ``text`` to ``name`` atomically (temporary file, then rename)."""
        target = self.file(name)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        return target

    def write_yaml(self, name: str, data: Any) -> Path:
        """Write ``data`` as plain YAML (safe dumper: no Python tags)."""
        return self.write_text(name, yaml.safe_dump(data, sort_keys=False))
