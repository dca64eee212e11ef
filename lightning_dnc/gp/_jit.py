"""Numba decorator policy for every compiled kernel in :mod:`lightning_dnc.gp`.

One place decides the compile flags so that all kernels agree:

- ``cache=True``: compiled machine code is written next to the sources (or under
  ``NUMBA_CACHE_DIR``) so a fresh process loads it instead of compiling again.
- ``fastmath=False``: the kernels must be exactly symmetric and give exactly 1 on identical
  configurations; re-association would break both.
- ``error_model="numpy"``: division follows IEEE rules instead of raising, which keeps the inner
  loops free of Python-exception checks. Kernels never raise; they return a status instead.
- ``parallel=True`` only through :func:`jit_parallel`, used by outer ``prange`` loops whose
  iterations write disjoint rows. Serial and parallel variants are *distinct* Python functions
  with distinct names, because compiling one function twice with different ``parallel=`` flags
  and ``cache=True`` makes both share a single cache entry (seen with numba 0.68).
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])

JIT_OPTIONS: dict[str, Any] = {"cache": True, "nogil": True, "fastmath": False, "error_model": "numpy"}


def jit(fn: F) -> F:
    """Compile ``fn`` as a serial nopython kernel with the package policy."""
    return numba.njit(**JIT_OPTIONS)(fn)  # type: ignore[return-value]


def jit_parallel(fn: F) -> F:
    """Compile ``fn`` as a parallel nopython kernel (outer ``prange`` over disjoint rows)."""
    return numba.njit(parallel=True, **JIT_OPTIONS)(fn)  # type: ignore[return-value]
