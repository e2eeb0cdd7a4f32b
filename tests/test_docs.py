"""The README is a front door and the docs name files that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
PATH = re.compile(r"`([A-Za-z0-9_.\-/]+/(?:[A-Za-z0-9_.\-]+\.(?:py|md|sh|toml|txt|json)|))`")


def test_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    first_block = text.split("```")[1]
    assert "make setup" in first_block and "make test" in first_block


def test_extending_walks_through_each_kind_of_addition() -> None:
    headings = [line.lower() for line in (ROOT / "docs" / "extending.md").read_text().splitlines()
                if line.startswith("## ")]
    for kind in ("method", "augmentation", "task", "dataset reader", "paper"):
        assert any(kind in h for h in headings), f"docs/extending.md has no section on adding a {kind}"


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_paths_in_the_docs_exist(page: Path) -> None:
    """Every project path written in backticks (``pretrain/augment/registry.py``, ``imagedata/``) exists."""
    missing = []
    for path in PATH.findall(page.read_text()):
        if path.startswith(("runs/", "data/", "results/", "reports/out", "bench/out", "reproductions/", "/", "~",
                            "datasets/", "runs", "http")) or "*" in path or "<" in path:
            continue
        if not (ROOT / path).exists():
            missing.append(path)
    assert not missing, f"{page.name} names paths that do not exist: {', '.join(sorted(set(missing)))}"
