"""One candidate's training run: the evaluator and what it attaches to the child ``Trainer``.

- :mod:`.evaluator`: ``CandidateEvaluator`` trains one configuration and returns its ``Evaluation``.
- :mod:`.cost_probe`: measures step-mode ``t_tr``, FLOPs, latency and memory when training starts.
- :mod:`.candidate_threads`: the torch thread count each candidate trains with (``threads="auto"``).
- :mod:`.candidate_watch`: the search's ``max_time`` deadline inside a candidate, epoch lines.
- :mod:`.candidate_logs`, :mod:`.child_trainer`, :mod:`.timing`, :mod:`.user_metrics`,
  :mod:`.rung_runs`: its logger, its ``Trainer``, epoch times, metrics in the user's units, and the
  checkpoints of multi-fidelity rung runs.

A new per-candidate measurement or hook is a callback here, attached in ``CandidateEvaluator.evaluate``.
"""
