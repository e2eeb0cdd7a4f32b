"""The protocols and a checkpoint's ``input_transform``: the transfer frameworks refuse it with one
line, the suite evaluates through it and records it for the reports, and finetuning feeds the
pretrained network transformed images (its from-scratch baseline plain ones)."""
from __future__ import annotations

from pathlib import Path

import pytest

from evaluate.transfer.__main__ import main as transfer_main
from evaluate.transfer.convert import ConvertError, convert

TRANSFORM = "input_transform highpass(kernel=11, sigma=5.0)"


@pytest.fixture(scope="module")
def highpass_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> Path:
    """A tiny checkpoint trained with random grid masking and the high-pass fill (4 steps)."""
    return make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("runs"), aug="random-mask")


@pytest.mark.parametrize("to", ["detectron2", "mmseg"])
def test_conversion_refuses_a_transformed_checkpoint(highpass_ckpt: Path, tmp_path: Path, to: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / f"w-{to}"
    with pytest.raises(ConvertError) as err:
        convert(highpass_ckpt, to, out)
    message = str(err.value)
    assert str(highpass_ckpt) in message and TRANSFORM in message and "\n" not in message
    assert not out.exists()
    assert transfer_main(["convert", str(highpass_ckpt), "--to", to, "--out", str(out)]) == 2
    err_text = capsys.readouterr().err.strip()
    assert err_text.count("\n") == 0 and TRANSFORM in err_text and not out.exists()


@pytest.mark.parametrize("framework, protocol", [("detectron2", "scenes-r18-fpn"), ("mmseg", "scenes-r18-fcn")])
def test_transfer_refuses_a_transformed_checkpoint_before_training(highpass_ckpt: Path, scenes: Path, framework: str,
                                                                   protocol: str, transfer_fails) -> None:
    pytest.importorskip("detectron2" if framework == "detectron2" else "mmseg")
    transfer_fails(framework, highpass_ckpt, scenes, protocol, TRANSFORM)


def test_the_suite_finetunes_and_records_the_transform(highpass_ckpt: Path, eval_data: Path,
                                                       tmp_path: Path) -> None:
    """Frozen-feature tasks (through the transform, tests/measure) and finetuning run; the stored
    run config carries the transform and the runs table shows it."""
    from evaluate import suite as S
    from measure.results import ResultsStore
    from reports import data as D

    store = tmp_path / "r.sqlite"
    assert S.main([str(highpass_ckpt), "--data", str(eval_data), "--store", str(store), "--cache",
                   str(tmp_path / "c"), "--tasks", "knn,finetune", "--sizes", "20", "--seeds", "0"]) == 0
    frame = ResultsStore(store).to_frame()
    assert set(frame["task"]) == {"knn", "finetune"}
    (config,) = ResultsStore(store).runs()["config"]
    assert config["input_transform"] == {"name": "highpass", "params": {"kernel": 11, "sigma": 5.0}}
    table = D.runs_table(D.load(store))                    # the checkpoint, and the scratch baseline's plain images
    assert sorted(table["input_transform"].tolist()) == ["", "highpass(kernel=11, sigma=5)"]


def test_finetuning_a_transformed_checkpoint_feeds_it_transformed_images(highpass_ckpt: Path, eval_data: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from evaluate import finetune as FT
    from pretrain.augment import input_transforms as T

    calls = []

    def spy(z, mean, std, kernel: int = 11, sigma: float = 5.0):
        calls.append(z.shape)
        return T.highpass(z, mean, std, kernel, sigma)

    monkeypatch.setitem(T.INPUT_TRANSFORMS, "highpass", spy)
    cfg = FT.FinetuneConfig(sizes=(20,), seeds=(0,), min_steps=2, max_steps=2, batch_size=16, test_limit=16)
    FT.label_efficiency(highpass_ckpt, eval_data, cfg, kinds=("pretrained",))
    assert calls                                   # the pretrained network sees high-passed images
    calls.clear()
    FT.label_efficiency(highpass_ckpt, eval_data, cfg, kinds=("scratch",))
    assert not calls                               # the from-scratch baseline reads plain images
