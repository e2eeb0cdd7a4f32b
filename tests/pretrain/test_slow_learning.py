"""It must really learn: cpu-preset pretraining on shapes64-heldout (test objects never seen in
training) beats the random backbone by the learning check's bars of linear-probe accuracy --
SimCLR +35, MoCo v2 +25, BYOL +20 points (`make test-slow`; up to 15 minutes per method on 2
cores, see bench/RESULTS.md). The probe reads the images at the 32-px view size the backbones
were pretrained at (``bench/linear_probe.py``, 5000 train / 2000 test images)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pretrain import config as C
from pretrain import trainer as T
from synthetic.generate import generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from linear_probe import probe  # noqa: E402

pytestmark = pytest.mark.slow


BARS = {"simclr": 35.0, "mocov2": 25.0, "byol": 20.0}      # points over the random backbone


@pytest.fixture(scope="module")
def shapes64(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate("shapes64-heldout", 20000, 0, tmp_path_factory.mktemp("data") / "shapes64-heldout",
                    progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


def pretrain(method: str, data: Path, out: Path) -> Path:
    cfg = C.build_config(method, None, "cpu", {"data.path": str(data), "train.out": str(out)})
    return T.train(cfg, progress=False) / "ckpt.pt"


@pytest.fixture(scope="module")
def random_accuracy(shapes64: Path, runs: Path) -> float:
    return probe(pretrain("random", shapes64, runs), shapes64)


@pytest.mark.parametrize("method", list(BARS))
def test_pretraining_beats_random_by_its_bar(method: str, shapes64: Path, runs: Path, random_accuracy: float) -> None:
    acc = probe(pretrain(method, shapes64, runs), shapes64)
    print(f"{method}: linear probe {acc:.1f}% vs random {random_accuracy:.1f}%")
    assert acc >= random_accuracy + BARS[method]
