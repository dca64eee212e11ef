"""SPEC §1 objective: formula, references, failures, validation."""

from __future__ import annotations

import math

import pytest

from lightning_dnc.search.core.objective import (
    FAILED_LOSS_DEFAULT,
    FAILED_LOSS_MARGIN,
    LOSS_FLOOR,
    Objective,
    pessimistic_loss,
)
from lightning_dnc.search.core.records import Evaluation


def ev(acc=0.9, t_tr=2.0, n_params=1000, **kw):
    return Evaluation(config={}, best_val_acc=acc, t_tr=t_tr, n_params=n_params, **kw)


def test_classification_loss_penalising_training_time():
    obj = Objective(wc=0.1, t_tr_ref=4.0)
    assert obj.loss(ev(acc=0.8, t_tr=2.0)) == pytest.approx(math.log10(0.2 + 0.1 * 0.5))


def test_loss_penalising_parameters():
    obj = Objective(wc=10, penalize="n_params", n_params_ref=4000)
    assert obj.loss(ev(acc=0.95, n_params=1000)) == pytest.approx(math.log10(0.05 + 10 * 0.25))


def test_regression_uses_scaled_validation_loss():
    obj = Objective(wc=0.0, regression_scale=10.0)
    record = Evaluation(config={}, task="regression", best_val_loss=0.03, t_tr=1.0, n_params=5)
    assert obj.performance(record) == pytest.approx(0.3)
    assert obj.loss(record) == pytest.approx(math.log10(0.3))


def test_wc_zero_needs_no_reference_and_perfect_accuracy_is_floored():
    obj = Objective(wc=0.0)
    assert obj.loss(ev(acc=1.0)) == pytest.approx(math.log10(LOSS_FLOOR))


def test_references_default_to_first_successful_evaluation():
    failed = Evaluation(config={}, status="failed", failure_reason="oom", t_tr=9.0, n_params=9)
    bound = Objective(wc=0.1).with_references([failed, ev(t_tr=3.0, n_params=70), ev(t_tr=5.0, n_params=80)])
    assert bound.t_tr_ref == 3.0 and bound.n_params_ref == 70.0
    kept = Objective(wc=0.1, t_tr_ref=1.5).with_references([ev(t_tr=3.0)])
    assert kept.t_tr_ref == 1.5


def test_unknown_reference_is_a_clear_error():
    with pytest.raises(ValueError, match="reference of `penalize='t_tr'` is unknown"):
        Objective(wc=0.1).loss(ev())


def test_failed_or_unscorable_evaluations_have_no_loss():
    obj = Objective(wc=0.1, t_tr_ref=1.0)
    assert obj.loss(Evaluation(config={}, status="failed", failure_reason="nan")) is None
    assert obj.loss(ev(acc=float("nan"))) is None
    assert obj.loss(ev(acc=None)) is None
    assert obj.loss(ev(t_tr=None)) is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"wc": -0.1}, r"`wc` must be a finite number >= 0"),
        ({"wc": float("inf")}, r"`wc` must be a finite number >= 0"),
        ({"wc": True}, r"`wc` must be"),
        ({"penalize": "watts"},
         r"`penalize` must be one of \['t_tr', 'n_params', 'flops', 'latency', 'memory'\], got 'watts'"),
        ({"t_tr_mode": "wall"}, r"`t_tr_mode` must be one of \['step', 'epoch'\], got 'wall'"),
        ({"t_tr_ref": 0}, r"`t_tr_ref` must be a finite number > 0"),
        ({"n_params_ref": -5}, r"`n_params_ref` must be a finite number > 0"),
        ({"regression_scale": 0}, r"`regression_scale` must be"),
    ],
)
def test_invalid_settings_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Objective(**kwargs)


def test_round_trip_and_unknown_keys():
    obj = Objective(wc=10, penalize="n_params", n_params_ref=5.0)
    assert Objective.from_dict(obj.to_dict()) == obj
    with pytest.raises(ValueError, match=r"Unknown objective key\(s\) \['w'\]"):
        Objective.from_dict({"w": 1})


def test_pessimistic_loss_rule():
    assert pessimistic_loss([-1.0, -0.5]) == pytest.approx(-0.5 + FAILED_LOSS_MARGIN)
    assert pessimistic_loss([], [-2.0, -1.0]) == pytest.approx(-1.0 + FAILED_LOSS_MARGIN)
    assert pessimistic_loss([], []) == FAILED_LOSS_DEFAULT


def test_t_tr_mode_picks_the_step_or_the_epoch_measurement():
    both = ev(t_tr=1.0, t_tr_step=1.0, t_tr_epoch=3.0)
    assert Objective(wc=1, t_tr_ref=1.0).cost(both) == 1.0  # "step" is the default
    assert Objective(wc=1, t_tr_ref=1.0, t_tr_mode="epoch").cost(both) == 3.0
    legacy = ev(t_tr=2.0)  # a 0.1.0 record: only t_tr, the epoch loop's
    assert Objective(wc=1, t_tr_ref=1.0).cost(legacy) == Objective(wc=1, t_tr_ref=1.0, t_tr_mode="epoch").cost(legacy)


@pytest.mark.parametrize(("penalize", "field", "value"), [
    ("flops", "flops", 5e4), ("latency", "latency", 2e-4), ("memory", "memory", 3e6)])
def test_every_cost_is_penalised_over_its_reference(penalize, field, value):
    obj = Objective(wc=10, penalize=penalize, **{f"{field}_ref": value * 2})
    assert obj.cost(ev(**{field: value})) == 0.5
    assert obj.loss(ev(acc=0.9, **{field: value})) == pytest.approx(math.log10(0.1 + 10 * 0.5))
    assert obj.loss(ev()) is None  # not measured: cannot be scored
    bound = Objective(penalize=penalize).with_references([ev(), ev(**{field: value})])
    assert bound.reference == value  # the first trial that measured it


def test_objectives_stored_by_0_1_0_read_as_epoch_mode():
    old = {"wc": 0.1, "penalize": "t_tr", "t_tr_ref": None, "n_params_ref": None, "regression_scale": 10.0}
    assert Objective.from_dict(old).t_tr_mode == "epoch"
    assert Objective.from_dict({**old, "t_tr_mode": "step"}).t_tr_mode == "step"
    assert Objective.from_dict(Objective().to_dict()) == Objective()
