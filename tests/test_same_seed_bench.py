"""bench/same_seed.py compares two runs' journals trial by trial."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import same_seed  # noqa: E402


def journal(folder: Path, configs: list[dict], times: list[float]) -> Path:
    folder.mkdir()
    lines = [{"event": "header"}]
    for i, (config, t) in enumerate(zip(configs, times)):
        lines.append({"event": "proposed", "trial_id": i, "config": config})
        lines.append({"event": "finished", "trial_id": i, "evaluation": {"t_tr": t}})
    (folder / "trials.jsonl").write_text("\n".join(json.dumps(line) for line in lines))
    return folder


def test_compare_finds_the_first_different_proposal(tmp_path):
    a = journal(tmp_path / "a", [{"x": 1}, {"x": 2}, {"x": 3}], [1.0, 2.0, 3.0])
    b = journal(tmp_path / "b", [{"x": 1}, {"x": 2}, {"x": 4}], [1.5, 2.0, 3.0])
    row = same_seed.compare(a, b)
    assert row["identical"] is False and row["first_difference"] == 2 and row["t_tr_ratio_max"] == 1.5
    same = same_seed.compare(a, journal(tmp_path / "c", [{"x": 1}, {"x": 2}, {"x": 3}], [1.0, 1.0, 1.0]))
    assert same["identical"] is True and same["first_difference"] is None
    shorter = same_seed.compare(a, journal(tmp_path / "d", [{"x": 1}, {"x": 2}], [1.0, 2.0]))
    assert shorter["identical"] is False and shorter["first_difference"] == 2
