"""The root of every error splitkit raises on purpose, and the tree beneath it.

Catch ``SplitkitError`` for anything splitkit itself refused or could not do::

    SplitkitError                       splitkit.errors
    ├── ApiError                        splitkit.api.errors: the server answered 4xx/5xx
    │   ├── AuthError                   401, 403
    │   ├── NotFoundError               404
    │   ├── BadRequestError             400, 422
    │   │   └── InvalidTransitionError  400 with error key "transition"
    │   ├── RateLimitedError            429
    │   └── ServerError                 5xx
    ├── ConnectionFailedError           splitkit.api.errors: no answer at all
    ├── PartTimeoutError                splitkit.errors: a handler ran past its timeout
    ├── PartLeftOpenError               splitkit.errors: a part not run to its end here
    ├── ClaimError                      splitkit.engine.claim: a parent's dispatch claim
    │   ├── ParentClaimedError          another run dispatches the parent
    │   └── ClaimLostError              another run took the parent over
    ├── UserError                       splitkit.cli: a command-line mistake (exit status 2)
    ├── SettleRefusedError (ValueError) splitkit.errors: settle sent nothing
    └── SplitMismatchError (ValueError) splitkit.errors: split otherwise than planned

The API errors are explained in ``splitkit.api.errors``, the claim errors in
``splitkit.engine.claim``. The two refusals are also ``ValueError`` (multiple
inheritance), as they were before this tree: ``except ValueError`` keeps working.

Not in the tree, on purpose:

- **Argument checks** (``splitkit._checks``) raise plain ``ValueError`` / ``TypeError``:
  a wrong argument is a bug in the call, which Python spells that way, and nothing was
  attempted; ``except SplitkitError`` is for what a correct call can still meet.
- **The embedded server's** ``HttpProblem`` (``splitkit.server.errors``) and
  ``BodyProblem`` (``splitkit.server.limits``) never leave the server: they become an
  HTTP error answer, which the client raises as an ``ApiError``.

A test (``tests/test_structure.py``) walks every module of splitkit and checks that each
exception class it defines is in this tree, and that the tree drawn here is the real one.
This module imports nothing from splitkit, so the client and the server may both use it.
"""

from __future__ import annotations

__all__ = [
    "PartLeftOpenError",
    "PartTimeoutError",
    "SettleRefusedError",
    "SplitMismatchError",
    "SplitkitError",
]


class SplitkitError(Exception):
    """Base class of every error splitkit raises on purpose."""


class PartTimeoutError(SplitkitError):
    """The handler ran longer than the per-part timeout."""


class PartLeftOpenError(SplitkitError):
    """A part could not be run to its end here (it could not be started, or its end could
    not be delivered): it stays open on the server for a later run; the message says why."""


class SettleRefusedError(SplitkitError, ValueError):
    """settle sent nothing: the parts have not all ended, the frame's counts differ from
    the server's parts, or the frame (or run) is of another parent. The parent is
    unchanged; the message says why and what to do."""


class SplitMismatchError(SplitkitError, ValueError):
    """The parent is already split, into parts other than the plan's."""
