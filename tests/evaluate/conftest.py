"""Small datasets and checkpoints shared by the evaluation tests (made once per session)."""
from __future__ import annotations

from pathlib import Path

import pytest

from synthetic.generate import generate


@pytest.fixture(scope="session")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 scene-centric 64-px images (boxes, instance and semantic masks, COCO / VOC exports)."""
    return generate("scenes", 24, 0, tmp_path_factory.mktemp("data") / "scenes", size=64, workers=1, progress=False)


@pytest.fixture(scope="session")
def r18_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> Path:
    """A ResNet-18 checkpoint (standard stem), which both transfer frameworks can build."""
    return make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("runs"), **{"backbone.name": "resnet18"})


@pytest.fixture
def transfer_fails(tmp_path: Path, capsys: pytest.CaptureFixture):
    """``check(framework, ckpt, data, protocol, match)``: the transfer CLI exits 2 with one line
    containing ``match`` and writes no results store."""
    from evaluate.transfer.__main__ import main

    def check(framework: str, ckpt: Path, data: Path, protocol: str, match: str, *extra: str) -> None:
        store = tmp_path / "s.sqlite"
        argv = [framework, str(ckpt), "--protocol", protocol, "--data", str(data), "--iters", "1",
                "--out", str(tmp_path / "w"), "--store", str(store), *extra]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and match in err, err
        assert not store.exists()
    return check
