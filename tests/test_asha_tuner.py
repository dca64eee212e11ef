"""``DeepNCheapTuner(fidelity="asha")`` and ``--fidelity asha`` end to end on digits (tiny budgets)."""

from __future__ import annotations

import pytest

import lightning_dnc as dnc
from lightning_dnc.cli.parser import build_parser
from lightning_dnc.data import DigitsDataModule

TINY = dict(search_epochs=3, min_epochs=1, prior_points=3, steps=0, training_prior_points=2, training_steps=0,
            explore=20, progress=False, stage2_order=[])


def test_tuner_runs_a_multi_fidelity_search_without_a_results_folder():
    dm = DigitsDataModule()
    model = dnc.DnCModel(family="mlp", datamodule=dm)
    trainer = dnc.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False)
    result = trainer.tune(model, dnc=dnc.DeepNCheapTuner(wc=0.1, fidelity="asha", **TINY))
    rungs = result.meta["rungs"]
    assert rungs["epochs"] == [1, 3] and rungs["candidates_per_rung"] == [5, 2]
    assert rungs["checkpoints"]["folder"] is None and rungs["checkpoints"]["peak_files"] >= 1
    assert result.best.trial.rung.epochs == 3 and model.config["hidden_mlp"] == result.best_config["hidden_mlp"]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"fidelity": "bohb"}, r"`fidelity` must be one of \['asha'\]"),
    ({"min_epochs": 2}, "applies only with fidelity='asha'"),
    ({"fidelity": "asha", "reduction_factor": 1}, "`reduction_factor` must be an integer >= 2"),
    ({"fidelity": "asha", "search_epochs": 5, "min_epochs": 6}, "between 1 and `search_epochs`"),
])
def test_bad_fidelity_settings_are_refused_before_anything_trains(kwargs, match):
    with pytest.raises(ValueError, match=match):
        dnc.DeepNCheapTuner(**kwargs)


def test_cli_options_default_to_the_papers_fixed_epochs():
    parser = build_parser()
    options = parser.parse_args(["search"])
    assert options.search.fidelity == "none" and options.search.min_epochs is None
    assert options.search.reduction_factor == 3
