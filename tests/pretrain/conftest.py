"""Small datasets shared by the pretraining tests (generated once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from synthetic.generate import generate


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate("shapes64", 96, 0, tmp_path_factory.mktemp("data") / "shapes", size=32, workers=1,
                    progress=False)


@pytest.fixture(scope="session")
def video_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate("video", 12, 0, tmp_path_factory.mktemp("data") / "video", size=32, workers=1, progress=False)


@pytest.fixture(scope="session")
def tiny_images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate("shapes64", 32, 0, tmp_path_factory.mktemp("data") / "shapes16", size=16, workers=1,
                    progress=False)
