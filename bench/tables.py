"""Print README's tables of bench results from the summaries committed under ``bench/results/``.

Every table of ``bench/hpo_bench.py`` results in README's "How it compares" is this script's output,
so every number there traces to a committed JSON and the command inside it (``"command"``)::

    python bench/tables.py                    # the default summaries below, whichever exist
    python bench/tables.py A.json [B.json]    # one summary, or a test half and a tune half

With a test and a tune summary of the same methods (``--tasks test`` / ``--tasks tune``), the first
table puts them side by side: per wc and method the median regret on the test half (the headline:
no default was chosen there), on the tune half, and the test half's per-task win/tie/loss of the
row's reference with its Wilcoxon p. Then every summary's full table (``hpo.report``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from hpo.report import _cell, _p, format_tables  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = (RESULTS / "hpo_lcbench_test.json", RESULTS / "hpo_lcbench_tune.json", RESULTS / "hpo_real.json")


def load(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if "summary" not in data or "by_wc" not in data["summary"]:
        raise SystemExit(f"{path}: not a summary of bench/hpo_bench.py (--summary PATH writes one).")
    return data


def describe(doc: Mapping[str, Any]) -> str:
    s = doc["settings"]
    split = s.get("split") or "tasks " + " ".join(s["tasks"])
    runs = doc["runs"] if isinstance(doc["runs"], int) else len(doc["runs"])  # a summary's count, or --json's rows
    return (f"{s['suite']}, {split} ({len(s['tasks'])} tasks) x {s['seeds']} seeds, budget {s['budget']:g}; "
            f"{runs} searches in {doc['elapsed_s'] / 60:.1f} min wall on {doc['machine']['cpus']} cores\n"
            f"`{doc['command']}`")


def side_by_side(test: Mapping[str, Any], tune: Mapping[str, Any]) -> str:
    """Test half and tune half in one table (median regret; the test half's head-to-head)."""
    ours = test["summary"]["ours"]
    lines = ["| wc | method | regret, test half: median [25th, 75th pct] | regret, tune half: median "
             f"| test half: {ours} win/tie/loss (tasks) | Wilcoxon p (test half) |", "|---" * 6 + "|"]
    for wc, table in test["summary"]["by_wc"].items():
        other = tune["summary"]["by_wc"].get(wc, {})
        for method, entry in table.items():
            h2h = entry.get("vs_ours")
            versus = "-" if h2h is None else f"{h2h['win']}/{h2h['tie']}/{h2h['loss']}"
            if h2h is not None and h2h.get("reference", ours) != ours:
                versus += f" ({h2h['reference']})"
            lines.append(f"| {wc} | {method} | {_cell(entry['regret'])} | "
                         f"{_cell(other.get(method, {}).get('regret'), spread=False)} | {versus} "
                         f"| {_p(None if h2h is None else h2h['wilcoxon_p'])} |")
    return "\n".join(lines)


def best_by_task(doc: dict) -> str:
    """Median best objective over seeds per task and method (lower is better), from the per-run rows
    of a full ``--json`` file (the real suite's, whose regrets rest on each invocation's own best)."""
    import statistics

    runs = doc.get("runs")
    if not isinstance(runs, list) or not runs:
        return ""
    methods = list(dict.fromkeys(r["method"] for r in runs))
    lines = []
    for wc in sorted({r["wc"] for r in runs}):
        tasks = list(dict.fromkeys(r["task"] for r in runs if r["wc"] == wc))
        lines += [f"median best objective over seeds, wc = {wc:g} (lower is better)", "",
                  "| task | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
        for task in tasks:
            cells = []
            for method in methods:
                values = [r["best_objective"] for r in runs if r["wc"] == wc and r["task"] == task
                          and r["method"] == method and r["best_objective"] is not None]
                cells.append(f"{statistics.median(values):.3f}" if values else "-")
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def render(paths: list[Path]) -> str:
    docs = [(p, load(p)) for p in paths]
    out: list[str] = []
    halves = {d["settings"].get("split"): d for _, d in docs}
    if "test" in halves and "tune" in halves:
        out += ["## LCBench: test half (headline) beside tune half", "",
                "test: " + describe(halves["test"]), "", "tune: " + describe(halves["tune"]), "",
                side_by_side(halves["test"], halves["tune"]), ""]
    for path, doc in docs:
        out += [f"## {path.name}", "", describe(doc), format_tables(doc["summary"], doc.get("skipped", {})), "",
                best_by_task(doc)]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> str:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("summaries", nargs="*", type=Path, help="summary JSON files (default: those of bench/results/)")
    args = p.parse_args(argv)
    paths = args.summaries or [d for d in DEFAULTS if d.is_file()]
    if not paths:
        raise SystemExit(f"No summary found; expected one of {[str(d) for d in DEFAULTS]} (see README).")
    text = render(paths)
    print(text)
    return text


if __name__ == "__main__":
    main()
