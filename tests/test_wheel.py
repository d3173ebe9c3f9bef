"""splitkit installed from its wheel, outside the checkout: the samples ship inside the
package, `splitkit demo` and `connect()` work there, and the build shows no deprecation.

The wheel is built from a copy of the sources (the checkout gets no build/ or egg-info),
and installed with --no-deps into a fresh virtualenv that sees this interpreter's
site-packages through a .pth line (a plain path: its .pth files, such as the editable
install's finder, are not run), so nothing is downloaded but the build backend.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


def _run(args: list[str], *, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.pop("FLATFILE_API_KEY", None)
    env.pop("FLATFILE_BEARER_TOKEN", None)
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """(the fresh venv's bin/, a directory outside the checkout, the build's output)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "splitkit", source / "splitkit", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = root / "dist"
    build = _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(dist), str(source)],
        cwd=root,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = dist.glob("splitkit-*.whl")

    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False, symlinks=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    here = sysconfig.get_paths()
    (site / "_splitkit_test_deps.pth").write_text(f"{here['purelib']}\n{here['platlib']}\n")
    install = _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", str(wheel)],
        cwd=root,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    away = root / "elsewhere"
    away.mkdir()
    return env_dir / "bin", away, build.stdout + build.stderr


def test_the_build_shows_no_deprecation_warning(installed: tuple[Path, Path, str]) -> None:
    output = installed[2]
    warnings = [line for line in output.splitlines() if "deprecat" in line.lower()]
    assert not warnings, "\n".join(warnings)


def test_connect_uses_the_packaged_sample_outside_the_checkout(
    installed: tuple[Path, Path, str],
) -> None:
    bin_dir, away, _ = installed
    script = (
        "import os, sys, splitkit\n"
        "print(splitkit.__file__)\n"
        # The checkout's root (whose splitkit/ would shadow the installed one), not the
        # venv that may live inside it.
        "root = os.path.realpath(sys.argv[1])\n"
        "print([p for p in sys.path if os.path.realpath(p or os.getcwd()) == root])\n"
        "with splitkit.connect() as conn:\n"
        "    print(conn.client.get_counts(conn.sheet_id).total)\n"
    )
    result = _run([str(bin_dir / "python"), "-c", script, str(REPO)], cwd=away)
    assert result.returncode == 0, result.stderr[-3000:]
    location, checkout_paths, total = result.stdout.split("\n")[:3]
    assert location.startswith(str(bin_dir.parent)), location  # the installed copy
    assert checkout_paths == "[]"
    assert int(total) == 3_000  # data/samples' contacts.csv, as shipped in the wheel


def test_splitkit_demo_runs_outside_the_checkout(installed: tuple[Path, Path, str]) -> None:
    bin_dir, away, _ = installed
    demo = [str(bin_dir / "splitkit"), "demo", "--records", "2000", "--batch-size", "500"]
    result = _run(demo, cwd=away)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "completed" in result.stdout
