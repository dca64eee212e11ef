"""Real training: the command line's quick budget on digits with ``--fidelity none`` and ``asha``.

For each family and seed both searches run through ``python -m lightning_dnc.cli search`` (10 epochs
per candidate, rungs 1, 3, 10 with asha); reported per family: the best objective of each search,
the fixed-epoch searches' median, the asha searches at least as good as that median, and the wall
time of each asha search over the median fixed-epoch wall time (target: as good in <= 0.4x).

Usage: ``python bench/asha_real.py --families mlp cnn --seeds 5 [--out DIR]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def run(family: str, seed: int, fidelity: str, out: Path) -> dict[str, float]:
    from lightning_dnc import cli

    folder = out / f"{family}-{fidelity}-{seed}"
    started = time.perf_counter()
    code = cli.main(["search", "--family", family, "--seed", str(seed), "--fidelity", fidelity, "--out",
                     str(folder), "--quiet", "true", "--logger", "none"])
    wall = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"search {folder} failed with exit code {code}")
    from lightning_dnc.search import SearchResult

    result = SearchResult.from_json((folder / "result.json").read_text())
    return {"best": float(result.best_loss), "wall_s": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["mlp", "cnn"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="asha-real-"))
    for family in args.families:
        rows = {f: [run(family, s, f, out) for s in range(args.seeds)] for f in ("none", "asha")}
        median_best = statistics.median(r["best"] for r in rows["none"])
        median_wall = statistics.median(r["wall_s"] for r in rows["none"])
        good = [r for r in rows["asha"] if r["best"] <= median_best]
        print(f"{family}: fixed-epoch best objectives {[round(r['best'], 4) for r in rows['none']]} (median "
              f"{median_best:.4f}), wall {[round(r['wall_s']) for r in rows['none']]} s (median {median_wall:.0f} s)")
        print(f"{family}: asha best objectives {[round(r['best'], 4) for r in rows['asha']]}, wall "
              f"{[round(r['wall_s']) for r in rows['asha']]} s; {len(good)}/{len(rows['asha'])} at least as good as "
              f"the fixed-epoch median; wall time ratios {[round(r['wall_s'] / median_wall, 2) for r in rows['asha']]}")


if __name__ == "__main__":
    main()
