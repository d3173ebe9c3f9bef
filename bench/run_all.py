"""Run every benchmark script in bench/ in turn, with its default arguments (`make bench`).

Each `bench/bench_*.py` runs in a child process (this interpreter, `sys.executable`) from
the repository root; its output is passed through as it comes, under a heading naming the
script. The exit code is non-zero when any script failed; the others still run.

    .venv/bin/python bench/run_all.py                  # every script
    .venv/bin/python bench/run_all.py dispatch panel   # those whose name holds a word given
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent


def scripts(words: list[str]) -> list[Path]:
    found = sorted(BENCH_DIR.glob("bench_*.py"))
    if words:
        found = [path for path in found if any(word in path.stem for word in words)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("only", nargs="*", help="run only scripts whose name holds one of these")
    args = parser.parse_args()
    chosen = scripts(args.only)
    if not chosen:
        print(f"no bench script in {BENCH_DIR} matches {args.only}", file=sys.stderr)
        return 2
    results: list[tuple[str, int, float]] = []
    for path in chosen:
        name = path.relative_to(ROOT).as_posix()
        print(f"\n## {name}\n", flush=True)
        began = time.perf_counter()
        code = subprocess.call([sys.executable, str(path)], cwd=ROOT)
        results.append((name, code, time.perf_counter() - began))
    print("\n## Summary\n")
    print("| script | result | seconds |")
    print("|---|---|---:|")
    for name, code, seconds in results:
        print(f"| {name} | {'ok' if code == 0 else f'FAILED (exit {code})'} | {seconds:,.0f} |")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
