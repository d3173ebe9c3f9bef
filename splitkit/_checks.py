"""The argument checks, defined once and used everywhere (the client, the server, the
pipeline), so the same mistake reads the same everywhere: ``<name> must be <what>, got
<value>``. A leaf module: it imports nothing from splitkit, so ``splitkit.api`` and
``splitkit.server`` may both use it without importing each other.

Each returns the value normalized (numpy integers become ``int``, numbers ``float``) or
raises before anything is sent. bools are refused where a number is expected: ``True`` is
an ``int`` to Python but ``batch_size=True`` is a bug. ``what`` (where offered) words the
expectation for the caller (``"an integer from 0 to 65535 (0 picks a free port)"``); the
check itself stays here. Checks raise plain ``ValueError``/``TypeError``, not a
``SplitkitError`` (see ``splitkit.errors``).

    >>> positive_int("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be a positive integer, got 0
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = [
    "boolean",
    "callable_handler",
    "file_path",
    "instance_of",
    "integer",
    "non_empty_str",
    "non_negative_int",
    "optional_mapping",
    "optional_str",
    "positive_int",
    "positive_number",
    "secret",
]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def integer(
    name: str,
    value: object,
    *,
    low: int | None = None,
    high: int | None = None,
    what: str | None = None,
) -> int:
    """``value`` as an int within ``[low, high]`` (either bound optional; numpy integers
    welcome), else ``ValueError`` saying ``what`` was expected (by default: "a positive
    integer", "a non-negative integer", "an integer between 1 and 10,000", ...)."""
    if _is_int(value):
        number = operator.index(value)  # type: ignore[arg-type]
        if (low is None or number >= low) and (high is None or number <= high):
            return number
    if what is None:
        if low is not None and high is not None:
            what = f"an integer between {low} and {high:,}"
        elif low is not None:
            what = {0: "a non-negative integer", 1: "a positive integer"}.get(
                low, f"an integer >= {low}"
            )
        else:
            what = "an integer" if high is None else f"an integer <= {high:,}"
    raise ValueError(f"{name} must be {what}, got {value!r}")


def positive_int(name: str, value: object) -> int:
    """``value`` as an int >= 1 (numpy integers welcome), else ``ValueError``."""
    return integer(name, value, low=1)


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an int >= 0 (numpy integers welcome), else ``ValueError``."""
    return integer(name, value, low=0)


def positive_number(
    name: str, value: object, *, allow_zero: bool = False, what: str | None = None
) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``), else ``ValueError``.

    ``what`` words the expectation (default "a positive number" / "a non-negative number").
    """
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    if number:
        as_float = float(value)  # type: ignore[arg-type]
        if math.isfinite(as_float) and (as_float > 0 or (allow_zero and as_float == 0)):
            return as_float
    if what is None:
        what = "a non-negative number" if allow_zero else "a positive number"
    raise ValueError(f"{name} must be {what}, got {value!r}")


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


def optional_str(name: str, value: object) -> str | None:
    """``value`` if it is a string or None, else ``ValueError``."""
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be a string or None, got {value!r}")
    return value


def optional_mapping(name: str, value: object) -> dict[str, Any] | None:
    """``value`` as a dict if it is a mapping, None if None, else ``ValueError``."""
    if value is not None and not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a dict or None, got {value!r}")
    return None if value is None else dict(value)


def secret(name: str, value: object, *, what: str = "a non-empty string", hint: str = "") -> str:
    """``value`` if it is a string with something besides whitespace, else ``ValueError``
    that never echoes it (a token with a typo is still a secret): it shows ``''`` or the
    type's name. ``hint`` is appended to the message (``"; leave it out to generate one"``).
    """
    if not isinstance(value, str) or not value.strip():
        shown = "''" if value == "" else type(value).__name__
        raise ValueError(f"{name} must be {what}, got {shown}{hint}")
    return value


def file_path(
    name: str, value: object, *, what: str = "a file path (str or Path)", hint: str = ""
) -> str | os.PathLike[str]:
    """``value`` if it is a non-blank ``str`` or ``os.PathLike``, else ``ValueError``;
    ``hint`` is appended to the message."""
    if not isinstance(value, str | os.PathLike) or not str(value).strip():
        raise ValueError(f"{name} must be {what}, got {value!r}{hint}")
    return value
