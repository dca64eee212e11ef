"""CPU-burning processes beside a measurement: what "a busy machine" means in the benches."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator

BURN = "while True:\n    pass\n"
"""One pure-Python busy loop: it keeps one core fully busy and allocates nothing."""


@contextlib.contextmanager
def cpu_burners(count: int) -> Iterator[list[subprocess.Popen]]:
    """Run ``count`` processes that each keep one core busy for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(max(int(count), 0))]
    time.sleep(0.5 if procs else 0.0)  # let them reach full speed before the measurement starts
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
