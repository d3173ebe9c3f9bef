"""The example notebooks: stored without outputs, and each one runs top to bottom.

They run with nbclient in a real ipykernel, so `dispatch()` takes the notebook path (it
returns at once and shows the control panel; the next cell awaits the handle). The kernel
is this interpreter, through a kernelspec written to a temporary JUPYTER_PATH: a clean
clone in CI has no kernelspec of its own, and a system-wide `python3` one could point at
another Python without splitkit.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["01-quickstart.ipynb", "02-batch-size-lab.ipynb", "03-part-outcomes.ipynb"]
KERNEL = "splitkit-test"
# Generous on purpose: a cell that hangs fails the test, a slow machine does not. (No
# wall-clock assertion on the notebooks: bench/ measures speed.)
CELL_TIMEOUT_S = 120


def test_the_notebooks_are_all_here() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{name} cell {index} has stored outputs"
            assert cell.execution_count is None, f"{name} cell {index} has an execution count"
    # JupyterLab saves widget state in the metadata; it is output too.
    assert "widgets" not in nb.metadata, f"{name} has stored widget state"


@pytest.fixture(scope="module")
def kernel_name(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A kernelspec that runs this interpreter, found through JUPYTER_PATH."""
    data_dir = tmp_path_factory.mktemp("jupyter")
    spec_dir = data_dir / "kernels" / KERNEL
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "splitkit tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("JUPYTER_PATH", str(data_dir))
        # The kernel inherits this environment: the notebooks must use the embedded server.
        for key in ("FLATFILE_API_KEY", "FLATFILE_BEARER_TOKEN"):
            patch.delenv(key, raising=False)
        yield KERNEL


@pytest.mark.slow
@pytest.mark.timeout(600)  # above the suite's 300 s: several slow cells must not cut it short
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name: str, kernel_name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError on the first cell that errs

    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{name} cell {index}: {output.get('ename')}"
    finals = [c for c in nb.cells if "final-status" in c.metadata.get("tags", [])]
    for cell in finals:
        (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert result.data["text/plain"] == "'complete'", f"{name}: the parent did not complete"
