"""What a part records of an error: a one-line error and a traceback that starts with the
user's own frames (the handler and what it called), then the whole chain.

A handler that ran in another process (`ProcessExecutor`) raises there; its exception
comes back pickled, and pickle drops tracebacks. So the worker writes the user's frames
down first (`keep_handler_frames`), and the text travels with the exception.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import threading
import traceback
from typing import Any

import tenacity

HEAD = "Traceback of the handler (most recent call last):\n"
_KEPT = "_splitkit_handler_frames"  # the attribute the frames travel in


def _package_dir(module: Any) -> str:
    return os.path.dirname(os.path.abspath(str(module.__file__))) + os.sep


# The machinery a handler is called through (splitkit itself, tenacity's retries, the loop,
# the pools): its frames come before the user's in a traceback and say nothing about why.
_MACHINERY = (
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep,  # splitkit/
    _package_dir(tenacity),
    _package_dir(asyncio),
    _package_dir(concurrent.futures),
    os.path.abspath(threading.__file__),
)


def handler_frames(exc: BaseException) -> str | None:
    """The user's frames of `exc`'s traceback and the error, as text; None without any."""
    kept = getattr(exc, _KEPT, None)
    if isinstance(kept, str):
        return kept
    frames = traceback.extract_tb(exc.__traceback__)
    own = [f for f in frames if not os.path.abspath(f.filename).startswith(_MACHINERY)]
    if not own:  # nothing of the user's in it (a timeout, a part that could not start)
        return None
    return "".join([HEAD, *traceback.format_list(own), *traceback.format_exception_only(exc)])


def keep_handler_frames(exc: BaseException) -> None:
    """In a worker process, before `exc` is pickled back: its user's frames as text on it
    (an exception that takes no attributes keeps only its chain)."""
    frames = handler_frames(exc)
    if frames is not None:
        with contextlib.suppress(Exception):  # an exception that takes no attributes
            setattr(exc, _KEPT, frames)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(one-line error, traceback) of what a part raised.

    The traceback starts with the user's own frames (the handler and what it called, without
    the machinery around it) and the error, then "-- full traceback --" and the whole chain.
    """
    line = f"{type(exc).__name__}: {exc}"
    full = "".join(traceback.format_exception(exc))
    head = handler_frames(exc)
    if head is None:
        return line, full
    return line, f"{head}\n-- full traceback --\n{full}"
