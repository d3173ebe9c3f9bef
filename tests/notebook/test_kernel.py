"""The panel in a real ipykernel, driven over ZeroMQ the way a front end drives it.

Two things only a real kernel shows:

- the ipykernel behaviour `_unpin_comm` (splitkit/notebook/comms.py) works around: a comm's
  incoming messages go to the shell the comm last published from. If a new ipykernel
  changes that, or renames the private attributes, these tests fail loudly (they never
  skip): then read `_unpin_comm`'s docstring, which says when it can go;
- a notebook that dispatches many runs keeps no live widgets of ended runs: each panel's
  output is replaced by its static final view and its comms are closed.

The kernel is this interpreter, through a kernelspec in a temporary JUPYTER_PATH (as in
test_notebooks.py); it reaches the session's embedded server over loopback.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client import BlockingKernelClient, KernelManager

from splitkit.server import EmbeddedServer

KERNEL = "splitkit-kernel-test"
WAIT_S = 60.0  # generous: only a failure waits this long
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


class Kernel:
    """A started kernel and a client on it, standing in for the front end."""

    def __init__(self, km: KernelManager, kc: BlockingKernelClient) -> None:
        self.km = km
        self.kc = kc
        self.iopub: list[dict[str, Any]] = []  # every iopub message seen so far

    def execute(self, code: str, *, subshell: str | None = None) -> str:
        """Run `code` (on the main shell, or a subshell); its stdout. Raises on an error."""
        msg = self.kc.session.msg("execute_request", {"code": code, "silent": False})
        if subshell is not None:
            msg["header"]["subshell_id"] = subshell
        self.kc.shell_channel.send(msg)
        return self.output_of(msg["header"]["msg_id"])

    def output_of(self, msg_id: str, timeout: float = WAIT_S) -> str:
        """Read iopub until the request `msg_id` is idle; its stdout."""
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"the kernel did not finish a request in {timeout:g} s")
            msg = self.kc.get_iopub_msg(timeout=left)
            self.iopub.append(msg)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind == "error":
                raise AssertionError("the kernel raised:\n" + "\n".join(content["traceback"]))
            elif kind == "status" and content["execution_state"] == "idle":
                return "".join(out)

    def create_subshell(self) -> str:
        msg = self.kc.session.msg("create_subshell_request", {})
        self.kc.control_channel.send(msg)
        reply = self.kc.control_channel.get_msg(timeout=WAIT_S)
        assert reply["content"].get("status") == "ok", reply["content"]
        return str(reply["content"]["subshell_id"])

    def send_comm_msg(self, comm_id: str, data: dict[str, Any], subshell: str) -> None:
        """What JupyterLab 4.6 sends for a widget change: a comm_msg on a subshell."""
        msg = self.kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        msg["header"]["subshell_id"] = subshell
        self.kc.shell_channel.send(msg)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory, server: EmbeddedServer) -> Iterator[Kernel]:
    data_dir = tmp_path_factory.mktemp("jupyter")
    spec_dir = data_dir / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "splitkit kernel tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    env = {
        **os.environ,
        "JUPYTER_PATH": str(data_dir),
        "SPLITKIT_TEST_URL": server.url,
        "SPLITKIT_TEST_TOKEN": server.token,
        "SPLITKIT_TEST_ENVIRONMENT": server.environment_id,
        "SPLITKIT_TEST_SHEET": str(server.sheet_id),
        # this checkout's splitkit, whatever is installed
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")]
        ),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(data_dir))
        km = KernelManager(kernel_name=KERNEL)
        km.start_kernel(env=env)
    kc = km.blocking_client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=WAIT_S)
        yield Kernel(km, kc)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_ipykernel_still_pins_comms_and_the_unpin_frees_a_click(kernel: Kernel) -> None:
    out = kernel.execute(
        "import threading\n"
        "import ipywidgets as widgets\n"
        "from splitkit.notebook.comms import _unpin_comm\n"
        "button = widgets.ToggleButton()\n"
        "clicked = threading.Event()\n"
        "button.observe(lambda change: clicked.set(), names='value')\n"
        "print(button.model_id)\n"
        "print(repr(button.comm._reply_subshell_for(None, 'sub')))\n"
    )
    model_id, route = out.split()
    # Made on the main shell: ipykernel routes its next message there (None), whatever
    # subshell the front end addresses. The day this fails, ipykernel stopped pinning:
    # `_unpin_comm` can go (see its docstring).
    assert route == "None", (
        f"ipykernel no longer routes a comm's messages to the shell it last published from "
        f"(route {route}): _unpin_comm in splitkit/notebook/comms.py may be obsolete"
    )

    out = kernel.execute(
        "_unpin_comm(button)\nprint(repr(button.comm._reply_subshell_for(None, 'sub')))"
    )
    assert out.strip() == "'sub'", (
        f"_unpin_comm no longer unpins (route {out.strip()}): ipykernel's private "
        "_reply_subshell_id / _reply_subshell_lock changed; see _unpin_comm's docstring"
    )

    # The behaviour that matters: a click sent on a subshell while the main shell is busy
    # is handled at once. Pinned, it would wait for the busy cell (which then prints False).
    subshell = kernel.create_subshell()
    kernel.execute("pass", subshell=subshell)  # the subshell's thread is up and listening
    busy = kernel.kc.session.msg("execute_request", {"code": "print(clicked.wait(15))"})
    kernel.kc.shell_channel.send(busy)
    kernel.send_comm_msg(
        model_id,
        {"method": "update", "state": {"value": True}, "buffer_paths": []},
        subshell,
    )
    assert kernel.output_of(busy["header"]["msg_id"]).strip() == "True", (
        "a click on a subshell waited for the busy main shell: the unpin did not free it"
    )


@pytest.mark.slow  # 30 real runs in a real kernel: about 20 s on a loaded machine
def test_thirty_runs_in_one_notebook_keep_comms_bounded(kernel: Kernel) -> None:
    out = kernel.execute(
        "import os\n"
        "import comm\n"
        "from ipywidgets.widgets.widget import _instances\n"
        "from splitkit import Client, dispatch, plan_parts, split_parent\n"
        "from splitkit.pipeline import start_parent_job\n"
        "client = Client(os.environ['SPLITKIT_TEST_URL'], os.environ['SPLITKIT_TEST_TOKEN'],\n"
        "                environment_id=os.environ['SPLITKIT_TEST_ENVIRONMENT'])\n"
        "def new_parent():\n"
        "    parent = start_parent_job(client, os.environ['SPLITKIT_TEST_SHEET'])\n"
        "    split_parent(client, parent.id, plan_parts(10, batch_size=10), check_counts=False)\n"
        "    return parent.id\n"
        "def open_comms():\n"
        "    return len(_instances), len(comm.get_comm_manager().comms)\n"
        "print(*open_comms())\n"
    )
    before = [int(n) for n in out.split()]
    seen = len(kernel.iopub)
    out = kernel.execute(
        "counts = []\n"
        "for _ in range(30):\n"
        "    handle = dispatch(client, new_parent(), lambda part: None, claim=False)\n"
        "    await handle\n"
        "    assert handle.error is None, handle.error\n"
        "    counts.append(open_comms())\n"
        "print(*open_comms(), max(widgets for widgets, _ in counts))\n"
    )
    widgets, comms, peak = (int(n) for n in out.split())
    assert [widgets, comms] == before, f"30 runs left comms open: {before} -> {[widgets, comms]}"
    assert peak == before[0], "a run's widgets were still open after `await handle`"

    # Each run showed a live panel, and its output became the static final view.
    messages = kernel.iopub[seen:]
    shown = [
        m["content"]["transient"]["display_id"]
        for m in messages
        if m["msg_type"] == "display_data" and WIDGET_VIEW in m["content"]["data"]
    ]
    finals = {
        m["content"]["transient"]["display_id"]: m["content"]["data"]["text/html"]
        for m in messages
        if m["msg_type"] == "update_display_data"
    }
    assert len(shown) == 30
    for display_id in shown:
        assert display_id in finals, "a panel's output was not replaced by its final view"
        assert "splitkit-panel-final" in finals[display_id]
        assert "<b>done</b>" in finals[display_id]
