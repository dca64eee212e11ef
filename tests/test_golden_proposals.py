"""Golden proposals: the staged engine's decisions, frozen before the engine was split into stages.

``tests/golden/proposals.json`` holds every proposal (trial id, stage, group, config) of
``StagedSearch`` driven by a fixed synthetic objective, for both families, two seeds and batch
sizes 1 and 3 (constant liar), plus one run with failing candidates. The paper's procedure must
keep making exactly these proposals; a change that alters them on purpose regenerates the file
with ``python tests/test_golden_proposals.py --write`` and says why in its commit.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

from lightning_dnc.search import Evaluation, Objective, StagedSearch
from lightning_dnc.space import CNNSpace, MLPSpace, TrainingSpace

GOLDEN = Path(__file__).resolve().parent / "golden" / "proposals.json"
CASES = [
    {"family": family, "seed": seed, "batch": batch, "fail": False}
    for family in ("cnn", "mlp") for seed in (0, 1) for batch in (1, 3)
] + [{"family": "cnn", "seed": 2, "batch": 2, "fail": True}]


def synthetic_evaluation(config: dict[str, Any], fail: bool) -> Evaluation:
    """A deterministic stand-in for training: accuracy and cost from the configuration alone."""
    if config["family"] == "cnn":
        size = sum(config["out_channels"])
        acc = 0.80 + 0.01 * min(len(config["out_channels"]), 8) + 0.002 * sum(s == 2 for s in config["strides"])
        acc -= 0.001 * sum(1 for a in config["apply_bns"] if not a)
    else:
        size = sum(config["hidden_mlp"]) + 1
        acc = 0.85 - abs(size - 300) / 3000
    acc += {"relu": 0.0, "tanh": 0.01, "sigmoid": -0.05}[config["act"]]
    acc -= 0.1 * abs(math.log10(config["lr"]) + 3) / 4
    if config["weight_decay"] != "auto":
        acc -= config["weight_decay"] * 50
    if fail and size % 3 == 0:
        return Evaluation(config=config, status="failed", failure_reason="exception", error="boom")
    return Evaluation(config=config, best_val_acc=min(acc, 0.999), t_tr=1.0 + size / 1000, n_params=100 * size + 10)


def run_case(family: str, seed: int, batch: int, fail: bool) -> list[dict[str, Any]]:
    """Every proposal of one search, in the order handed out."""
    space = CNNSpace(num_conv_layers=(4, 7)) if family == "cnn" else MLPSpace(num_hidden_layers=(0, 2))
    search = StagedSearch(family, space, TrainingSpace(), Objective(wc=0.1), prior_points=4, steps=3, explore=60,
                          epochs=3, seed=seed, training_prior_points=3, training_steps=3, top_k=2, strategy="paper")
    proposals: list[dict[str, Any]] = []
    while not search.finished:
        asked = search.ask(batch)
        assert asked, "ask returned nothing although nothing is pending"
        for p in asked:
            proposals.append({"trial_id": p.trial_id, "stage": p.stage, "group": p.group, "config": p.config})
        for p in asked:
            search.tell(p.trial_id, synthetic_evaluation(p.config, fail))
    best = [ranked.trial.trial_id for ranked in search.result().top_k]
    return [*proposals, {"top_k": best}]


def all_cases() -> dict[str, Any]:
    return {f"{c['family']}-seed{c['seed']}-ask{c['batch']}{'-failing' if c['fail'] else ''}": run_case(**c)
            for c in CASES}


@pytest.mark.parametrize("name", sorted(json.loads(GOLDEN.read_text())) if GOLDEN.is_file() else [])
def test_proposals_are_byte_identical_to_the_golden_file(name):
    golden = json.loads(GOLDEN.read_text())[name]
    case = next(c for c in CASES if name.startswith(f"{c['family']}-seed{c['seed']}-ask{c['batch']}")
                and name.endswith("-failing") == c["fail"])
    now = run_case(**case)
    assert json.dumps(now, sort_keys=True) == json.dumps(golden, sort_keys=True)


def test_the_golden_file_covers_every_case():
    assert GOLDEN.is_file(), "regenerate with: python tests/test_golden_proposals.py --write"
    golden = json.loads(GOLDEN.read_text())
    assert len(golden) == len(CASES)
    stages = {p["stage"] for runs in golden.values() for p in runs if "stage" in p}
    assert stages == {1, 2, 3}


if __name__ == "__main__" and "--write" in sys.argv:
    GOLDEN.write_text(json.dumps(all_cases(), sort_keys=True, indent=1) + "\n")
    print(f"wrote {GOLDEN}")
