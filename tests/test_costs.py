"""Cost measurement in plain PyTorch: FLOPs against hand counts, the memory estimate, and the repeat
logic of the latency and step timings (on stand-in calls of known duration)."""

from __future__ import annotations

import time

import pytest
import torch

from lightning_dnc.lightning.references import memory_estimate
from lightning_dnc.measure import LatencyPlan, StepPlan, count_flops, inference_flops_per_sample, measure_latency
from lightning_dnc.measure.latency import plan_blocks, timeit_warmup_calls
from lightning_dnc.measure.steps import time_epoch
from lightning_dnc.models import build_network
from lightning_dnc.space.config import complete_config


def training_flops(net, x, y):
    return count_flops(lambda: torch.nn.functional.cross_entropy(net(x), y).backward())


def test_mlp_flops_match_the_hand_count():
    # 64 -> 32 -> 10: a multiply-add is 2 FLOPs; backward computes the weight gradient of both
    # layers and the input gradient of the second (the data needs no gradient).
    net = build_network(complete_config({"family": "mlp", "hidden_mlp": [32]}), (64,), 10)
    batch = 7
    forward = 2 * (64 * 32 + 32 * 10)
    assert inference_flops_per_sample(net, torch.randn(batch, 64)) == forward == 4736
    backward = 2 * 64 * 32 + 2 * 32 * 10 + 2 * 32 * 10
    assert training_flops(net, torch.randn(batch, 64), torch.zeros(batch, dtype=torch.long)) == batch * (
        forward + backward)


def test_cnn_flops_match_the_hand_count():
    # conv 1->4 and 4->8 (3x3, padding 1) on 8x8, batch norm, dropout, global average pool, linear 8->10.
    net = build_network(complete_config({"family": "cnn", "out_channels": [4, 8]}), (1, 8, 8), 10)
    conv1, conv2, head = 2 * 64 * 4 * 9 * 1, 2 * 64 * 8 * 9 * 4, 2 * 8 * 10
    forward = conv1 + conv2 + head
    assert inference_flops_per_sample(net, torch.randn(3, 1, 8, 8)) == forward == 41632
    backward = conv1 + 2 * conv2 + 2 * head  # conv1: weight gradient only
    x, y = torch.randn(3, 1, 8, 8), torch.zeros(3, dtype=torch.long)
    assert training_flops(net, x, y) == 3 * (forward + backward) == 3 * 120288


def test_flops_count_the_same_on_the_meta_device():
    config = complete_config({"family": "cnn", "out_channels": [4, 8]})
    with torch.device("meta"):
        net = build_network(config, (1, 8, 8), 10)
    assert inference_flops_per_sample(net, torch.zeros(1, 1, 8, 8, device="meta")) == 41632


def test_memory_estimate_parts():
    config = complete_config({"family": "mlp", "hidden_mlp": [32], "batch_size": 16})
    parts = memory_estimate(config, (64,), 10)
    n_params = 64 * 32 + 32 + 32 * 10 + 10
    assert parts.parameters == parts.gradients == 4 * n_params
    assert parts.optimizer_state == 2 * 4 * n_params + 4 * 4  # Adam: two moments and a step count per tensor
    assert parts.total == parts.parameters + parts.gradients + parts.optimizer_state + parts.activations
    # Activations grow linearly with the batch (the input, hidden outputs, dropout mask, logits).
    a = [memory_estimate({**config, "batch_size": b}, (64,), 10).activations for b in (16, 32, 48)]
    assert a[0] < a[1] < a[2] and a[2] - a[1] == a[1] - a[0] >= 16 * 4 * (64 + 32 + 10)


@pytest.mark.parametrize(("call_s", "plan", "expected"), [
    (1e-4, LatencyPlan(min_block_s=1e-3, repeats=7), (10, 7)),          # fast call: 10 calls per block
    (5e-3, LatencyPlan(min_block_s=1e-3, repeats=7), (1, 7)),           # slow call: one call per block
    (5e-3, LatencyPlan(min_block_s=1e-3, repeats=7, budget_s=0.021), (1, 4)),  # budget: 4 blocks of 1 call
    (5e-3, LatencyPlan(min_block_s=1e-3, repeats=7, min_repeats=3, budget_s=0.0), (1, 3)),  # never below min
])
def test_latency_block_plan(call_s, plan, expected):
    assert plan_blocks(call_s, plan) == expected


def test_latency_is_the_median_of_blocks_of_known_duration():
    calls = []

    def sleeper():
        calls.append(1)
        time.sleep(0.003)

    plan = LatencyPlan(min_block_s=0.005, repeats=5)
    assert plan_blocks(0.002, plan)[0] == 3  # ceil(5 ms / 2 ms) calls per block
    latency = measure_latency(sleeper, batch_size=4, plan=plan)
    # A loaded machine sleeps longer than asked, so fewer calls may fill a block; the logic is the same.
    assert latency.number in (1, 2) and len(latency.block_times) == 5  # ceil(5 ms / >= 3 ms) calls per block
    assert 0.003 <= latency.seconds and max(latency.block_times) >= latency.seconds
    assert latency.per_sample == pytest.approx(latency.seconds / 4)
    # calibration (Timer.timeit(1): its untimed warm-up calls and one timed) + 5 blocks of `number` calls
    assert len(calls) == timeit_warmup_calls(1) + 1 + 5 * latency.number


def test_step_timing_estimates_an_epoch_from_full_and_last_steps():
    calls = {"full": 0, "partial": 0}

    def full():
        calls["full"] += 1
        time.sleep(0.004)

    def partial():
        calls["partial"] += 1
        time.sleep(0.001)

    # Budget: all of one epoch of 10 full steps + 1 partial (~0.041 s), less 3 partial steps -> 9 repeats
    # of one full step each (the steps are longer than a block's 1 ms), capped at 6; the partial step
    # is timed in the first 3.
    plan = StepPlan(warmup=2, repeats=6, min_repeats=2, budget_fraction=1.0, min_block_s=1e-3)
    timing = time_epoch(full, partial, full_steps=10, epochs=1, plan=plan)
    assert timing.steps_per_repeat == 1 and len(timing.estimates) == 6
    assert calls == {"full": 2 + 6, "partial": 1 + 3}
    assert 10 * 0.004 + 0.001 <= timing.seconds_per_epoch < 1.5 * (10 * 0.004 + 0.001)
    assert timing.seconds_per_epoch <= min(timing.estimates)  # minimum per step kind, summed


def test_step_timing_groups_fast_steps_into_blocks_and_keeps_the_minimum_repeats():
    calls = []
    plan = StepPlan(warmup=1, repeats=10, min_repeats=3, budget_fraction=0.0, min_block_s=0.01)
    timing = time_epoch(lambda: (calls.append(1), time.sleep(0.002)), None, full_steps=50, plan=plan)
    assert len(timing.estimates) == 3  # no budget: the minimum
    # ~10 ms blocks of >= 2 ms steps: at most 5 per block; a loaded machine oversleeps, so fewer may do
    assert 2 <= timing.steps_per_repeat <= 5
    assert len(calls) == 1 + 3 * timing.steps_per_repeat
    assert timing.seconds_per_epoch >= 50 * 0.002
    median = time_epoch(lambda: time.sleep(0.002), None, full_steps=50, plan=StepPlan(statistic="median"))
    assert median.seconds_per_epoch >= 50 * 0.002


def test_step_plan_rejects_bad_values():
    with pytest.raises(ValueError, match="`statistic` must be one of"):
        StepPlan(statistic="mean")
    with pytest.raises(ValueError, match="`repeats` must be an integer >= 3"):
        StepPlan(repeats=2)
