"""docs/architecture.md names real things: every repository path it cites exists, every ``bazaar.`` dotted name
it cites imports, and the README links it. A rename that forgets the document fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "architecture.md"

# A path starts at a top-level folder of the repository and runs to whitespace, a quote, a bracket or punctuation.
_PATH = re.compile(r"(?<![\w./-])((?:bazaar|bench|deploy|docs|tests)/[\w./-]*)")
# A dotted name inside a code span: ``bazaar.accounts.auth.user_auth``.
_DOTTED = re.compile(r"`((?:bazaar|tests)(?:\.\w+)+)`")


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def cited_paths(text: str) -> list[str]:
    """Every literal path in ``text``; a path that runs into a placeholder (``bazaar/<app>/...``) is a pattern,
    not a path, and is left out."""
    found = []
    for m in _PATH.finditer(text):
        if text[m.end() : m.end() + 1] == "<":
            continue
        found.append(m.group(1).rstrip("."))
    return sorted(set(found))


def test_the_path_finder_sees_paths_and_skips_patterns() -> None:
    text = (
        "see `bazaar/core/sql.py`, bazaar/core/cache/ and `bazaar/<app>/tests/` or bench/results/<name>.json;"
        " `tests/contract/answers.py`, tests/<tier>/."
    )
    assert cited_paths(text) == ["bazaar/core/cache/", "bazaar/core/sql.py", "tests/contract/answers.py"]


def test_every_cited_path_exists() -> None:
    paths = cited_paths(_text())
    assert len(paths) > 40, "the document should cite real files"
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"docs/architecture.md cites paths that do not exist: {missing}"


def _resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if not hasattr(obj, name):
                return False
            obj = getattr(obj, name)
        return True
    return False


def test_every_cited_dotted_name_resolves() -> None:
    names = sorted(set(_DOTTED.findall(_text())))
    assert names, "the document should cite modules by their dotted names"
    unresolved = [n for n in names if not _resolves(n)]
    assert not unresolved, f"docs/architecture.md cites names that do not import: {unresolved}"


def test_the_readme_links_the_document() -> None:
    assert "(docs/architecture.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_document_stays_short() -> None:
    assert len(_text().splitlines()) <= 265  # 260 until issue 19 added the table of test tiers
