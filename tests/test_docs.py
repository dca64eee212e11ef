"""The documentation: README stays a short front page, docs/ builds as a site with nothing left out.

``mkdocs build --strict`` with mkdocs.yml's validation settings fails on a broken link or anchor
and on a page in docs/ that the nav leaves out; the checks here say the same facts in one line
each, so a failure names the file.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"

README_MAX_LINES = 250
# CI (.ci/run) runs README's test command; the first command is the user's first run.
SET_UP_COMMANDS = [
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e . && python -m lightning_dnc.cli fit',
    'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && python -m pytest -q',
]


def _nav_files(node) -> list[str]:
    """Every page path in a mkdocs ``nav`` (lists of ``{title: path}`` or ``{title: [...]}``)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [path for item in node for path in _nav_files(item)]
    if isinstance(node, dict):
        return [path for value in node.values() for path in _nav_files(value)]
    return []


def _code_blocks(text: str) -> list[str]:
    return re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_is_short():
    n = len(README.read_text().splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines (at most {README_MAX_LINES}): move detail to docs/"


def test_readme_set_up_commands_come_first():
    blocks = _code_blocks(README.read_text())
    assert [b.strip() for b in blocks[:2]] == SET_UP_COMMANDS


def _slug(heading: str) -> str:
    """The anchor mkdocs gives a heading (Python-Markdown's ``toc`` slugify, for ASCII headings)."""
    text = re.sub(r"[^\w\s-]", "", heading.replace("`", "")).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def test_readme_links_to_docs_exist():
    links = re.findall(r"\]\((docs/[^)#\s]*)(?:#([^)\s]*))?\)", README.read_text())
    assert links, "README.md links to no page in docs/"
    missing = sorted({path for path, _ in links if not (ROOT / path).is_file()})
    assert not missing, f"README.md links to files that do not exist: {missing}"
    for path, anchor in links:
        if anchor:
            headings = re.findall(r"^#+ (.+)$", (ROOT / path).read_text(), flags=re.M)
            assert anchor in {_slug(h) for h in headings}, f"README.md links to {path}#{anchor}: no such heading"


def test_every_docs_page_is_in_the_nav():
    config = yaml.safe_load(MKDOCS_YML.read_text())
    nav = _nav_files(config["nav"])
    pages = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    left_out = sorted(set(pages) - set(nav))
    assert not left_out, f"docs pages missing from mkdocs.yml's nav: {left_out}"
    absent = sorted(set(nav) - set(pages))
    assert not absent, f"mkdocs.yml's nav names pages that do not exist in docs/: {absent}"
    assert config.get("strict") is True


def test_mkdocs_build_strict(tmp_path):
    if importlib.util.find_spec("mkdocs") is None:
        pytest.skip('mkdocs is not installed: pip install -e ".[docs]" (it is in the test extra too)')
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(MKDOCS_YML),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stdout[-3000:]}\n{run.stderr[-6000:]}"
    assert (tmp_path / "site" / "index.html").is_file()
