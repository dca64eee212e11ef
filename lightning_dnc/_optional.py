"""One gate for every optional dependency: is it installed, and the exact line that installs it.

Torch-free (``importlib.util.find_spec`` only), so every room can use it. Each extra of
``pyproject.toml`` that a feature needs is listed in :data:`EXTRAS`.
"""

from __future__ import annotations

import importlib.util

EXTRAS: dict[str, tuple[str, ...]] = {
    "pandas": ("pandas",),
    "onnx": ("onnx", "onnxscript"),
    "tensorboard": ("tensorboard",),
    "ray": ("ray",),
}
"""Extra name -> the importable modules it provides."""


def install_line(extra: str) -> str:
    """The ``pip install`` line of ``extra``."""
    return f'pip install "lightning-dnc[{extra}]"'


def missing(extra: str) -> list[str]:
    """The modules of ``extra`` that cannot be imported (empty when it is installed)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def available(extra: str) -> bool:
    """True when every module of ``extra`` can be imported."""
    return not missing(extra)


def require(extra: str, feature: str) -> None:
    """Raise ``ModuleNotFoundError`` naming ``feature`` unless ``extra`` is installed.

    The message ends with the exact ``pip install`` line.
    """
    absent = missing(extra)
    if absent:
        raise ModuleNotFoundError(
            f"{feature} needs {', '.join(absent)}, which is not installed. Install it with: {install_line(extra)}"
        )


__all__ = ["EXTRAS", "available", "install_line", "missing", "require"]
