"""Small argument validators shared by the public functions, so the same mistake reads the
same everywhere: ``<name> must be <what>, got <value>``.

Each returns the value normalized (numpy integers become ``int``, numbers ``float``) or
raises before anything is sent. bools are refused where a number is expected: ``True`` is
an ``int`` to Python but ``batch_size=True`` is a bug. ``splitkit.api`` and
``splitkit.server`` keep their own checks (they import nothing from the layer above).

    >>> positive_int("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive integer, got 0
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "boolean",
    "callable_handler",
    "instance_of",
    "non_empty_str",
    "non_negative_int",
    "positive_int",
    "positive_number",
]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1 (numpy integers welcome), else ``ValueError``."""
    if not _is_int(value) or operator.index(value) < 1:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return operator.index(value)  # type: ignore[arg-type]


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an int >= 0 (numpy integers welcome), else ``ValueError``."""
    if not _is_int(value) or operator.index(value) < 0:  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return operator.index(value)  # type: ignore[arg-type]


def positive_number(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``), else ``ValueError``."""
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    if number:
        as_float = float(value)  # type: ignore[arg-type]
        if math.isfinite(as_float) and (as_float > 0 or (allow_zero and as_float == 0)):
            return as_float
    kind = "a non-negative number" if allow_zero else "a positive number"
    raise ValueError(f"{name} must be {kind}, got {value!r}")


def boolean(name: str, value: object) -> bool:
    """``value`` if it is exactly True or False (not 0, 1 or "yes"), else ``ValueError``."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def non_empty_str(name: str, value: object, *, what: str = "a non-empty string") -> str:
    """``value`` if it is a string with something besides whitespace, else ``ValueError``.

    ``what`` names the expected value in the message (``"a job id string"``).
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def callable_handler(
    value: object, *, name: str = "handler", what: str = "a function of one Part"
) -> Callable[..., Any]:
    """``value`` if it can be called, else ``TypeError`` saying what it should be."""
    if not callable(value):
        raise TypeError(f"{name} must be callable ({what}), got {value!r}")
    return value


def instance_of(name: str, value: object, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` if it is an instance of ``types``, else ``TypeError`` naming its type.

    ``instance_of("client", None, Client, "a splitkit Client")`` raises
    ``TypeError: client must be a splitkit Client, got NoneType``.
    """
    if not isinstance(value, types):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return value
