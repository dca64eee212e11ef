"""Constructor-argument checks shared by the spaces. Messages name the argument, the value and
the allowed range."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from lightning_dnc.validation import check_int, is_finite_number, is_int

DEFAULT_OMEGA = 3.0


def int_pair(name: str, value: Any, minimum: int) -> tuple[int, int]:
    """``value`` as ``(lo, hi)`` ints with ``minimum <= lo <= hi``."""
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != 2
        or not all(is_int(v) for v in value)
    ):
        raise ValueError(f"`{name}` must be a pair (lo, hi) of integers with {minimum} <= lo <= hi, got {value!r}.")
    lo, hi = int(value[0]), int(value[1])
    if lo < minimum or lo > hi:
        raise ValueError(f"`{name}` must be a pair (lo, hi) of integers with {minimum} <= lo <= hi, got {value!r}.")
    return lo, hi


def positive_pair(name: str, value: Any) -> tuple[float, float]:
    """``value`` as ``(lo, hi)`` finite floats with ``0 < lo <= hi``."""
    ok = (
        not isinstance(value, (str, bytes))
        and isinstance(value, Sequence)
        and len(value) == 2
        and all(is_finite_number(v) for v in value)
    )
    if not ok or not (0 < float(value[0]) <= float(value[1])):
        raise ValueError(f"`{name}` must be a pair (lo, hi) of finite numbers with 0 < lo <= hi, got {value!r}.")
    return float(value[0]), float(value[1])


def positive_int(name: str, value: Any) -> int:
    """``value`` as an int >= 1."""
    return check_int(name, value, minimum=1)


def per_variable(name: str, value: Any, variables: tuple[str, ...], default: float, allow_zero: bool) -> dict[str, float]:
    """``omega``/``weights``: a number for every variable, or a mapping ``{variable: number}``
    (missing variables take ``default``)."""
    bound = ">= 0" if allow_zero else "> 0"
    if value is None:
        out = {v: default for v in variables}
    elif isinstance(value, Mapping):
        unknown = sorted(set(value) - set(variables))
        if unknown:
            raise ValueError(f"`{name}` has unknown variable(s) {unknown}; valid variables are {list(variables)}.")
        out = {v: value.get(v, default) for v in variables}
    else:
        out = {v: value for v in variables}
    for var, v in out.items():
        if not is_finite_number(v) or float(v) < 0 or (not allow_zero and float(v) == 0):
            raise ValueError(
                f"`{name}` must be a finite number {bound} (or a mapping of variable -> number) for each of "
                f"{list(variables)}; got {v!r} for {var!r}."
            )
    result = {k: float(v) for k, v in out.items()}
    if allow_zero and not sum(result.values()) > 0:
        raise ValueError(f"`{name}` must have a positive sum over {list(variables)}, got {value!r}.")
    return result
