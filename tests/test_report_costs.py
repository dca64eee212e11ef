"""The report's cost columns and its stage-2 decisions against the t_tr noise."""

from __future__ import annotations

import pytest

from lightning_dnc.results.decisions import stage2_decisions
from lightning_dnc.results.report import trial_rows, write_report
from lightning_dnc.search import Evaluation, Objective, SearchResult, Trial
from lightning_dnc.space.config import complete_config


def trial(i, stage, acc, t_tr, spread, group=None):
    config = complete_config({"family": "mlp", "hidden_mlp": [30], "epochs": 2})
    ev = Evaluation(config=config, best_val_acc=acc, t_tr=t_tr, t_tr_step=t_tr, t_tr_epoch=2 * t_tr, n_params=100,
                    flops=2000.0, latency=1e-4, memory=3e5, spread={"t_tr_step": spread, "t_tr_epoch": 4 * spread})
    return Trial(i, stage, config, ev, group)


def result():
    trials = [trial(0, 1, 0.90, 0.100, 0.002),
              trial(1, 2, 0.90, 0.097, 0.002, "ac"),   # cheaper by 3 ms, within 2 + 2 ms: noise
              trial(2, 2, 0.95, 0.150, 0.002, "do")]   # more accurate, 50 ms dearer: not noise
    meta = {"stage1_best": 0, "stage2_decisions": [{"group": "ac", "options": 1, "best_trial": 1, "adopted": True},
                                                   {"group": "do", "options": 1, "best_trial": 2, "adopted": True}]}
    return SearchResult(trials, Objective(wc=1.0, t_tr_ref=0.1), meta=meta)


def test_decisions_within_the_t_tr_noise_are_marked():
    rows = stage2_decisions(result())
    assert [(r["incumbent"], r["best"]) for r in rows] == [(0, 1), (1, 2)]
    assert rows[0]["within_noise"] is True and rows[0]["t_tr_noise"] == 0.004
    assert rows[1]["within_noise"] is False
    assert rows[0]["loss_change"] < 0  # the noise won a decision
    epoch = stage2_decisions(result().rescore(t_tr_mode="epoch"))
    assert epoch[0]["t_tr_noise"] == 0.016 and epoch[0]["t_tr_change"] == pytest.approx(-0.006)  # epoch loop


def test_report_shows_every_cost_with_the_t_tr_spread(tmp_path):
    rows = trial_rows(result())
    assert rows[0]["t_tr"] == 0.1 and rows[0]["t_tr_spread"] == 0.002 and rows[0]["flops"] == 2000.0
    report = write_report(tmp_path, result(), None, search_seconds=None, wc=1.0, penalize="t_tr").read_text()
    assert "0.1000 ± 0.0020" in report and "2 k" in report and "0.100" in report and "300 kB" in report
    assert "## Stage-2 decisions and t_tr noise" in report and "1 of 2 decisions" in report
