"""How long do the closed-form costs take for a BO pool? ``exact_costs`` over 1000 configurations.

For each family, ``--pool`` configurations are sampled from the default stage-1 space (CNN on
32x32x3 inputs, MLP on 784 features) twice: as the skeleton dicts a stage-1 pool holds and as
complete configs (every per-layer key given, as stage 2 and 3 hold them). Each measure is timed
``--repeats`` times; reported: the median wall and CPU (``process_time``) milliseconds of the whole
call (dicts to arrays, then the counts) and of the counts alone on a prepared
:class:`~lightning_dnc.space.exact_costs.ConfigTable`. A third row per measure starts from the
pool's key rows (``space.pool_arrays``, what a BO pick holds):
:func:`~lightning_dnc.space.cost_features.pool_table`, then the counts. Target: <= 5 ms per 1000
configurations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_dnc.space import CNNSpace, MLPSpace  # noqa: E402
from lightning_dnc.space.config import complete_config  # noqa: E402
from lightning_dnc.space.cost_features import pool_table  # noqa: E402
from lightning_dnc.space.exact_costs import EXACT_MEASURES, DataShape, config_table, costs_from_table, exact_costs  # noqa: E402

TARGET_MS = 5.0


def _timed(function: Callable[[], Any], repeats: int) -> dict[str, float]:
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        function()
        wall.append(1e3 * (time.perf_counter() - w))
        cpu.append(1e3 * (time.process_time() - c))
    return {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--json", type=str, default=None)
    args = parser.parse_args(argv)
    load = os.getloadavg()
    cases = {"cnn": (CNNSpace(input_size=32), DataShape((3, 32, 32), 10, 40_000)),
             "mlp": (MLPSpace(), DataShape((784,), 10, 48_000))}
    rows: list[dict[str, Any]] = []
    for family, (space, data) in cases.items():
        skeletons = [{**c, "family": family} for c in space.sample(args.pool, seed=0, method="random")]
        for kind, configs in (("skeleton", skeletons), ("complete", [complete_config(c) for c in skeletons])):
            table = config_table(family, configs)
            for measure in EXACT_MEASURES:
                whole = _timed(lambda: exact_costs(family, configs, data, measure), args.repeats)
                counts = _timed(lambda: costs_from_table(table, data, measure), args.repeats)
                rows.append({"family": family, "configs": kind, "measure": measure, **whole,
                             "counts_wall_ms": counts["wall_ms"], "counts_cpu_ms": counts["cpu_ms"]})
        keys = space.pool_arrays(args.pool, seed=0).keys
        for measure in EXACT_MEASURES:
            whole = _timed(lambda: costs_from_table(pool_table(space, keys), data, measure), args.repeats)
            rows.append({"family": family, "configs": "pool keys", "measure": measure, **whole,
                         "counts_wall_ms": None, "counts_cpu_ms": None})
    result = {"pool": args.pool, "repeats": args.repeats, "target_ms": TARGET_MS, "load_average_before": load,
              "load_average_after": os.getloadavg(), "rows": rows}
    print(f"exact_costs over {args.pool} configs; median of {args.repeats}; load average {load[0]:.2f} before, "
          f"{result['load_average_after'][0]:.2f} after (2 shared cores)")
    print(f"{'family':<7}{'configs':<10}{'measure':<13}{'wall ms':>9}{'cpu ms':>9}{'counts wall':>13}{'counts cpu':>12}")
    for r in rows:
        counts = "" if r["counts_wall_ms"] is None else f"{r['counts_wall_ms']:>13.2f}{r['counts_cpu_ms']:>12.2f}"
        print(f"{r['family']:<7}{r['configs']:<10}{r['measure']:<13}{r['wall_ms']:>9.2f}{r['cpu_ms']:>9.2f}{counts}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
