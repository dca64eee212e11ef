"""The LCBench / real-training HPO benchmark behind ``bench/hpo_bench.py``: the shared space, the
tasks and their tune/test split, the methods (lightning-dnc, Optuna, SMAC3, DEHB, one-epoch-top-k),
traces, metrics and report. ``bench/`` is on ``sys.path`` when a bench runs, so modules import each
other as ``hpo.<module>``."""
