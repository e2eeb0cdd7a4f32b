"""Fixtures of the data-layer tests: one tiny dataset per reader (see ``image_layouts``)."""
from __future__ import annotations

from pathlib import Path

import pytest

from image_layouts import KINDS, Built, build


@pytest.fixture(params=KINDS)
def built(request: pytest.FixtureRequest, tmp_path: Path) -> Built:
    return build(request.param, tmp_path)
