"""Run the CLI with one injected fault (tests only; the library has no test hooks).

Usage: ``python tests/fault_injection.py FAULT K MARKER_DIR -- CLI ARGS...`` where FAULT is

- ``sigint`` / ``sigterm``: the process sends itself the signal inside ``training_step`` of trial K
  (the K-th candidate trained by this process, from 0), so the real signal handlers run while
  Lightning is fitting;
- ``sigkill_after``: SIGKILL once trial K is finished and journaled (as trial K+1 starts; with
  K = -1, after the whole search, before its results are written);
- ``hold``: at trial K, create ``MARKER_DIR/started`` and wait until ``MARKER_DIR/release`` exists.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    fault, k, marker_dir = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    cli_args = sys.argv[sys.argv.index("--") + 1:]

    from lightning_dnc import cli
    from lightning_dnc.lightning.candidate import evaluator as evaluator_module
    from lightning_dnc.lightning import search_loop as search_loop_module
    from lightning_dnc.models import module as module_module

    calls = {"n": 0, "armed": None}
    original_evaluate = evaluator_module.CandidateEvaluator.evaluate
    original_step = module_module.CandidateModule.training_step
    original_run_search = search_loop_module.run_search

    def evaluate(self, config):  # noqa: ANN001, ANN202
        index = calls["n"]
        calls["n"] += 1
        if fault == "sigkill_after" and k >= 0 and index == k + 1:
            os.kill(os.getpid(), signal.SIGKILL)
        if fault in ("sigint", "sigterm") and index == k:
            calls["armed"] = signal.SIGINT if fault == "sigint" else signal.SIGTERM
        if fault == "hold" and index == k:
            (marker_dir / "started").write_text(str(os.getpid()))
            deadline = time.monotonic() + 120
            while not (marker_dir / "release").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        return original_evaluate(self, config)

    def training_step(self, batch, batch_idx):  # noqa: ANN001, ANN202
        sig = calls["armed"]
        if sig is not None:
            calls["armed"] = None
            os.kill(os.getpid(), sig)
            time.sleep(5)  # the handler raises here
        return original_step(self, batch, batch_idx)

    def run_search(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        result = original_run_search(*args, **kwargs)
        if fault == "sigkill_after" and k == -1:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    evaluator_module.CandidateEvaluator.evaluate = evaluate
    module_module.CandidateModule.training_step = training_step
    search_loop_module.run_search = run_search
    return cli.main(cli_args)


if __name__ == "__main__":
    sys.exit(main())
