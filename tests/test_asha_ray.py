"""A Ray worker that dies in the middle of a promoted rung is retried from the previous rung's checkpoint.

Skipped when Ray is not installed (``pip install "lightning-dnc[ray]"``).
"""

from __future__ import annotations

import os
import sys

import pytest

from lightning_dnc.executors.ray_executor import RAY_AVAILABLE

if not RAY_AVAILABLE:
    pytest.skip('Ray is not installed; `pip install "lightning-dnc[ray]"` to run these tests.', allow_module_level=True)

import ray  # noqa: E402
from ray import cloudpickle  # noqa: E402

from lightning_dnc.data import DigitsDataModule  # noqa: E402
from lightning_dnc.executors import RayExecutor  # noqa: E402
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator  # noqa: E402
from lightning_dnc.models import module as module_module  # noqa: E402
from lightning_dnc.search.core.trial import RUN_KEY, Proposal, RungRun  # noqa: E402

MLP = {"family": "mlp", "hidden_mlp": [24], "batch_size": 64, "epochs": 3}


class DieMidRungEvaluator(CandidateEvaluator):
    """The first continued rung kills its worker inside a training step (after the checkpoint was loaded)."""

    def __init__(self, *args, marker, **kwargs):
        super().__init__(*args, **kwargs)
        self.marker = str(marker)

    def evaluate(self, config, trial_id=None):
        continued = config.get(RUN_KEY, {}).get("load") is not None
        if continued and not os.path.exists(self.marker):
            original = module_module.CandidateModule.training_step

            def dying_step(module, batch, batch_idx):
                open(self.marker, "w").close()
                os._exit(1)

            module_module.CandidateModule.training_step = dying_step
            try:
                return super().evaluate(config, trial_id)
            finally:
                module_module.CandidateModule.training_step = original
        return super().evaluate(config, trial_id)


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        yield
    finally:
        ray.shutdown()
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


def test_worker_dying_mid_rung_is_retried_from_the_last_checkpoint(tmp_path):
    dm = DigitsDataModule(flatten=True)
    local = CandidateEvaluator(dm, accelerator="cpu", seed=1, checkpoint_dir=tmp_path / "ref", measure_costs=False)
    whole = local.evaluate(dict(MLP))
    evaluator = DieMidRungEvaluator(dm, accelerator="cpu", seed=1, checkpoint_dir=tmp_path / "ckpt",
                                    measure_costs=False, marker=tmp_path / "died")
    first = Proposal(0, 1, dict(MLP), None, RungRun(0, 1, 0, None, 0, True))
    top = Proposal(1, 1, dict(MLP), None, RungRun(1, 3, 1, 0, 0, False))
    with RayExecutor(evaluator, max_concurrent=1) as executor:
        executor.submit(0, dict(first.config), first.run)
        while executor.num_running:
            executor.collect()
        executor.submit(1, dict(top.config), top.run)
        records = {}
        while executor.num_running:
            records.update(dict(executor.collect()))
    record = records[1]
    assert (tmp_path / "died").exists(), "the worker did die"
    assert record.ok and record.extra["worker"]["attempts"] == 2
    assert record.extra["rung"]["continued"], "the retry continued from the rung-0 checkpoint"
    assert record.val_loss_curve == whole.val_loss_curve
