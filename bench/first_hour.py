"""A new user's first hour, timed: README's first command and first Python snippet, quiet and busy.

Each job runs as a user would start it, in a fresh process and an empty folder, exactly as README
writes it: the command ``python -m lightning_dnc.cli fit`` (its test accuracy read from the
results folder's ``final.json``), and the first ```` ```python ```` block of README's "In Python"
section, with two lines appended that print ``trainer.test(model)``'s accuracy. Each is timed on
the quiet machine and beside ``--busy`` CPU-burning processes (two by default: a 2-core machine
with as much other work as it has cores). Targets (issue 25): quiet <= 3 minutes per job, busy <=
2.5 x quiet, test accuracy >= 95% in every run.

Run ``python bench/first_hour.py`` (about 10-15 minutes on a 2-core CPU; ``--jobs cli`` or
``--jobs python`` for one job, ``--json PATH`` to write the results). Take it when nothing else
runs: the quiet half must be quiet (the load average is printed with each row).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _burners import cpu_burners  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
QUIET_LIMIT_S = 180.0
BUSY_RATIO = 2.5
MIN_TEST_ACC = 0.95
TEST_LINES = ("import json as _json\n"
              "print('FIRST_HOUR_TEST_ACC', _json.dumps(float(trainer.test(model, verbose=False)[0]['test_acc'])))\n")


def readme_snippet(readme: Path = ROOT / "README.md") -> str:
    """The first Python code block of README's "In Python" section, as written there."""
    text = readme.read_text()
    section = text[text.index("## In Python"):]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    if match is None:
        raise ValueError("README's 'In Python' section has no ```python block.")
    return match.group(1)


def run_cli(folder: Path) -> tuple[float, float | None, str]:
    """README's first command in ``folder``; wall seconds, test accuracy, the output's tail."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "lightning_dnc.cli", "fit", "--out", str(folder / "run")],
                          cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - started
    final = folder / "run" / "final.json"
    acc = json.loads(final.read_text()).get("test_acc") if final.is_file() else None
    return wall, acc, (proc.stdout + proc.stderr)[-2000:]


def run_snippet(folder: Path) -> tuple[float, float | None, str]:
    """README's first Python snippet (plus the test-accuracy lines) in ``folder``."""
    script = folder / "first_snippet.py"
    script.write_text(readme_snippet() + TEST_LINES)
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(script)], cwd=folder, capture_output=True, text=True)
    wall = time.perf_counter() - started
    found = re.search(r"FIRST_HOUR_TEST_ACC (\S+)", proc.stdout)
    return wall, float(found.group(1)) if found else None, (proc.stdout + proc.stderr)[-2000:]


JOBS = {"cli": run_cli, "python": run_snippet}


def measure(jobs: list[str], busy: int) -> list[dict[str, Any]]:
    """Every job quiet, then every job beside ``busy`` burners; one row per run."""
    rows = []
    for condition, burners in (("quiet", 0), ("busy", busy)):
        for job in jobs:
            load_before = os.getloadavg()[0]
            with cpu_burners(burners), tempfile.TemporaryDirectory(prefix=f"first_hour_{job}_") as tmp:
                wall, acc, tail = JOBS[job](Path(tmp))
            rows.append({"job": job, "condition": condition, "burners": burners, "wall_s": round(wall, 1),
                         "test_acc": acc, "load_before": round(load_before, 2), "ok": acc is not None,
                         **({"output_tail": tail} if acc is None else {})})
            print(f"  {job:<7}{condition:<7}{wall:>8.1f} s  test_acc {acc}  (load before {load_before:.2f})",
                  flush=True)
    return rows


def verdicts(rows: list[dict[str, Any]], busy: int) -> list[str]:
    """One line per target: the numbers and met / MISSED."""
    lines = []
    for job in dict.fromkeys(r["job"] for r in rows):
        quiet = next(r for r in rows if r["job"] == job and r["condition"] == "quiet")
        busy_row = next(r for r in rows if r["job"] == job and r["condition"] == "busy")
        ratio = busy_row["wall_s"] / quiet["wall_s"]
        lines.append(f"{job}: quiet {quiet['wall_s']:.0f} s (target <= {QUIET_LIMIT_S:.0f} s: "
                     f"{'met' if quiet['wall_s'] <= QUIET_LIMIT_S else 'MISSED'}); busy ({busy} burners) "
                     f"{busy_row['wall_s']:.0f} s = {ratio:.2f} x quiet (target <= {BUSY_RATIO}: "
                     f"{'met' if ratio <= BUSY_RATIO else 'MISSED'})")
    accs = [r["test_acc"] for r in rows]
    low = [a for a in accs if a is None or a < MIN_TEST_ACC]
    lines.append(f"test accuracy: {', '.join('failed' if a is None else f'{a:.4f}' for a in accs)} "
                 f"(target >= {MIN_TEST_ACC} in every run: {'met' if not low else 'MISSED'})")
    return lines


def markdown(result: dict[str, Any]) -> str:
    """The table docs/benchmarks.md shows, from a ``--json`` file."""
    lines = ["| job | condition | wall s | x quiet | test acc % | load before |", "|---|---|---|---|---|---|"]
    quiet = {r["job"]: r["wall_s"] for r in result["rows"] if r["condition"] == "quiet"}
    for r in result["rows"]:
        condition = "quiet" if r["condition"] == "quiet" else f"{r['burners']} CPU burners"
        acc = "failed" if r["test_acc"] is None else f"{100 * r['test_acc']:.1f}"
        lines.append(f"| {r['job']} | {condition} | {r['wall_s']:.0f} | {r['wall_s'] / quiet[r['job']]:.2f} | {acc} "
                     f"| {r['load_before']:.2f} |")
    return "\n".join(lines + ["", *result["verdicts"]])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=None, help="print the markdown table of a --json file and stop")
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument("--busy", type=int, default=2, help="CPU-burning processes of the busy runs (default 2)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows and verdicts to this file")
    args = parser.parse_args(argv)
    if args.table is not None:
        result = json.loads(args.table.read_text())
        print(markdown(result))
        return result
    print(f"first hour: {', '.join(args.jobs)}; {os.cpu_count()} cores; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    rows = measure(args.jobs, args.busy)
    lines = verdicts(rows, args.busy)
    for line in lines:
        print(line)
    result = {"command": "python bench/first_hour.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cores": os.cpu_count(), "python": sys.version.split()[0], "rows": rows, "verdicts": lines,
              "date": time.strftime("%Y-%m-%d")}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
