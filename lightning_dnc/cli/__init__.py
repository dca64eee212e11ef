"""``python -m lightning_dnc.cli``: search, train, and report from the command line.

Subcommands
-----------
fit      search (unless ``--candidate`` gives a configuration), then train the best configuration
         for ``--epochs``, report validation and test accuracy and save the checkpoint.
search   the search only.
report   re-rank a finished run for another ``--wc``/``--penalize`` without training.

Every option can come from a YAML file (``--config search.yaml``) and be overridden on the
command line; ``--print_config`` prints the fully resolved settings, which ``--config`` accepts
back. Built on jsonargparse (the parser behind LightningCLI): LightningCLI itself instantiates one
model and one datamodule class, while our ``fit`` runs a search, a final training and a report,
so we use its parser directly.

Reliability
-----------
- ``fit --resume RUN_DIR`` (or ``search --resume RUN_DIR``) continues a stopped search from its
  ``config.yaml`` and ``trials.jsonl``: finished trials are never re-run, an interrupted one is
  re-run once, the proposals are those of an uninterrupted run. Options given next to
  ``--resume`` override the saved ones; a changed search space or dataset is refused unless
  ``--force true``, a changed budget, seed or objective always. Resuming a finished run does
  nothing (``fit`` trains the final model if that had not happened yet).
- Ctrl+C and SIGTERM stop the run: the running trial is journaled as interrupted and the process
  exits with 130 (SIGINT) or 143 (SIGTERM) after one line saying how to resume.
- ``--max_consecutive_failures N`` failed candidates in a row stop the search (exit code 3) with
  a summary; ``--retry_oom`` retries an out-of-memory candidate once at half its batch size.
- Exit codes: 0 done, 1 failed, 2 bad input (nothing written), 3 too many failed candidates,
  130/143 interrupted.
- ``--config`` and ``config.yaml`` are read as YAML with a safe loader (no Python tags); binary
  files (pickles, checkpoints) are refused before parsing; nothing is ever unpickled.
"""

from lightning_dnc.cli.entry import RunInterrupted, main, run
from lightning_dnc.cli.parser import build_parser

__all__ = ["RunInterrupted", "build_parser", "main", "run"]
