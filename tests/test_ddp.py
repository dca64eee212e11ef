"""A multi-device candidate: DDP with 2 CPU processes (gloo) trains and reports t_tr.

Lightning's ``strategy="ddp"`` re-launches the running *script* for ranks >= 1, so the candidate
runs in a small script in a subprocess (not inside pytest). Every rank must end with the same
record (t_tr is the maximum over ranks of each epoch, metrics are summed over ranks), which is what
lets a search script run in lockstep on all ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import json, os
    from lightning_dnc.data import DigitsDataModule
    from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator

    if __name__ == "__main__":
        evaluator = CandidateEvaluator(DigitsDataModule(flatten=True), epochs=2, accelerator="cpu", devices=2,
                                       seed=0, trainer_kwargs={"strategy": "ddp"})
        record = evaluator.evaluate({"family": "mlp", "hidden_mlp": [32]}).to_dict()
        with open(f"record_rank{int(os.environ.get('LOCAL_RANK', 0))}.json", "w") as out:
            json.dump(record, out)
    """
)


def test_ddp_candidate_on_two_cpu_processes_trains_and_reports_t_tr(tmp_path):
    script = tmp_path / "ddp_candidate.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    records = {rank: json.loads((tmp_path / f"record_rank{rank}.json").read_text()) for rank in (0, 1)}
    zero, one = records[0], records[1]
    assert zero["status"] == "ok", zero["error"]
    assert zero["extra"]["world_size"] == 2 and zero["device"] == "cpu x2"
    assert zero["epochs_run"] == 2 and zero["t_tr"] > 0
    assert zero["t_tr"] == zero["extra"]["epoch_times"][1]  # SPEC: epochs 2..N
    # Same record on every rank: t_tr reduced over ranks, validation metrics summed over shards.
    for key in ("t_tr", "best_val_acc", "best_val_loss", "n_params", "config"):
        assert zero[key] == one[key], key
