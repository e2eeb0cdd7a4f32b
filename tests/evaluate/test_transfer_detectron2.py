"""Detectron2 transfer end to end on tiny synthetic scenes: convert -> train 2 iterations ->
COCO evaluation -> results store (evaluate.transfer.detectron2)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from measure.results import ResultsStore
from evaluate.transfer import detectron2 as TD
from evaluate.transfer.__main__ import main as transfer_main

STATS = {"mean": [100.0, 110.0, 120.0], "std": [50.0, 55.0, 60.0]}


def test_two_iterations_end_to_end_into_the_store(r18_ckpt: Path, scenes: Path, tmp_path: Path) -> None:
    store = tmp_path / "results.sqlite"
    rc = transfer_main(["detectron2", str(r18_ckpt), "--data", str(scenes), "--iters", "2", "--batch", "2",
                        "--out", str(tmp_path / "work"), "--store", str(store)])
    assert rc == 0
    rows = ResultsStore(store).query(task="detection")
    assert {"AP", "AP50", "AP75", "segm_AP", "segm_AP50"} <= set(rows["metric"])
    assert rows["value"].between(0, 100).all()
    cfg = json.loads(rows["eval_config"].iloc[0])
    assert cfg["framework"] == "detectron2" and cfg["protocol"] == "scenes-r18-fpn" and cfg["iters"] == 2


def test_box_ap_is_pycocotools_on_the_same_predictions(r18_ckpt: Path, scenes: Path, tmp_path: Path) -> None:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    metrics = TD.run(r18_ckpt, "scenes-r18-fpn", scenes, tmp_path, iters=2, ims_per_batch=2)
    gt = COCO(str(scenes / "exports" / "coco" / "annotations_test.json"))
    dets = json.loads((tmp_path / "eval" / "coco_instances_results.json").read_text())
    if not dets:                                                        # no detection: COCO's AP is 0
        assert metrics["AP"] == metrics["AP50"] == 0.0
        return
    ev = COCOeval(gt, gt.loadRes(dets), "bbox")                          # the evaluator's own detections
    ev.evaluate(), ev.accumulate(), ev.summarize()
    assert metrics["AP"] == pytest.approx(100 * max(ev.stats[0], 0), abs=1e-6)
    assert metrics["AP50"] == pytest.approx(100 * max(ev.stats[1], 0), abs=1e-6)


@pytest.mark.parametrize("case,match", [
    ("protocol", "unknown Detectron2 protocol 'yolo'"),
    ("backbone", "takes resnet18, resnet50 only"),
    ("data", "no instance masks"),
    ("gpu-protocol", "is a full-scale GPU protocol: run it with --device cuda"),
    ("gpus", "--num-gpus 2 with --device cuda: this machine has"),
    ("no-gpus", "--num-gpus 0: expected 1 or more"),
    ("batch", "--batch 3: expected a multiple of --num-gpus 2"),
])
def test_bad_input_fails_in_one_line(case: str, match: str, r18_ckpt: Path, scenes: Path, eval_data: Path,
                                     tmp_path: Path, make_ckpt, transfer_fails) -> None:
    if case == "gpus" and torch.cuda.device_count() >= 2:
        pytest.skip("this machine has 2 GPUs")
    ckpt, data, protocol = r18_ckpt, scenes, "scenes-r18-fpn"
    extra = {"gpus": ["--device", "cuda", "--num-gpus", "2"], "no-gpus": ["--num-gpus", "0"],
             "batch": ["--num-gpus", "2", "--batch", "3"]}.get(case, [])
    if case == "protocol":
        protocol = "yolo"
    elif case == "backbone":
        ckpt = make_ckpt("random", eval_data, tmp_path / "runs")                      # the tiny ResNet
    elif case == "data":
        data = tmp_path / "images"                                                    # e.g. an image folder
        data.mkdir()
    elif case == "gpu-protocol":
        protocol = "coco-r50-fpn-1x"
    transfer_fails("detectron2", ckpt, data, protocol, match, *extra)


@pytest.mark.parametrize("protocol", [p for p in TD.PROTOCOLS if p != "scenes-r18-fpn"])
def test_paper_protocols_find_their_data_in_detectron2_layout(protocol: str, tmp_path: Path, monkeypatch) -> None:
    """The builtin data sets are read under $DETECTRON2_DATASETS (default ``datasets/``): a missing
    file is named; in the real layout the sets and class count come back."""
    from detectron2.data import MetadataCatalog

    monkeypatch.chdir(tmp_path)
    p = TD.PROTOCOLS[protocol]
    with pytest.raises(TD.TransferError, match=r"(trainval\.txt|instances_train2017\.json): missing"):
        TD.builtin_data(protocol)
    for name in [*p.dataset.split("+"), p.test_dataset]:
        meta = MetadataCatalog.get(name)
        if hasattr(meta, "json_file"):
            Path(meta.image_root).mkdir(parents=True, exist_ok=True)
            Path(meta.json_file).parent.mkdir(parents=True, exist_ok=True)
            Path(meta.json_file).write_text("{}")
        else:
            (Path(meta.dirname) / "JPEGImages").mkdir(parents=True, exist_ok=True)
            (Path(meta.dirname) / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
            (Path(meta.dirname) / "ImageSets" / "Main" / f"{meta.split}.txt").write_text("")
    train, test, classes = TD.builtin_data(protocol)
    assert (train, test) == (p.dataset, p.test_dataset) and classes == (20 if "voc" in protocol else 80)
    cfg = TD.build_cfg(protocol, 50, "w.pkl", tmp_path, train_set=train, test_set=test, num_classes=classes, **STATS,
                       ims_per_batch=32, device="cuda")
    assert cfg.DATASETS.TRAIN == tuple(p.dataset.split("+")) and cfg.DATASETS.TEST == (p.test_dataset,)
    assert cfg.SOLVER.IMS_PER_BATCH == 32 and cfg.SOLVER.BASE_LR == pytest.approx(p.lr * 2)    # linear scaling


def test_two_processes_end_to_end_into_the_store(r18_ckpt: Path, scenes: Path, tmp_path: Path,
                                                capfd: pytest.CaptureFixture) -> None:
    """The multi-GPU path on CPU: torchrun starts 2 gloo workers (DDP, sharded data and evaluation)."""
    store = tmp_path / "results.sqlite"
    rc = transfer_main(["detectron2", str(r18_ckpt), "--data", str(scenes), "--iters", "2", "--batch", "2",
                        "--num-gpus", "2", "--out", str(tmp_path / "work"), "--store", str(store)])
    assert rc == 0, capfd.readouterr().err[-3000:]          # the workers' own reason, in the summary
    rows = ResultsStore(store).query(task="detection")
    assert {"AP", "AP50", "AP75", "segm_AP"} <= set(rows["metric"]) and rows["value"].between(0, 100).all()
    assert json.loads((tmp_path / "work" / "metrics.json").read_text())["metrics"]["AP"] == \
        rows.set_index("metric").loc["AP", "value"]


@pytest.mark.parametrize("protocol", list(TD.PROTOCOLS))
def test_every_protocol_builds_from_the_model_zoo_config(protocol: str, tmp_path: Path) -> None:
    cfg = TD.build_cfg(protocol, 50, "w.pkl", tmp_path, train_set="a", test_set="b", num_classes=3, **STATS)
    assert cfg.MODEL.RESNETS.DEPTH == 50 and cfg.MODEL.RESNETS.STRIDE_IN_1X1 is False
    assert cfg.MODEL.PIXEL_MEAN == STATS["mean"] and cfg.MODEL.PIXEL_STD == STATS["std"] and cfg.INPUT.FORMAT == "RGB"
    assert cfg.MODEL.ROI_HEADS.NUM_CLASSES == 3 and cfg.SOLVER.MAX_ITER == TD.PROTOCOLS[protocol].iters
    assert cfg.MODEL.MASK_ON == TD.PROTOCOLS[protocol].mask
    if "C4" in TD.PROTOCOLS[protocol].base:
        with pytest.raises(TD.TransferError, match="C4 head needs a ResNet-50"):
            TD.build_cfg(protocol, 18, "w.pkl", tmp_path, train_set="a", test_set="b", num_classes=3, **STATS)


def test_coco_metrics_no_detection_is_zero_ap_and_empty_ranges_are_left_out() -> None:
    res = {"bbox": {"AP": 12.5, "AP50": 30.0, "AP75": 10.0, "APs": 12.5, "APm": float("nan"), "APl": float("nan")}}
    assert TD.coco_metrics(res, mask_on=True) == {"AP": 12.5, "AP50": 30.0, "AP75": 10.0, "APs": 12.5,
                                                  "segm_AP": 0.0, "segm_AP50": 0.0, "segm_AP75": 0.0}
    assert TD.coco_metrics({}, mask_on=False) == {"AP": 0.0, "AP50": 0.0, "AP75": 0.0}


def test_a_diverging_run_stops_with_its_iteration(r18_ckpt: Path, scenes: Path, tmp_path: Path) -> None:
    from evaluate.transfer.convert import convert

    train_set, test_set, classes = TD.register_scenes(scenes)
    weights = convert(r18_ckpt, "detectron2", tmp_path / "b.pkl")
    cfg = TD.build_cfg("scenes-r18-fpn", 18, str(weights), tmp_path, train_set=train_set, test_set=test_set,
                       num_classes=classes, **STATS, iters=6, ims_per_batch=2)
    cfg.SOLVER.BASE_LR, cfg.SOLVER.WARMUP_ITERS = 1e9, 1
    with pytest.raises(TD.TrainingDiverged, match=r"diverged at iteration \d+: .*(NaN|nan|Inf|inf)"):
        TD.train_and_evaluate(cfg)
    assert not (tmp_path / "eval").exists()                              # nothing evaluated, nothing stored


@pytest.mark.parametrize("framework,protocol", [("detectron2", "scenes-r18-fpn"), ("mmseg", "scenes-r18-fcn")])
def test_a_missing_framework_says_run_make_setup(framework: str, protocol: str, r18_ckpt: Path, scenes: Path,
                                                 monkeypatch, transfer_fails) -> None:
    import sys

    monkeypatch.setitem(sys.modules, framework, None)               # `import detectron2` raises ImportError
    transfer_fails(framework, r18_ckpt, scenes, protocol, "is not installed")
    transfer_fails(framework, r18_ckpt, scenes, protocol, "; run `make setup`")
