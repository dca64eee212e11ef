"""Pick the torch intra-op thread count a candidate trains fastest with, on this machine, now.

Torch's default is one intra-op thread per core. On a quiet machine that is usually fastest for
large steps, but when other processes share the cores the threads of one step wait for each other
(a digits CNN epoch took 0.55 s with one thread and 2.7 s with two at load 5.5 on a 2-core
machine). The right count depends on the network, the batch and the load at the time, so it is
measured on the candidate's own training: :class:`ThreadRace` hands out the thread count of each of
the first batches in turn and keeps the count whose batches took the least median time. The median,
not the minimum: a multi-threaded step under load is sometimes lucky, and training lasts long enough
to meet the typical case. The batches of the race are real training batches, so it costs no extra
steps.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

import torch

from lightning_dnc.validation import check_int, check_number


def thread_counts(max_threads: int) -> tuple[int, ...]:
    """The thread counts worth trying up to ``max_threads``: every count up to 4, then powers of two and the maximum."""
    top = max(1, int(max_threads))
    counts = {n for n in range(1, min(top, 4) + 1)}
    counts.update(2 ** k for k in range(2, int(math.log2(top)) + 1))
    counts.add(top)
    return tuple(sorted(counts))


FAR_APART = 2.0
"""A count whose fastest batch took this many times the leader's slowest is out of the race at once."""


class ThreadRace:
    """Decide the fastest thread count from the candidate's own training batches, while it trains.

    The first training batches run with each count still in the race in turn (round-robin, starting
    with ``prefer``, the order reversed every round so no count always follows another); each
    batch's seconds come back through :meth:`record`. A count whose fastest batch took
    :data:`FAR_APART` times the leader's slowest leaves the race at once (under contention the wrong
    count is often 5-10x slower: it costs one batch, not a round). The race is decided when one
    count is left, when every count has ``min_rounds`` timings and the leader's slowest batch beats
    every other count's fastest, or when every count has ``rounds`` timings: the smallest median
    wins, ties within ``tie_tolerance`` going to fewer threads. The raced batches are real training
    batches: the race costs only the difference between the counts on them.

    Parameters
    ----------
    counts : sequence of int
        Thread counts to race (:func:`thread_counts`); a single count is decided at once.
    rounds, min_rounds : int, default 4, 2
        Timed batches per count at most, and before an early decision.
    tie_tolerance : float, default 0.03
        A larger count must be this much faster (relative) to be chosen over a smaller one.
    prefer : int, optional
        The count raced first (e.g. the previous candidate's choice).
    """

    def __init__(self, counts: Sequence[int], rounds: int = 4, min_rounds: int = 2, tie_tolerance: float = 0.03,
                 prefer: int | None = None) -> None:
        self.counts = sorted({check_int("counts", int(n), 1) for n in counts})
        if not self.counts:
            raise ValueError("`counts` must hold at least one thread count >= 1.")
        self.min_rounds = check_int("min_rounds", min_rounds, 1)
        self.rounds = check_int("rounds", rounds, self.min_rounds)
        self.tie_tolerance = check_number("tie_tolerance", tie_tolerance, 0.0)
        self.seconds: dict[int, list[float]] = {n: [] for n in self.counts}
        self.alive = list(self.counts)
        if prefer is not None and int(prefer) in self.alive:
            self.alive.remove(int(prefer))
            self.alive.insert(0, int(prefer))
        self._turn = 0
        self.threads: int | None = self.counts[0] if len(self.counts) == 1 else None

    @property
    def decided(self) -> bool:
        """True once :attr:`threads` holds the choice."""
        return self.threads is not None

    def next_count(self) -> int:
        """The thread count of the next timed batch (the choice once decided)."""
        if self.threads is not None:
            return self.threads
        turn, position = divmod(self._turn, len(self.alive))
        order = self.alive if turn % 2 == 0 else self.alive[::-1]
        return order[position]

    def record(self, count: int, seconds: float) -> None:
        """The seconds of one batch trained with ``count`` threads; decides when enough are in."""
        if self.threads is not None or int(count) not in self.alive:
            return
        self.seconds[int(count)].append(float(seconds))
        self._turn += 1
        timed = [n for n in self.alive if self.seconds[n]]
        if len(timed) == len(self.alive):
            leader = self._fastest(timed)
            slowest = max(self.seconds[leader])
            out = [n for n in self.alive if n != leader and min(self.seconds[n]) > FAR_APART * slowest]
            if out:
                self.alive = [n for n in self.alive if n not in out]
                self._turn = 0
        if len(self.alive) == 1:
            self.threads = self.alive[0]
            return
        if self._turn % len(self.alive) != 0:
            return  # decide only after whole rounds
        done = min(len(self.seconds[n]) for n in self.alive)
        if done >= self.rounds or (done >= self.min_rounds and self._clearly_apart()):
            self.threads = self._fastest(self.alive)

    def medians(self) -> dict[int, float]:
        """Median seconds per batch of each count timed so far."""
        return {n: float(statistics.median(v)) for n, v in self.seconds.items() if v}

    def _fastest(self, counts: Sequence[int]) -> int:
        medians = self.medians()
        ordered = sorted(counts)
        best = ordered[0]
        for n in ordered[1:]:
            if medians[n] < medians[best] * (1.0 - self.tie_tolerance):
                best = n
        return best

    def _clearly_apart(self) -> bool:
        fastest = self._fastest(self.alive)
        worst_of_fastest = max(self.seconds[fastest])
        return all(min(self.seconds[n]) > worst_of_fastest for n in self.alive if n != fastest)

    def to_dict(self) -> dict[str, object]:
        """Plain data for a trial's record: the choice and the median seconds per batch of each count."""
        return {"threads": self.threads, "mode": "auto",
                "batch_seconds": {str(n): round(s, 6) for n, s in self.medians().items()},
                "timed_batches": sum(len(v) for v in self.seconds.values())}


def available_threads() -> int:
    """Torch's intra-op thread count in this process (its share of the cores: a Ray worker's ``num_cpus``)."""
    return max(1, int(torch.get_num_threads()))


__all__ = ["FAR_APART", "ThreadRace", "available_threads", "thread_counts"]
