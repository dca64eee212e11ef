"""The rung section of a multi-fidelity run's report (``fidelity="asha"``) and its curve plot.

Reads ``result.meta["rungs"]`` (:func:`lightning_dnc.search.fidelity.rungs.rung_summary`) and the
trials' validation curves; nothing else of the search.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning_dnc.search import SearchResult
from lightning_dnc.search.core.trial import Trial


def rung_lines(result: SearchResult) -> list[str]:
    """Markdown: candidates per rung, epochs trained against a fixed-epoch search, checkpoint disk."""
    rungs = result.meta.get("rungs")
    if not rungs:
        return []
    lines = ["## Rungs (asynchronous successive halving)", "",
             "| rung | epochs | candidates that finished it |", "|---|---|---|"]
    for k, (epochs, count) in enumerate(zip(rungs["epochs"], rungs["candidates_per_rung"])):
        lines.append(f"| {k} | {epochs} | {count} |")
    trained, fixed = rungs["epochs_trained"], rungs["fixed_epoch_equivalent"]
    share = f" ({trained / fixed:.2f}x)" if fixed else ""
    lines += ["", f"Epochs trained: {trained} against {fixed} for a fixed-epoch search of the same "
                  f"{rungs['candidates']} candidates{share}; {rungs['promotions']} promotions, each continuing "
                  f"from its checkpoint (reduction factor {rungs['reduction_factor']}, GP from "
                  f"{rungs['rung_model']!r} rung results).", ""]
    disk = rungs.get("checkpoints")
    if disk:
        lines += [f"Checkpoints: at most {disk['peak_files']} at once, {disk['peak_bytes'] / 1e6:.2f} MB peak; "
                  f"{disk['deleted']} deleted once their candidate could not be promoted any more.", ""]
    return lines


def candidate_curves(trials: Sequence[Trial]) -> list[tuple[int, int, list[float]]]:
    """``(candidate, stage, validation curve up to where it stopped)`` per candidate: the curve of
    its highest finished rung (a continued run reports the whole curve)."""
    best: dict[int, Trial] = {}
    for trial in trials:
        if trial.rung is None or trial.evaluation is None or not trial.evaluation.ok:
            continue
        held = best.get(trial.rung.candidate)
        if held is None or trial.rung.rung > held.rung.rung:  # type: ignore[union-attr]
            best[trial.rung.candidate] = trial
    out = []
    for candidate, trial in sorted(best.items()):
        ev = trial.evaluation
        curve = list(ev.val_acc_curve) if ev.val_acc_curve else [-v for v in ev.val_loss_curve]  # type: ignore[union-attr]
        if curve:
            out.append((candidate, trial.stage, curve))
    return out


def plot_rung_curves(result: SearchResult, path: Path) -> Path | None:
    """Validation curves of every candidate with a dot where each stopped (``None`` without rungs)."""
    rungs = result.meta.get("rungs")
    curves = candidate_curves(result.trials)
    if not rungs or not curves:
        return None
    from lightning_dnc.results.plots import STAGE_COLOURS, STAGE_LABELS, _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    labelled: set[int] = set()
    for _, stage, curve in curves:
        epochs = list(range(1, len(curve) + 1))
        colour = STAGE_COLOURS.get(stage, "grey")
        label = STAGE_LABELS.get(stage) if stage not in labelled else None
        labelled.add(stage)
        ax.plot(epochs, curve, color=colour, alpha=0.45, linewidth=1, label=label)
        ax.scatter([epochs[-1]], [curve[-1]], color=colour, s=12, zorder=3)
    for epochs in rungs["epochs"]:
        ax.axvline(epochs, color="grey", linewidth=0.6, linestyle=":")
    ax.set_xscale("log")
    ax.set_xlabel("epoch (dotted: rungs)")
    ax.set_ylabel("validation accuracy" if result.trials[0].evaluation is None
                  or result.trials[0].evaluation.task == "classification" else "- validation loss")
    ax.set_title("Validation curves; dots: where each candidate stopped")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["candidate_curves", "plot_rung_curves", "rung_lines"]
