"""The peers that search a ConfigSpace space (:func:`hpo_space.config_space`): DEHB and SMAC3.

===========  =======================================================================================
``dehb``     ``dehb.DEHB`` (ask/tell; fidelities 1-52 epochs, eta 3; every job from scratch)
``smac``     SMAC3's ``HyperparameterOptimizationFacade`` (random-forest BO, its defaults:
             ``n_trials`` = the budget's full trainings, so its Sobol initial design is a quarter
             of them), every trial at 52 epochs
``smac-hb``  SMAC3's ``MultiFidelityFacade`` with its Hyperband intensifier (``eta=3``, budgets
             1-52 epochs; a trial at budget b trains round(b) epochs from scratch)
===========  =======================================================================================

SMAC's random forest fits and predicts its trees through joblib with ``n_jobs=-1``; the runs here
set joblib's ``sequential`` backend: on a shared 2-core machine the thread pool spent more time
waiting than computing (about a third of SMAC's decision time), and its thread scheduling made two
runs with the same seed pick differently. The forest and the picks are SMAC's own.

Installing SMAC: ``pip install smac`` (2.x) needs ConfigSpace >= 1.0, and yahpo-gym 1.0.2 declares
``ConfigSpace<=0.6.1``, so the two cannot be named in one ``pip install`` (the resolver gives up).
Installed one after the other (``pip install -e ".[bench]"``, then ``pip install smac``), pip warns
about yahpo-gym's pin and installs ConfigSpace 1.2.2 (smac 2.4.1). The bench still runs: it feeds
YAHPO's ONNX session directly (``hpo_lcbench.Task``), and ``BenchmarkSet`` loads with deprecation
warnings; but yahpo-gym's own ``objective_function`` then fails (``AttributeError:
'ConfigurationSpace' object has no attribute '_sort_hyperparameters'``), so the test comparing the
bench's queries with it skips there, and DEHB samples differently under ConfigSpace 1.x (its
numbers are comparable only within one ConfigSpace version). Keep SMAC in its own environment
layered on the bench's (a venv whose ``.pth`` file adds the bench venv's site-packages), so the
shared environment keeps ConfigSpace 0.6.1; the full-suite commands in README run there.
"""

from __future__ import annotations

import contextlib
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import hpo.space as hs
from hpo.lcbench import MAX_EPOCHS
from hpo.trace import Trace

METHODS = ("dehb", "smac", "smac-hb")
REDUCTION_FACTOR = 3
SMAC_PIP = "pip install smac  # after lightning-dnc[bench]; see bench/hpo/cs.py for the ConfigSpace pin"


def missing(method: str) -> str | None:
    """Why ``method`` cannot run here (its package is missing, with the ``pip`` line), else ``None``."""
    try:
        if method == "dehb":
            import dehb  # noqa: F401
        else:
            import smac  # noqa: F401
    except ImportError as err:
        return f"{err}; " + ("pip install 'lightning-dnc[bench]'" if method == "dehb" else SMAC_PIP)
    return None


def settings_of(method: str, budget: float) -> dict[str, Any]:
    from importlib.metadata import version

    if method == "dehb":
        return {"library": f"dehb {version('dehb')}", "min_fidelity": 1, "max_fidelity": MAX_EPOCHS,
                "eta": REDUCTION_FACTOR, "n_workers": 1, "fidelity_rounding": "nearest epoch, from scratch"}
    out: dict[str, Any] = {"library": f"smac {version('smac')}", "configspace": version("ConfigSpace"),
                           "deterministic": True, "joblib_backend": "sequential"}
    if method == "smac":
        return {**out, "facade": "HyperparameterOptimizationFacade", "n_trials": _full_trials(budget)}
    return {**out, "facade": "MultiFidelityFacade", "intensifier": "Hyperband", "eta": REDUCTION_FACTOR,
            "min_budget": 1, "max_budget": MAX_EPOCHS, "n_trials": _max_trials(budget),
            "fidelity_rounding": "nearest epoch, from scratch"}


def _full_trials(budget: float) -> int:
    return max(1, int(round(budget)))


def _max_trials(budget: float) -> int:
    """An upper bound on SMAC-HB's trials within the budget (every trial at least one epoch)."""
    import math

    return int(math.ceil(budget * MAX_EPOCHS))


def run(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    return run_dehb(trace, seed) if method == "dehb" else run_smac(method, trace, seed)


def run_dehb(trace: Trace, seed: int) -> dict[str, Any]:
    """DEHB through its ask/tell interface; a job at fidelity f trains round(f) epochs from scratch."""
    from dehb import DEHB

    jobs = 0
    with tempfile.TemporaryDirectory(prefix="hpo-bench-dehb-") as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with trace.deciding():
            optimizer = DEHB(cs=hs.config_space(seed), f=_unused_objective, min_fidelity=1, max_fidelity=MAX_EPOCHS,
                             eta=REDUCTION_FACTOR, n_workers=1, seed=seed, output_path=tmp, save_freq="end",
                             log_level="ERROR")
        while not trace.exhausted:
            with trace.deciding():
                job = optimizer.ask()
                config = hs.from_values(_plain(job["config"]))
            epochs = _epochs(job["fidelity"])
            result = trace.train(config, epochs)
            jobs += 1
            with trace.deciding():
                optimizer.tell(job, {"fitness": result.objective, "cost": result.t_tr * epochs})
    return {"jobs": jobs}


@contextlib.contextmanager
def _quiet_sequential() -> Iterator[None]:
    import joblib

    with warnings.catch_warnings(), joblib.parallel_backend("sequential"):
        warnings.simplefilter("ignore")
        yield


def run_smac(method: str, trace: Trace, seed: int) -> dict[str, Any]:
    """SMAC3 through ask/tell: the HPO facade at 52 epochs, or the multi-fidelity facade (Hyperband)."""
    from smac import HyperparameterOptimizationFacade, MultiFidelityFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue

    trials = 0
    with tempfile.TemporaryDirectory(prefix="hpo-bench-smac-") as tmp, _quiet_sequential():
        with trace.deciding():
            cs = hs.config_space(seed)
            if method == "smac":
                scenario = Scenario(cs, deterministic=True, n_trials=_full_trials(trace.budget), seed=seed,
                                    output_directory=Path(tmp) / "smac")
                optimizer: Any = HyperparameterOptimizationFacade(scenario, _unused_smac, overwrite=True,
                                                                  logging_level=40)
            else:
                scenario = Scenario(cs, deterministic=True, n_trials=_max_trials(trace.budget), seed=seed,
                                    min_budget=1, max_budget=MAX_EPOCHS, output_directory=Path(tmp) / "smac")
                intensifier = MultiFidelityFacade.get_intensifier(scenario, eta=REDUCTION_FACTOR)
                optimizer = MultiFidelityFacade(scenario, _unused_smac_mf, intensifier=intensifier,
                                                overwrite=True, logging_level=40)
        while not trace.exhausted:
            with trace.deciding():
                info = optimizer.ask()
                config = hs.from_values(_plain(info.config))
            epochs = MAX_EPOCHS if info.budget is None else _epochs(info.budget)
            result = trace.train(config, epochs)
            trials += 1
            with trace.deciding():
                optimizer.tell(info, TrialValue(cost=result.objective, time=result.t_tr * epochs))
    return {"trials": trials}


def _epochs(fidelity: Any) -> int:
    return int(min(max(round(float(fidelity)), 1), MAX_EPOCHS))


def _plain(config: Any) -> Mapping[str, Any]:
    return dict(config) if hasattr(config, "keys") else dict(config.get_dictionary())


def _unused_objective(config: Any, fidelity: float, **kwargs: Any) -> Callable[..., Any]:  # pragma: no cover
    raise RuntimeError("The peer is driven through ask/tell here; its objective function is never called.")


def _unused_smac(config: Any, seed: int = 0) -> float:  # pragma: no cover
    raise RuntimeError("SMAC is driven through ask/tell here; its target function is never called.")


def _unused_smac_mf(config: Any, seed: int = 0, budget: float = 1.0) -> float:  # pragma: no cover
    raise RuntimeError("SMAC is driven through ask/tell here; its target function is never called.")
