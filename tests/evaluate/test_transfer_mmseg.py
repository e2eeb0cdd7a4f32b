"""mmsegmentation transfer end to end on tiny synthetic scenes: convert -> the protocol's model
starts from the checkpoint -> train 2 iterations -> IoUMetric -> results store."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from measure.results import ResultsStore
from evaluate.transfer import mmseg as TM
from evaluate.transfer.__main__ import main as transfer_main


def test_the_protocol_model_starts_from_the_checkpoint(r18_ckpt: Path, scenes: Path, tmp_path: Path) -> None:
    from mmengine.config import Config
    from mmengine.runner import Runner
    from mmseg.utils import register_all_modules

    from evaluate.transfer.convert import convert, pixel_stats
    from pretrain.checkpoint import read_meta

    register_all_modules(init_default_scope=False)
    voc, classes = TM.scenes_voc(scenes)
    assert classes[0] == "background" and len(classes) > 2
    weights = convert(r18_ckpt, "mmseg", tmp_path / "w.pth")
    mean, std = pixel_stats(read_meta(r18_ckpt))
    config = TM.scenes_config(18, str(weights), voc, classes, tmp_path / "work", 2, 2, mean, std)
    assert config["model"]["data_preprocessor"]["mean"] == mean and mean[0] != 123.675   # the checkpoint's stats
    runner = Runner.from_cfg(Config(config))
    runner._init_model_weights()
    ours = torch.load(r18_ckpt, weights_only=True)["state_dict"]
    theirs = runner.model.backbone.state_dict()
    for key in ("conv1.weight", "layer1.0.bn1.running_mean", "layer4.1.conv2.weight", "layer3.0.downsample.0.weight"):
        assert torch.equal(theirs[key], ours[key]), key


def test_two_iterations_end_to_end_into_the_store(r18_ckpt: Path, scenes: Path, tmp_path: Path) -> None:
    store = tmp_path / "results.sqlite"
    rc = transfer_main(["mmseg", str(r18_ckpt), "--data", str(scenes), "--iters", "2", "--batch", "2",
                        "--out", str(tmp_path / "work"), "--store", str(store)])
    assert rc == 0
    rows = ResultsStore(store).query(task="segmentation_transfer")
    assert set(rows["metric"]) == {"miou", "macc", "aacc"} and rows["value"].between(0, 100).all()
    cfg = json.loads(rows["eval_config"].iloc[0])
    assert cfg["framework"] == "mmseg" and cfg["protocol"] == "scenes-r18-fcn" and cfg["iters"] == 2


@pytest.mark.parametrize("case,match", [
    ("protocol", "unknown mmseg protocol 'segformer'"),
    ("data", "no semantic masks"),
    ("gpu-protocol", "is a full-scale GPU protocol: run it with --device cuda"),
])
def test_bad_input_fails_in_one_line(case: str, match: str, r18_ckpt: Path, scenes: Path, tmp_path: Path,
                                     transfer_fails) -> None:
    data, protocol = scenes, "scenes-r18-fcn"
    if case == "protocol":
        protocol = "segformer"
    elif case == "data":
        data = tmp_path / "images"
        data.mkdir()
    else:
        protocol = "ade20k-upernet"
    transfer_fails("mmseg", r18_ckpt, data, protocol, match)


@pytest.mark.parametrize("protocol", list(TM.SHIPPED))
def test_shipped_paper_configs_are_mmseg_own(protocol: str) -> None:
    from mmengine.config import Config

    cfg = Config.fromfile(TM.shipped_config_path(protocol))
    assert cfg.model.backbone.depth == 50


@pytest.mark.parametrize("protocol", list(TM.SHIPPED))
def test_paper_configs_take_the_checkpoint_and_the_data_root(protocol: str, r18_ckpt: Path, tmp_path: Path) -> None:
    """A paper protocol's shipped config with the backbone switched to the checkpoint's standard-stem
    ResNet (ResNet-18 here: the heads' channels follow), built by mmseg and loaded from the
    converted weights; the data read under the given root, a missing folder named."""
    from mmengine.config import Config
    from mmseg.registry import MODELS
    from mmseg.utils import register_all_modules

    from evaluate.transfer.convert import convert, pixel_stats
    from pretrain.checkpoint import read_meta

    register_all_modules(init_default_scope=True)
    weights = convert(r18_ckpt, "mmseg", tmp_path / "w.pth")
    mean, std = pixel_stats(read_meta(r18_ckpt))
    with pytest.raises(TM.TransferError, match=r"missing \(the '.*' data in mmseg's layout"):
        TM.paper_config(protocol, 18, str(weights), tmp_path / "data", tmp_path / "work", mean, std)
    shipped = Config.fromfile(TM.shipped_config_path(protocol))
    for root in {d["data_root"] for d in (shipped.train_dataloader.dataset, shipped.test_dataloader.dataset)
                 if "data_root" in d} | {d["data_root"] for d in shipped.train_dataloader.dataset.get("datasets", [])}:
        (tmp_path / "data" / Path(root).relative_to("data")).mkdir(parents=True, exist_ok=True)
    cfg = TM.paper_config(protocol, 18, str(weights), tmp_path / "data", tmp_path / "work", mean, std, iters=10,
                          batch=2)
    assert cfg["model"]["backbone"]["type"] == "ResNet" and cfg["model"]["data_preprocessor"]["mean"] == mean
    assert cfg["train_cfg"]["max_iters"] == 10 and cfg["train_dataloader"]["batch_size"] == 2
    assert str(tmp_path / "data") in json.dumps(cfg["test_dataloader"])
    model = MODELS.build(Config(cfg).model)
    model.init_weights()
    ours = torch.load(r18_ckpt, weights_only=True)["state_dict"]
    assert torch.equal(model.backbone.state_dict()["layer4.1.conv2.weight"], ours["layer4.1.conv2.weight"])
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 3, 64, 64), mode="tensor")
    assert logits.shape[1] == cfg["model"]["decode_head"]["num_classes"]


def test_two_processes_end_to_end_into_the_store(r18_ckpt: Path, scenes: Path, tmp_path: Path,
                                                capfd: pytest.CaptureFixture) -> None:
    """The multi-GPU path on CPU: torchrun starts 2 gloo workers running mmengine's distributed Runner."""
    store = tmp_path / "results.sqlite"
    rc = transfer_main(["mmseg", str(r18_ckpt), "--data", str(scenes), "--iters", "2", "--batch", "2",
                        "--num-gpus", "2", "--out", str(tmp_path / "work"), "--store", str(store)])
    assert rc == 0, capfd.readouterr().err[-3000:]          # the workers' own reason, in the summary
    rows = ResultsStore(store).query(task="segmentation_transfer")
    assert set(rows["metric"]) == {"miou", "macc", "aacc"} and rows["value"].between(0, 100).all()
    assert json.loads(rows["eval_config"].iloc[0])["batch"] == 4                 # 2 processes x 2 images
    assert (tmp_path / "work" / "config.py").exists()


def test_both_frameworks_run_from_the_suite(r18_ckpt: Path, scenes: Path, eval_data: Path, tmp_path: Path,
                                            make_ckpt) -> None:
    from evaluate import suite as S

    store = tmp_path / "results.sqlite"
    tiny = make_ckpt("random", eval_data, tmp_path / "runs")                 # a backbone neither framework takes
    argv = [str(r18_ckpt), str(tiny), "--data", str(scenes), "--tasks", "detection,segmentation_transfer",
            "--transfer-iters", "2", "--transfer-batch", "2", "--store", str(store), "--cache", str(tmp_path / "c")]
    assert S.main(argv) == 0
    frame = ResultsStore(store).query()
    assert set(frame["task"]) == {"detection", "segmentation_transfer"}
    assert {"AP", "AP50", "miou"} <= set(frame["metric"]) and frame["run_id"].nunique() == 1   # tiny: skipped


def test_a_diverging_run_stops_with_its_iteration(r18_ckpt: Path, scenes: Path, tmp_path: Path) -> None:
    from evaluate.transfer.convert import convert, pixel_stats
    from evaluate.transfer.errors import TrainingDiverged
    from pretrain.checkpoint import read_meta

    voc, classes = TM.scenes_voc(scenes)
    weights = convert(r18_ckpt, "mmseg", tmp_path / "w.pth")
    config = TM.scenes_config(18, str(weights), voc, classes, tmp_path / "work", 4, 2,
                              *pixel_stats(read_meta(r18_ckpt)))
    config["optim_wrapper"]["optimizer"]["lr"] = 1e12
    with pytest.raises(TrainingDiverged, match=r"mmseg training diverged at iteration \d+: loss (nan|inf)"):
        TM.train_and_evaluate(config)
