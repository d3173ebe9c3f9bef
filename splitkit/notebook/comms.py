"""The comms of the panel's widgets: closing a widget tree, and the ipykernel 7 routing
workaround (`_unpin_comm`). Kept apart from the panel: both are about the kernel's comms,
not about what the panel shows."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets

__all__ = ["_unpin_comm", "widget_tree"]


def widget_tree(root: widgets.Widget) -> Iterator[widgets.Widget]:
    """`root` and every widget it holds (children, and each one's layout and style): all
    of them have a comm of their own."""
    seen: set[int] = set()
    stack: list[Any] = [root]
    while stack:
        item = stack.pop()
        if isinstance(item, list | tuple):
            stack.extend(item)
            continue
        if not isinstance(item, widgets.Widget) or id(item) in seen:
            continue
        seen.add(id(item))
        stack.extend(getattr(item, name, None) for name in item.keys)
        yield item


def _unpin_comm(widget: widgets.Widget) -> None:
    """Let the front end's next message to `widget` be handled where the front end sends it.

    Why: ipykernel 7 (`ipykernel.comm.comm.BaseComm`, checked on 7.4) remembers the
    subshell a comm last published from (`_reply_subshell_id`, under
    `_reply_subshell_lock`) and routes the comm's incoming messages there
    (`_reply_subshell_for`), overriding the message's own `subshell_id`. A widget created or
    changed from a cell is pinned to the main shell, so its first click waits for any busy
    cell (`outcomes = await handle`). Forgetting the pin makes the kernel use the message's
    header: JupyterLab 4.6 sends widget messages on a subshell, so the click is handled at
    once.

    The attribute is private: at run time the guards make this a no-op on a kernel without
    it (ipykernel 6 has no subshells, so nothing to undo). The tested ipykernel range is
    pinned in pyproject.toml (dev), and `tests/notebook/test_kernel.py` fails
    loudly, in a real kernel, if the attribute or the routing changes.

    When it can go: when ipykernel routes a comm message by the message's own
    `subshell_id` (or stops pinning on publish), that test's "pinned" check fails: delete
    this function, its calls, and that check.
    """
    comm = getattr(widget, "comm", None)
    lock = getattr(comm, "_reply_subshell_lock", None)
    if comm is None or lock is None:
        return
    with lock:
        comm.__dict__.pop("_reply_subshell_id", None)
