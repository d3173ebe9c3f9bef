"""The docs cannot drift from the code: every ```python block of README.md and docs/*.md runs.

Each page's python blocks run in order in one namespace (a page reads as one session),
against the real embedded server: `sk.connect()` starts one because the test removes the
Flatfile variables from the environment. Every code block must say what it is:

- ```python runs; an error in it fails the page, naming the block's line in the page;
- ```python preceded by `<!-- not-run: why -->` is shown, not run (e.g. needs a Flatfile
  account); the reason is required;
- ```json must parse; ```sh / ```text (commands, listings, diagrams) are shown, not run;
- a block without a language (indented, or a bare fence) fails: nothing is left unchecked
  by accident.

The count of blocks not run, per page, is printed in the test summary (tests/conftest.py).
A second test checks that no link or path in the docs leaves the repository.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FLATFILE_VARIABLES = (
    "FLATFILE_API_KEY",
    "FLATFILE_BEARER_TOKEN",
    "FLATFILE_API_URL",
    "FLATFILE_ENVIRONMENT_ID",
)
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<why>\S.*?)\s*-->", re.DOTALL)
SHOWN_ONLY = {"sh", "text"}

# Collected per page for the summary hook in tests/conftest.py.
NOT_RUN_COUNTS: dict[str, list[str]] = {}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # 1-based line of the block's first content line in the page
    language: str
    source: str
    not_run: str | None  # the reason, when marked

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def code_blocks(page: Path) -> list[Block]:
    """Every code block of a Markdown page, with its language and its not-run mark."""
    tokens = MarkdownIt("commonmark").parse(page.read_text(encoding="utf-8"))
    blocks = []
    for index, token in enumerate(tokens):
        if token.type not in ("fence", "code_block"):
            continue
        assert token.map is not None
        language = token.info.split()[0] if token.info.strip() else ""
        previous = tokens[index - 1] if index else None
        mark = (
            NOT_RUN.search(previous.content) if previous and previous.type == "html_block" else None
        )
        blocks.append(
            Block(
                page=page,
                line=token.map[0] + (2 if token.type == "fence" else 1),
                language=language,
                source=token.content,
                not_run=mark.group("why") if mark else None,
            )
        )
    return blocks


def _close_what_the_page_opened(namespace: dict[str, Any]) -> None:
    from splitkit.connection import Connection
    from splitkit.server import EmbeddedServer

    for value in namespace.values():
        if isinstance(value, Connection):
            value.close()
        elif isinstance(value, EmbeddedServer):
            value.stop()


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_every_code_block_of_the_page_runs(
    page: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in FLATFILE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # plots draw to files, never a window
    monkeypatch.chdir(tmp_path)  # files a page writes (exports) land here
    blocks = code_blocks(page)
    unlabelled = [block.where for block in blocks if not block.language]
    assert not unlabelled, (
        f"code blocks without a language at {unlabelled}: fence them as ```python (run), "
        "```sh or ```text (shown only)"
    )
    not_run: list[str] = []
    namespace: dict[str, Any] = {"__name__": f"docs:{page.name}"}
    try:
        for block in blocks:
            if block.not_run is not None:
                not_run.append(f"{block.where} ({block.not_run})")
            elif block.language == "python":
                # Padded so that a traceback names the line in the Markdown page.
                code = compile("\n" * (block.line - 1) + block.source, str(page), "exec")
                try:
                    exec(code, namespace)
                except Exception as exc:
                    exc.add_note(f"in the ```python block at {block.where}")
                    raise
            elif block.language == "json":
                json.loads(block.source)
            elif block.language in SHOWN_ONLY:
                not_run.append(f"{block.where} ({block.language})")
            else:
                pytest.fail(
                    f"{block.where}: a ```{block.language} block; use python, json, sh or text"
                )
    finally:
        _close_what_the_page_opened(namespace)
        NOT_RUN_COUNTS[str(page.relative_to(ROOT))] = not_run
    assert os.environ.get("FLATFILE_API_KEY") is None  # nothing above reached for Flatfile


def test_the_runner_refuses_an_unlabelled_block_and_needs_a_reason_to_skip(
    tmp_path: Path,
) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "    indented\n\n<!-- not-run: needs a Flatfile account -->\n```python\nx = 1\n```\n\n"
        "<!-- not-run: -->\n```python\ny = 2\n```\n",
        encoding="utf-8",
    )
    first, second, third = code_blocks(page)
    assert (first.language, first.line) == ("", 1)
    assert (second.not_run, second.line) == ("needs a Flatfile account", 5)
    assert third.not_run is None  # an empty reason does not skip: the block runs


# Links: [text](target) and ![alt](target); paths: anything that climbs out with ../ or
# names an absolute path on this machine.
LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)[^)]*\)")
CLIMBING_PATH = re.compile(r"(?:\.\./)+[\w./-]+")
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:work|home|tmp|root|Users)/[\w./-]*")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_no_link_or_path_leaves_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    problems = []
    for match in LINK.finditer(text):
        target = match.group("target").split("#")[0]
        if not target or re.match(r"[a-z]+:", target):  # an anchor, or https:, mailto:
            continue
        resolved = (page.parent / target).resolve()
        if not resolved.is_relative_to(ROOT):
            problems.append(f"link {target!r} leaves the repository")
        elif not resolved.exists():
            problems.append(f"link {target!r} names nothing in the repository")
    for match in CLIMBING_PATH.finditer(text):
        if not (page.parent / match.group()).resolve().is_relative_to(ROOT):
            problems.append(f"path {match.group()!r} leaves the repository")
    problems += [f"absolute path {m.group()!r}" for m in ABSOLUTE_PATH.finditer(text)]
    if "shared/flatfile-api" in text:
        problems.append("cites the internal shared/flatfile-api.md: docs stand alone")
    assert not problems, f"{page.relative_to(ROOT)}: {problems}"
