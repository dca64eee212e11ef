"""The ask/tell driver loop and the out-of-memory retry run without torch or Lightning."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys
    from lightning_dnc.executors import InProcessExecutor, OomRetry, SearchAborted, drive
    from lightning_dnc.search import Evaluation, Objective, StagedSearch
    from lightning_dnc.space import MLPSpace, TrainingSpace

    class Quiet:
        def trial_started(self, *args): pass
        def trial_finished(self, *args): pass
        def stage_finished(self, *args): pass

    class Fake:
        calls = []
        def evaluate(self, config):
            self.calls.append(config["batch_size"])
            if config["batch_size"] >= 256:
                return Evaluation(config=dict(config), status="failed", failure_reason="oom", error="out of memory")
            return Evaluation(config=dict(config), best_val_acc=0.5 + sum(config["hidden_mlp"]) / 1e4, t_tr=0.1,
                              n_params=sum(config["hidden_mlp"]) + 1)

    fake = Fake()
    search = StagedSearch("mlp", MLPSpace(num_hidden_layers=(1, 1)), TrainingSpace(), Objective(wc=0.1),
                          prior_points=2, steps=1, explore=20, epochs=1, stage2_order=[],
                          training_prior_points=1, training_steps=1, strategy="paper")
    drive(search, InProcessExecutor(OomRetry(fake).evaluate), Quiet(), max_consecutive_failures=3)
    assert search.finished
    first = search.trials[0]
    assert first.config["batch_size"] == 256 and first.trained_config["batch_size"] == 128
    assert first.evaluation.extra["oom_retry"]["proposed_batch_size"] == 256
    assert 256 in fake.calls and 128 in fake.calls

    always = StagedSearch("mlp", MLPSpace(), TrainingSpace(), prior_points=3, steps=0, explore=20, epochs=1,
                          strategy="paper")
    failing = lambda config: Evaluation(config=dict(config), status="failed", failure_reason="exception", error="boom")
    try:
        drive(always, InProcessExecutor(failing), Quiet(), max_consecutive_failures=2)
    except SearchAborted as err:
        assert "2 candidates in a row failed" in str(err) and len(err.failures) == 2
    else:
        raise AssertionError("two failures in a row must stop the search")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "lightning"))
    assert not loaded, loaded
    print("ok")
    """
)


def test_driver_and_oom_retry_need_neither_torch_nor_lightning():
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok")
