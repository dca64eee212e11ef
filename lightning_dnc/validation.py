"""Checks of user-given settings, shared by every room.

Each check raises :class:`SettingError` (a ``ValueError``) whose message names the setting in
back-ticks, the value received and what is allowed; :attr:`SettingError.name` lets a caller (the
command line) put its own spelling of the setting (``--prior_points``) in place of the name.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any


class SettingError(ValueError):
    """A setting has a value that is not allowed.

    Attributes
    ----------
    name : str
        The setting's name as the Python API spells it (``"prior_points"``).
    others : tuple of str
        Further settings the message names (a check of two settings together).
    """

    def __init__(self, name: str, message: str, others: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.name = name
        self.others = tuple(others)

    def renamed(self, label: str | Callable[[str], str]) -> str:
        """The message with the back-ticked names spelled by ``label``.

        ``label`` is the new spelling of :attr:`name` (e.g. ``"--prior_points"``), or a function
        from a setting's name to its spelling, applied to :attr:`name` and :attr:`others`.
        """
        message = str(self)
        if isinstance(label, str):
            return message.replace(f"`{self.name}`", label)
        for name in (self.name, *self.others):
            message = message.replace(f"`{name}`", label(name))
        return message


class SetupWarning(UserWarning):
    """The set-up works but will likely disappoint (tiny data, settings a module ignores, ...).

    The command line prints these as one ``warning:`` line each.
    """


def is_finite_number(value: Any) -> bool:
    """True for a finite int/float (or numpy scalar); False for bools, strings, None, NaN, inf."""
    if isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def is_int(value: Any) -> bool:
    """True for ints (and numpy integers), False for bools and floats."""
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an ``int >= minimum``."""
    if not is_int(value) or value < minimum:
        raise SettingError(name, f"`{name}` must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def check_optional_int(name: str, value: Any, minimum: int = 0) -> int | None:
    """``None``, or ``value`` as an ``int >= minimum``."""
    return None if value is None else check_int(name, value, minimum)


def check_number(name: str, value: Any, minimum: float, strict: bool = False, hint: str = "") -> float:
    """``value`` as a finite float ``>= minimum`` (``> minimum`` when ``strict``)."""
    if not is_finite_number(value) or (value <= minimum if strict else value < minimum):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise SettingError(name, f"`{name}` must be a finite number {bound}{hint}, got {value!r}.")
    return float(value)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """``value`` when it is one of ``allowed``."""
    if not isinstance(value, str) or value not in allowed:
        raise SettingError(name, f"`{name}` must be one of {list(allowed)}, got {value!r}.")
    return value


def check_choices(name: str, values: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    """``values`` as a tuple when it is a non-empty list of items of ``allowed``."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise SettingError(name, f"`{name}` must be a non-empty list of {list(allowed)}, got {values!r}.")
    bad = [v for v in values if not isinstance(v, str) or v not in allowed]
    if bad:
        raise SettingError(name, f"`{name}` must name items of {list(allowed)}, got {bad[0]!r} in {list(values)!r}.")
    return tuple(values)


def check_threads(value: Any, name: str = "threads") -> str | int | None:
    """``None``, ``"auto"``, or a thread count >= 1 (a numeric string such as ``"2"`` is read as that count)."""
    if value is None or value == "auto":
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if is_int(value) and int(value) >= 1:
        return int(value)
    raise SettingError(name, f"`{name}` must be 'auto' or a number of threads >= 1, got {value!r}.")


def check_bool(name: str, value: Any) -> bool:
    """``value`` when it is ``True`` or ``False``."""
    if not isinstance(value, bool):
        raise SettingError(name, f"`{name}` must be True or False, got {value!r}.")
    return value


DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
DURATION_FORMS = '"90s", "30m", "1h", "1h30m", "DD:HH:MM:SS" or a number of seconds'


def check_duration(name: str, value: Any) -> float | None:
    """``None``, or ``value`` as seconds > 0.

    Accepts a number of seconds, a ``datetime.timedelta``, ``"DD:HH:MM:SS"`` (Lightning's
    ``max_time`` string) or a sum of ``<number><unit>`` parts with units s, m/min, h, d
    (``"1h30m"``, ``"90s"``; a bare number string is seconds).
    """
    import datetime
    import re

    if value is None:
        return None
    seconds: float | None = None
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif is_finite_number(value):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if re.fullmatch(r"\d+(:\d+){3}", text):
            days, hours, minutes, secs = (int(p) for p in text.split(":"))
            seconds = float(((days * 24 + hours) * 60 + minutes) * 60 + secs)
        elif re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        elif re.fullmatch(r"(\d+(\.\d+)?(min|sec|s|m|h|d))+", text):
            parts = re.findall(r"(\d+(?:\.\d+)?)(min|sec|s|m|h|d)", text)
            seconds = sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        raise SettingError(name, f"`{name}` must be a positive duration ({DURATION_FORMS}), got {value!r}.")
    return seconds


__all__ = [
    "DURATION_FORMS",
    "SettingError",
    "SetupWarning",
    "check_duration",
    "check_bool",
    "check_choice",
    "check_choices",
    "check_int",
    "check_number",
    "check_optional_int",
    "is_finite_number",
    "is_int",
]
