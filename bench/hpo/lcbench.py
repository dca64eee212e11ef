"""The LCBench surrogate of YAHPO Gym 1.0.2, offline: where its data lies, curves, the reference sample.

Data
----
The surrogate (``lcbench/model.onnx`` + metadata) lies in the workspace's shared folder,
``../shared/benchmarks`` next to the repository (:func:`data_path`); ``--data-path`` or the
environment variable ``LIGHTNING_DNC_BENCH_DATA`` point elsewhere. Nothing is downloaded.
YAHPO's ``local_config.init_config()`` writes a small settings file (under the home folder unless
``YAHPO_LOCAL_CONFIG`` names one; the benchmark points it into its cache folder, see
:func:`benchmark`).

Queries
-------
A configuration's learning curve (validation accuracy and cumulative training seconds per epoch)
is asked for as methods train it (fetched ahead to twice the known length) and cached by
configuration. The rows are
encoded in the order of YAHPO's own config (``config.cont_names``, the task's code from its
``encoding.json``) and run through YAHPO's ONNX session in one batch; ``tests/test_hpo_bench.py``
checks that this gives what ``BenchmarkSet.objective_function`` gives. The encoding of YAHPO's
``objective_function`` itself costs about 0.3 ms per row in Python, more than the model.
The surrogate's accuracy is clipped to [0, 100] % and its cumulative time made non-decreasing.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

import hpo.space as hs

ENV_DATA = "LIGHTNING_DNC_BENCH_DATA"
MAX_EPOCHS = 52
PREFETCH = 4
YAHPO_PIP = "pip install 'lightning-dnc[bench]'  # or: pip install 'yahpo-gym>=1.0.2' 'onnxruntime>=1.16'"
_INIT_LOCK = threading.Lock()
_INITIALISED: set[str] = set()


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def data_path(override: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding ``lcbench/``: ``override``, else ``$LIGHTNING_DNC_BENCH_DATA``, else
    ``../shared/benchmarks`` next to the repository."""
    if override is not None:
        return Path(override).expanduser().resolve()
    if os.environ.get(ENV_DATA):
        return Path(os.environ[ENV_DATA]).expanduser().resolve()
    return repo_root().parent / "shared" / "benchmarks"


def missing(path: Path) -> str | None:
    """Why the LCBench suite cannot run (data or packages missing), else ``None``."""
    if not (path / "lcbench" / "model.onnx").is_file():
        return (f"the LCBench surrogate is not at {path / 'lcbench'} (expected model.onnx there); pass "
                f"--data-path or set {ENV_DATA} to the folder that holds lcbench/")
    try:
        import onnxruntime  # noqa: F401
        import yahpo_gym  # noqa: F401
    except ImportError as err:
        return f"{err}; {YAHPO_PIP}"
    return None


def task_ids(path: Path) -> list[str]:
    """The 34 OpenML task ids of LCBench, in the order of its config space."""
    data = json.loads((path / "lcbench" / "config_space.json").read_text())
    for hp in data["hyperparameters"]:
        if hp["name"] == "OpenML_task_id":
            return [str(c) for c in hp["choices"]]
    raise ValueError(f"{path / 'lcbench' / 'config_space.json'} lists no OpenML_task_id.")


def benchmark(path: Path, task: str, settings_file: Path | None = None, multithread: bool = False) -> Any:
    """YAHPO's ``BenchmarkSet("lcbench", instance=task)`` reading the data at ``path``.

    YAHPO keeps its settings (the data path) in ``~/.config/yahpo_gym`` unless the environment
    variable ``YAHPO_LOCAL_CONFIG`` names another file; when that is unset and YAHPO is not imported
    yet, ``settings_file`` (the benchmark's cache folder) is used, so a user's own YAHPO settings
    are left alone. ``multithread=False`` (default) runs ONNX on one thread: the benchmark's
    batches are small (one curve), where one thread is 2-3x faster than several, and worker
    processes do not compete.
    """
    import contextlib
    import io
    import sys

    if settings_file is not None and "yahpo_gym" not in sys.modules and not os.environ.get("YAHPO_LOCAL_CONFIG"):
        Path(settings_file).parent.mkdir(parents=True, exist_ok=True)
        os.environ["YAHPO_LOCAL_CONFIG"] = str(settings_file)
    from yahpo_gym import benchmark_set, local_config

    with _INIT_LOCK:
        if str(path) not in _INITIALISED:
            with contextlib.redirect_stdout(io.StringIO()):  # citation notice
                local_config.init_config()
                local_config.set_data_path(str(path))
            _INITIALISED.add(str(path))
    with contextlib.redirect_stdout(io.StringIO()):
        return benchmark_set.BenchmarkSet("lcbench", instance=str(task), multithread=multithread)


class Task:
    """One LCBench task: cached learning curves of configurations of the reduced space.

    Parameters
    ----------
    bench : yahpo_gym.BenchmarkSet
        Set to this task's instance.
    task : str
        OpenML task id.
    """

    def __init__(self, bench: Any, task: str) -> None:
        self.task = str(task)
        self.bench = bench
        names = list(bench.config.cont_names)
        self._columns = [names.index(k) for k in ("epoch", *hs.KEYS)]
        self._epoch_col = names.index("epoch")
        self._width = len(names)
        self._code = np.int32(bench.encoding["OpenML_task_id"][self.task])
        self._inputs = [x.name for x in bench.session.get_inputs()]
        outputs = list(bench.config.y_names)
        self._acc, self._time = outputs.index("val_accuracy"), outputs.index("time")
        self._curves: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self.rows_queried = 0
        centre_acc, centre_time = self.curve(hs.CENTRE, MAX_EPOCHS)
        #: Time per epoch of the centre configuration at full fidelity (``t_tr_ref``).
        self.t_tr_ref = float(centre_time[-1] / MAX_EPOCHS)
        #: Full-training seconds of the centre configuration (one "full-training equivalent" of time).
        self.full_time = float(centre_time[-1])

    @staticmethod
    def key(config: Mapping[str, Any]) -> tuple:
        return tuple(float(config[k]) for k in hs.KEYS)

    def _rows(self, configs: Sequence[Mapping[str, Any]], epochs: np.ndarray) -> np.ndarray:
        """(len(configs) * len(epochs), outputs) surrogate rows, configs outer, epochs inner."""
        x = np.zeros((len(configs) * len(epochs), self._width), dtype=np.float32)
        for i, config in enumerate(configs):
            block = slice(i * len(epochs), (i + 1) * len(epochs))
            for col, k in zip(self._columns[1:], hs.KEYS):
                x[block, col] = float(config[k])
            x[block, self._epoch_col] = epochs
        cat = np.full((x.shape[0], 1), self._code, dtype=np.int32)
        self.rows_queried += x.shape[0]
        return self.bench.session.run(None, {self._inputs[0]: cat, self._inputs[1]: x})[0]

    def curve(self, config: Mapping[str, Any], epochs: int) -> tuple[np.ndarray, np.ndarray]:
        """Validation accuracy (fraction) and cumulative training seconds of epochs 1..``epochs``."""
        if not 1 <= epochs <= MAX_EPOCHS:
            raise ValueError(f"`epochs` must be in [1, {MAX_EPOCHS}], got {epochs!r}.")
        key = self.key(config)
        acc, seconds = self._curves.get(key, (np.zeros(0), np.zeros(0)))
        if len(acc) < epochs:
            # Fetch ahead (to twice the known length): a call costs about as much as 20 rows.
            upto = min(max(epochs, 2 * len(acc), PREFETCH), MAX_EPOCHS)
            rows = self._rows([config], np.arange(len(acc) + 1, upto + 1, dtype=np.float32))
            acc = np.concatenate([acc, np.clip(rows[:, self._acc], 0.0, 100.0) / 100.0])
            seconds = np.maximum.accumulate(np.concatenate([seconds, np.maximum(rows[:, self._time], 0.0)]))
            self._curves[key] = (acc, seconds)
        return acc[:epochs], seconds[:epochs]

    def prefetch(self, configs: Sequence[Mapping[str, Any]], epochs: int) -> None:
        """Query the curves of ``configs`` up to ``epochs`` in one batch (those not cached that far)."""
        todo = list({self.key(c): c for c in configs if len(self._curves.get(self.key(c), ((),))[0]) < epochs}.values())
        if not todo:
            return
        known = [len(self._curves.get(self.key(c), ((),))[0]) for c in todo]
        if any(known):  # partial curves: one at a time (rare)
            for config in todo:
                self.curve(config, epochs)
            return
        upto = max(epochs, PREFETCH)
        rows = self._rows(todo, np.arange(1, upto + 1, dtype=np.float32)).reshape(len(todo), upto, -1)
        for config, block in zip(todo, rows):
            acc = np.clip(block[:, self._acc], 0.0, 100.0) / 100.0
            self._curves[self.key(config)] = (acc, np.maximum.accumulate(np.maximum(block[:, self._time], 0.0)))

    def full_curves(self, configs: Sequence[Mapping[str, Any]], chunk: int = 400) -> tuple[np.ndarray, np.ndarray]:
        """(n, 52) accuracies and cumulative seconds of ``configs`` at every epoch, in batches (not cached)."""
        epochs = np.arange(1, MAX_EPOCHS + 1, dtype=np.float32)
        acc, seconds = [], []
        for start in range(0, len(configs), chunk):
            part = configs[start:start + chunk]
            rows = self._rows(part, epochs).reshape(len(part), MAX_EPOCHS, -1)
            acc.append(np.clip(rows[:, :, self._acc], 0.0, 100.0) / 100.0)
            seconds.append(np.maximum.accumulate(np.maximum(rows[:, :, self._time], 0.0), axis=1))
        return np.concatenate(acc), np.concatenate(seconds)


#: Version of the reference sample's parameterisation in its cache file name (2: batch size linear).
REFERENCE_VERSION = 2


def reference_sample(task: Task, size: int, cache: Path | None, seed: int = 0) -> dict[str, np.ndarray]:
    """The large full-fidelity random sample of a task: per config best accuracy over the 52
    epochs and time per epoch, cached as ``lcbench-<task>-<size>-seed<seed>-v2.npz`` in ``cache``."""
    name = f"lcbench-{task.task}-{size}-seed{seed}-v{REFERENCE_VERSION}.npz"
    path = None if cache is None else cache / name
    if path is not None and path.is_file():
        with np.load(path) as data:
            return {"best_acc": data["best_acc"], "t_tr": data["t_tr"]}
    acc, seconds = task.full_curves(hs.sample(size, seed))
    out = {"best_acc": acc.max(axis=1), "t_tr": seconds[:, -1] / MAX_EPOCHS}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **out)
        tmp.replace(path)
    return out
