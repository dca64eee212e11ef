"""Every setting or config error of the command line is one line on stderr, spelled as the user types it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lightning_dnc import cli
from lightning_dnc.cli.messages import cli_spelling, parser_error_line


def _error_lines(capsys) -> list[str]:  # noqa: ANN001
    captured = capsys.readouterr()
    assert captured.out == "", "errors go to stderr, nothing to stdout"
    return captured.err.splitlines()


def test_unknown_yaml_key_is_one_line_on_stderr_naming_the_file(tmp_path):
    config = tmp_path / "search.yaml"
    config.write_text("wc: 0.1\npenalise: flops\n")
    out = tmp_path / "never"
    proc = subprocess.run([sys.executable, "-m", "lightning_dnc.cli", "fit", "--config", str(config), "--out",
                           str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert "unknown key 'penalise'" in lines[0] and "search.yaml" in lines[0] and "did you mean penalize" in lines[0]
    assert "usage:" not in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(("args", "expected"), [
    (["--budget", "huge"], "--budget 'huge' is not allowed: expected one of auto, quick, paper."),
    (["--logger", "wandb"], "expected one of csv, tensorboard, none"),
    (["--strategy", "greedy"], "expected one of paper, joint, revisit, train-first"),
    (["--augment", "maybe"], "expected one of true, false, auto"),
    (["--seed", "abc"], "--seed 'abc' is not allowed: expected an integer"),
    (["--penalise", "flops"], "unknown option --penalise (did you mean --penalize?)"),
])
def test_bad_choice_or_type_is_one_line(tmp_path, capsys, args, expected):
    assert cli.main(["fit", "--out", str(tmp_path / "never"), *args]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not (tmp_path / "never").exists()


def test_settings_errors_spell_cli_values_not_python(tmp_path, capsys):
    """``fidelity='asha'`` is ``--fidelity asha`` on the command line (no Python spelling left)."""
    code = cli.main(["fit", "--out", str(tmp_path / "never"), "--rung_model", "top"])
    assert code == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1
    assert "--rung_model" in lines[0] and "--fidelity asha" in lines[0] and "None" not in lines[0]
    assert "`" not in lines[0]


def test_bad_value_in_a_config_file_names_the_file(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text("budget: huge\n")
    assert cli.main(["fit", "--config", str(config), "--out", str(tmp_path / "never")]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "--budget 'huge' (in --config" in lines[0] and "c.yaml" in lines[0]


def test_missing_command_and_run_dir_are_one_line(capsys):
    assert cli.main([]) == 2
    assert _error_lines(capsys) == ["error: no command given; use one of fit, search, report "
                                    "(`python -m lightning_dnc.cli --help`)."]
    assert cli.main(["report"]) == 2
    lines = _error_lines(capsys)
    assert len(lines) == 1 and "RUN_DIR is missing" in lines[0]


def test_help_still_shows_the_usage(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["fit", "--help"])
    assert stopped.value.code == 0 and "usage:" in capsys.readouterr().out


# -- the text functions -----------------------------------------------------------------------------
def test_cli_spelling_rewrites_names_and_literals_outside_quotes():
    options = {"fidelity", "min_epochs", "strategy"}
    text = ("`min_epochs` (2) applies only with fidelity='asha'; set `fidelity` to None, got 'None' in "
            "the paper's `rung_model=True`.")
    assert cli_spelling(text, options) == ("--min_epochs (2) applies only with --fidelity asha; set --fidelity to "
                                          "none, got 'None' in the paper's `rung_model=True`.")
    assert cli_spelling("first line\n  second\n", options) == "first line; second"
    both = "put the files there or pass download=True (--download true) to fetch them."
    assert cli_spelling(both, {"download"}) == "put the files there or pass --download true to fetch them."


def test_parser_messages_without_a_pattern_still_become_one_line():
    line = parser_error_line('Parser key "wc":\n  Something odd\n  happened', "fit", ["wc"])
    assert line == "fit: --wc: Something odd; happened"
