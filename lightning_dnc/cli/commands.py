"""What ``fit``, ``search`` and ``report`` do, once :func:`~lightning_dnc.cli.plan.resolve_run` checked the input.

A run holds the lock of its journal (``trials.jsonl.lock``) from before its first write to its
end, so two runs never write the same folder.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from rich.console import Console

from lightning_dnc.cli.errors import UsageError
from lightning_dnc.cli.plan import ResumeRequest, RunPlan, resolve_run
from lightning_dnc.results.folder import ResultsFolder
from lightning_dnc.search import JournalCorruptError, JournalMismatchError, Objective
from lightning_dnc.validation import SettingError, check_choices
from lightning_dnc.vocabulary import JOURNAL_NAME, PENALTIES

#: Never saved in config.yaml: they describe one invocation, not the run.
NOT_SAVED = ("config", "__path__", "overwrite", "resume", "force")


def run_fit(options: Namespace, console: Console, train_final: bool = True, resume: ResumeRequest | None = None,
            context: dict[str, Any] | None = None) -> int:
    """``fit`` (search + final training) and ``search`` (search only), new or resumed.

    ``context["out"]`` is set to the results folder once it is known (for the caller's messages).
    """
    from lightning_dnc.lightning.search_loop import run_search
    from lightning_dnc.search.journal.lock import LockHeldError, RunLock

    plan = resolve_run(options, resume)
    if options.quiet:
        console = Console(highlight=False, force_terminal=False, force_interactive=False)
    if resume is not None and _nothing_to_do(plan.out, train_final, resume):
        console.print(f"{str(plan.out)!r} is complete (search{' and final training' if train_final else ''} "
                      "done); nothing to do.")
        return 0
    lock = RunLock.for_journal(plan.out / JOURNAL_NAME)
    try:
        lock.acquire()
    except LockHeldError as err:
        raise UsageError(str(err)) from err
    try:
        folder = ResultsFolder.create(plan.out)
        if context is not None:
            context["out"] = plan.out
        if resume is None:
            folder.write_yaml("config.yaml", {**_settings_dict(options, plan.out),
                                              "t_tr_mode": plan.settings.objective.t_tr_mode})
        return _search_and_finish(plan, folder, console, train_final, run_search)
    finally:
        lock.release()


def _nothing_to_do(out: Path, train_final: bool, resume: ResumeRequest) -> bool:
    """True when the run's search finished (``result.json``) and, for ``fit``, its final model was trained.

    A search its budget ended is continued when the resume gives ``--max_trials`` or ``--max_time``.
    """
    done = (out / "result.json").is_file() and (not train_final or (out / "final.json").is_file())
    if done and resume.explicit & {"max_trials", "max_time"}:
        meta = json.loads((out / "result.json").read_text(encoding="utf-8")).get("meta") or {}
        return not meta.get("budget_ended")
    return done


def _search_and_finish(plan: RunPlan, folder: ResultsFolder, console: Console, train_final: bool,
                       run_search: Any) -> int:
    from lightning_dnc.lightning.candidate.candidate_logs import make_candidate_logs
    from lightning_dnc.lightning.final_fit import train_final_model
    from lightning_dnc.results.outcome import budget_text
    from lightning_dnc.results.report import write_report
    from lightning_dnc.search import SearchResult

    options = plan.options
    started = time.perf_counter()
    result: SearchResult | None = None
    if plan.candidate is None:
        verb = "Resuming" if plan.resume is not None else "Deep-n-Cheap search:"
        console.print(f"{verb} family {plan.family}, data {options.data}, wc {options.wc}, "
                      f"penalize {options.penalize}, budget {plan.budget[0]} -> {plan.out}", soft_wrap=True)
        console.print(plan.budget_line(), soft_wrap=True, highlight=False, markup=False)
        try:
            result = run_search(plan.settings, plan.run_options, plan.datamodule, plan.hardware, console=console,
                                live=None if not options.quiet else False, lock_held=True, plain=bool(options.quiet))
        except (JournalCorruptError, JournalMismatchError) as err:
            raise UsageError(str(err)) from err
        folder.write_text("result.json", result.to_json())
        ended = budget_text(result)
        if ended:
            console.print(ended, highlight=False, markup=False, soft_wrap=True)
        best = dict(result.best_config)
    else:
        best = dict(plan.candidate)
    search_seconds = time.perf_counter() - started
    earlier_seconds = _earlier_sessions_seconds(result)
    best.pop("epochs", None)
    folder.write_yaml("best.yaml", {"family": plan.family, "data": str(options.data), "epochs": plan.final_epochs,
                                    "candidate": best})
    final = None
    if train_final:
        console.print(f"Training the best configuration for {plan.final_epochs} epochs ...")
        logs = make_candidate_logs(plan.run_options.logger, plan.run_options.log_dir)
        final = train_final_model(best, plan.datamodule, plan.final_epochs, plan.hardware, seed=options.seed,
                                  checkpoint=folder.file("best.ckpt"), logs=logs, threads=plan.run_options.threads)
        folder.write_text("final.json", json.dumps(final, indent=2))
    write_report(folder.path, result, final, search_seconds=search_seconds + earlier_seconds, wc=float(options.wc),
                 penalize=options.penalize, console=console, earlier_seconds=earlier_seconds,
                 pareto_costs=options.pareto_costs, plain=bool(options.quiet))
    return 0


def _earlier_sessions_seconds(result: Any) -> float:
    """Training wall time of the trials a resumed search finished in its earlier sessions."""
    if result is None:
        return 0.0
    earlier = set(result.meta.get("earlier_session_trials") or ())
    return float(sum(t.evaluation.wall_time or 0.0 for t in result.trials if t.trial_id in earlier and t.evaluation))


def _n_params_ref_of_run(run_dir: Path) -> float | None:
    """N_p of the largest network of a run's space, from its journal header (for 0.1.0 results)."""
    from lightning_dnc.models import largest_network_params
    from lightning_dnc.search import Journal
    from lightning_dnc.search.journal.same_search import journal_header
    from lightning_dnc.space import space_from_dict

    path = run_dir / JOURNAL_NAME
    if not path.is_file():
        return None
    events = Journal(path).read()
    header = journal_header(events, str(path))
    dataset = (header.get("metadata") or {}).get("dataset") or {}
    if "input_shape" not in dataset or "num_outputs" not in dataset:
        return None
    return float(largest_network_params(space_from_dict(header["space"]), dataset["input_shape"], dataset["num_outputs"]))


def run_report(options: Namespace, console: Console) -> int:
    """``report RUN_DIR``: re-rank a run for another trade-off, without training.

    A finished run gets its report files (``report_wc<wc>_<penalize>.md``, plots, ``pareto*.json``).
    An interrupted or still-running run is only read (:func:`~lightning_dnc.results.run_state.read_run`):
    one line says which it is, the summary ranks every successful trial so far, nothing is written
    into its folder and its lock is never taken.
    """
    from lightning_dnc.results.report import print_summary, ranked_for, write_report
    from lightning_dnc.results.run_state import read_run

    try:
        Objective(wc=options.wc, penalize=options.penalize, t_tr_mode=options.t_tr_mode)
        if options.pareto_costs is not None:
            check_choices("pareto_costs", options.pareto_costs, PENALTIES)
    except SettingError as err:
        raise UsageError(err.renamed(f"--{err.name}")) from err
    run_dir = Path(options.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"report {str(run_dir)!r}: no such folder; pass a results folder written by fit or search.")
    try:
        state = read_run(run_dir)
    except (ValueError, OSError) as err:
        raise UsageError(f"report {str(run_dir)!r}: {err}") from err
    console.print(state.describe(), highlight=False, markup=False, soft_wrap=True)
    if state.result is None:
        return 0  # no successful trial yet: nothing to rank
    result = state.result
    n_params_ref = result.objective.n_params_ref
    if n_params_ref is None and options.penalize == "n_params":
        n_params_ref = _n_params_ref_of_run(run_dir)
        if n_params_ref is None:
            raise UsageError(f"{str(run_dir)!r} does not record the N_p of its space's largest network and has no "
                             f"{JOURNAL_NAME} to compute it from; re-rank with --penalize t_tr.")
    if options.t_tr_mode is not None and options.t_tr_mode != result.objective.t_tr_mode:
        result = result.rescore(t_tr_mode=options.t_tr_mode)
    mode = "" if options.t_tr_mode is None else f"_{options.t_tr_mode}"
    try:
        if state.read_only:
            ranked = ranked_for(result, float(options.wc), options.penalize, n_params_ref)
            print_summary(console, ranked, state.final, None, None, plain=bool(options.quiet))
            return 0
        write_report(run_dir, result, state.final, search_seconds=None, wc=float(options.wc), penalize=options.penalize,
                     console=console, suffix=f"_wc{options.wc:g}_{options.penalize}{mode}",
                     pareto_costs=options.pareto_costs, n_params_ref=n_params_ref,
                     plain=bool(options.quiet))
    except ValueError as err:
        raise UsageError(f"report {str(run_dir)!r}: {err}") from err
    return 0


def _settings_dict(options: Namespace, out: Path) -> dict[str, Any]:
    data = options.as_dict()
    for key in NOT_SAVED:
        data.pop(key, None)
    data["out"] = str(out)  # resolved: a resume from another working directory finds the same folder
    return data


__all__ = ["run_fit", "run_report"]
