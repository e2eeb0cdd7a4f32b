"""Shared test set-up: the tests folder is importable (``from fakes import ...``)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from pretrain import config as C
from pretrain import trainer as T
from synthetic.generate import generate

torch.set_num_threads(min(2, os.cpu_count() or 1))

SLOW_TIMEOUT_S = 4 * 3600   # the utility reproduction took 89.3 min on 2 cores; pyproject's default is 900 s


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Give every ``slow`` test without its own ``timeout`` mark :data:`SLOW_TIMEOUT_S`."""
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture(scope="session")
def eval_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate("shapes64", 120, 0, tmp_path_factory.mktemp("data") / "shapes", size=32, workers=1,
                    progress=False)


def make_checkpoint(method: str, data: Path, out: Path, **overrides) -> Path:
    """A tiny-backbone checkpoint of ``method`` (the `test` preset: 4 steps)."""
    cfg = C.build_config(method, "default", "test", {"data.path": str(data), "train.out": str(out),
                                                    "train.tensorboard": False, **overrides})
    return T.train(cfg, progress=False) / "ckpt.pt"


@pytest.fixture(scope="session")
def tiny_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint("simclr", eval_data, tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="session")
def make_ckpt():
    """The :func:`make_checkpoint` function, for tests that need another method or backbone."""
    return make_checkpoint
