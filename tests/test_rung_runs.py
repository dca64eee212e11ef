"""Multi-fidelity rung runs: a candidate continued from its rung checkpoints trains exactly the curve of
an uninterrupted run with the same seed (weights, optimizer, LR schedule, RNG all carried)."""

from __future__ import annotations

import pytest
import torch

from lightning_dnc.data import DigitsDataModule
from lightning_dnc.lightning.candidate.evaluator import CandidateEvaluator
from lightning_dnc.search.core.trial import RUN_KEY, Proposal, RungRun

# 4 epochs with the LR milestones at 2 and 3: the rungs 1 and 2 stop before and on a milestone
MLP = {"family": "mlp", "hidden_mlp": [24], "batch_size": 64, "epochs": 4, "dropout_probs_mlp": [0.3]}


@pytest.fixture(scope="module")
def digits():
    return DigitsDataModule(flatten=True)


def _rung(trial_id, rung, epochs, from_epoch, resume, save):
    """The evaluator's arguments for a rung run: the config and the explicit ``run``."""
    proposal = Proposal(trial_id, 1, dict(MLP), None, RungRun(rung, epochs, from_epoch, resume, 0, save))
    return {"config": dict(proposal.config), "run": proposal.run}


def test_promoted_candidate_has_the_curve_of_an_uninterrupted_run(digits, tmp_path):
    evaluator = CandidateEvaluator(digits, accelerator="cpu", seed=3, checkpoint_dir=tmp_path, measure_costs=False)
    whole = evaluator.evaluate(dict(MLP))
    first = evaluator.evaluate(**_rung(0, 0, 1, 0, None, True))
    assert (tmp_path / "trial_00000.ckpt").is_file()
    second = evaluator.evaluate(**_rung(1, 1, 2, 1, 0, True))
    top = evaluator.evaluate(**_rung(2, 2, 4, 2, 1, False))
    assert not (tmp_path / "trial_00002.ckpt").exists(), "the top rung writes no checkpoint"
    assert first.val_acc_curve == whole.val_acc_curve[:1]
    assert second.val_loss_curve == whole.val_loss_curve[:2]
    assert top.ok and top.extra["rung"]["continued"]
    assert top.val_loss_curve == whole.val_loss_curve, "same weights, shuffles, dropout and LR schedule"
    assert top.train_loss_curve == whole.train_loss_curve and top.val_acc_curve == whole.val_acc_curve
    assert top.best_val_acc == whole.best_val_acc and top.epochs_run == 4
    assert len(top.extra["epoch_times"]) == 4, "t_tr over epochs 2..e of the whole candidate"
    state = torch.load(tmp_path / "trial_00001.ckpt", weights_only=True)
    assert state["epoch"] == 2 and "state_dict" in state


def test_missing_checkpoint_trains_the_rung_from_scratch(digits, tmp_path):
    evaluator = CandidateEvaluator(digits, accelerator="cpu", seed=3, checkpoint_dir=tmp_path, measure_costs=False)
    direct = evaluator.evaluate(**_rung(0, 0, 2, 0, None, False))
    again = evaluator.evaluate(**_rung(5, 1, 2, 1, 4, False))  # trial 4's checkpoint was never written
    assert again.ok and not again.extra["rung"]["continued"]
    assert again.val_loss_curve == direct.val_loss_curve


def test_rung_costs_measured_once_and_carried(digits, tmp_path):
    evaluator = CandidateEvaluator(digits, accelerator="cpu", seed=3, checkpoint_dir=tmp_path)
    first = evaluator.evaluate(**_rung(0, 0, 1, 0, None, True))
    top = evaluator.evaluate(**_rung(1, 1, 2, 1, 0, False))
    assert first.t_tr_step is not None and top.t_tr_step == first.t_tr_step and top.t_tr == first.t_tr
    assert top.flops == first.flops


def test_rung_without_checkpoint_dir_is_refused(digits):
    evaluator = CandidateEvaluator(digits, accelerator="cpu", measure_costs=False)
    with pytest.raises(ValueError, match="checkpoint_dir"):
        evaluator.evaluate(**_rung(0, 0, 1, 0, None, True))
    legacy = _rung(0, 0, 1, 0, None, True)  # earlier versions: the run inside the config, still read
    with pytest.raises(ValueError, match="checkpoint_dir"):
        evaluator.evaluate({**legacy["config"], RUN_KEY: legacy["run"]})
    assert RUN_KEY == "rung_run"
