"""``python -m lightning_dnc.cli``."""

from lightning_dnc.cli.entry import run

run()
