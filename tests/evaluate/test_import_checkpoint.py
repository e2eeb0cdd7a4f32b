"""``python -m evaluate.import_checkpoint`` and foreign files given to the suite and invariance
directly: imported once (cached by sha256), evaluated, and refused in one line when they do not fit."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torchvision

from evaluate import import_checkpoint as cli
from evaluate import suite
from measure.checkpoints import arch_args, find_checkpoints
from measure.results import ResultsStore
from pretrain.checkpoint import CheckpointError, read_meta


@pytest.fixture
def tv_file(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


def test_cli_imports_and_lists_what_it_dropped(tv_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "ckpt.pt"
    assert cli.main([str(tv_file), "--out", str(out), "--image-size", "64", "--data-name", "in1k"]) == 0
    meta = read_meta(out)
    assert meta.provenance["dropped"] == ["fc.bias", "fc.weight"]
    assert meta.data.image_size == 64 and meta.data.name == "in1k" and meta.backbone.name == "resnet18"
    assert "dropped 2 keys" in capsys.readouterr().out


def test_cli_names_the_formats(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ("moco", "dino", "vissl", "openmmlab", "lightly", "solo-learn"))


@pytest.mark.parametrize("content, message", [
    (b"not a torch file", "not a readable torch file"),
    (None, "no such checkpoint file"),
])
def test_cli_bad_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes | None,
                                  message: str) -> None:
    src = tmp_path / "broken.pth"
    if content is not None:
        src.write_bytes(content)
    assert cli.main([str(src), "--out", str(tmp_path / "ckpt.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and str(src) in err
    assert not (tmp_path / "ckpt.pt").exists()


def test_cli_refuses_a_bad_normalisation(tv_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main([str(tv_file), "--out", str(tmp_path / "c.pt"), "--mean", "0.5,0.5"]) == 2
    assert "--mean '0.5,0.5': expected three" in capsys.readouterr().err


def test_a_timm_name_that_does_not_exist_lists_the_closest(tv_file: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    assert cli.main([str(tv_file), "--out", str(tmp_path / "c.pt"), "--arch", "timm/resnet_18"]) == 2
    err = capsys.readouterr().err
    assert "unknown timm model 'resnet_18'; closest: " in err and "resnet18" in err


def test_arch_args_parse_python_literals() -> None:
    assert arch_args(["num_heads=12", "qkv_bias=False", "act=gelu"]) == {"num_heads": 12, "qkv_bias": False,
                                                                        "act": "gelu"}
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        arch_args(["num_heads"])


def test_find_checkpoints_imports_a_foreign_file_once(tv_file: Path, tmp_path: Path) -> None:
    first = find_checkpoints([str(tv_file)], cache_dir=tmp_path / "cache")
    again = find_checkpoints([str(tv_file)], cache_dir=tmp_path / "cache")
    assert first == again and first[0].is_file() and first[0] != tv_file
    with pytest.raises(CheckpointError, match="missing backbone key 'layer1.0.bn1.weight'"):
        sd = torch.load(tv_file, weights_only=True)
        del sd["layer1.0.bn1.weight"]
        torch.save(sd, tmp_path / "cut.pth")
        find_checkpoints([str(tmp_path / "cut.pth")], import_from="torchvision", cache_dir=tmp_path / "cache")


def test_the_suite_evaluates_a_foreign_file(tv_file: Path, eval_data: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLBENCH_CACHE", str(tmp_path / "cache"))
    store = tmp_path / "results.sqlite"
    args = [str(tv_file), "--data", str(eval_data), "--tasks", "linear,knn", "--image-size", "32", "--store",
            str(store), "--cache", str(tmp_path / "features"), "--from", "torchvision"]
    assert suite.main(args) == 0
    frame = ResultsStore(store).query()
    assert {"linear", "knn"} <= set(frame["task"]) and frame["run_id"].str.startswith("torchvision-").all()


def test_the_suite_asks_for_data_for_a_foreign_file(tv_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLBENCH_CACHE", str(tmp_path / "cache"))
    assert suite.main([str(tv_file), "--tasks", "knn", "--store", str(tmp_path / "r.sqlite")]) == 2
    assert "names no dataset of its own" in capsys.readouterr().err


def test_the_suite_runs_linear_and_knn_on_a_dino_vit_s16_file_over_cifar10(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's bar: a DINO-layout ViT-S/16 file (random weights), given to the suite directly,
    probed on a CIFAR-10-layout folder."""
    from array_layouts import make_cifar10
    from importer_fixtures import dino_fixture
    monkeypatch.setenv("SSLBENCH_CACHE", str(tmp_path / "cache"))
    fx = dino_fixture(tmp_path, vit=True, depth=12)
    make_cifar10(tmp_path / "cifar", per_batch=12, test=30)
    store = tmp_path / "results.sqlite"
    assert suite.main([str(fx.path), "--from", "dino", "--data", str(tmp_path / "cifar"), "--tasks", "linear,knn",
                       "--image-size", "32", "--store", str(store), "--cache", str(tmp_path / "features")]) == 0
    frame = ResultsStore(store).query()
    assert {"linear", "knn"} <= set(frame["task"]) and (frame["dataset"] == "cifar").all()
    meta = read_meta(find_checkpoints([str(fx.path)], import_from="dino")[0])
    assert meta.backbone.kwargs["model"] == "vit_small_patch16_224" and meta.backbone.num_features == 384


def _folder_with_a_corrupt_png(root: Path, per_class: int) -> Path:
    """root/{train,test}/c{0,1}/<j>.png, 8-px images, with train/c1/2.png corrupt; returns that file."""
    from PIL import Image
    for split in ("train", "test"):
        for c in range(2):
            folder = root / split / f"c{c}"
            folder.mkdir(parents=True)
            for j in range(per_class):
                Image.new("RGB", (8, 8), (100 * c, 10 * j, 0)).save(folder / f"{j}.png")
    bad = root / "train" / "c1" / "2.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return bad


def test_a_corrupt_image_in_a_folder_is_one_line_naming_it(tv_file: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLBENCH_CACHE", str(tmp_path / "cache"))
    bad = _folder_with_a_corrupt_png(tmp_path / "data", 4)
    code = suite.main([str(tv_file), "--data", str(tmp_path / "data"), "--tasks", "knn", "--image-size", "32",
                       "--store", str(tmp_path / "r.sqlite"), "--cache", str(tmp_path / "features")])
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err and last.startswith("error: ") and str(bad) in last
    assert "cannot decode image" in last


def test_skip_unreadable_leaves_the_file_out_and_counts_it(tv_file: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSLBENCH_CACHE", str(tmp_path / "cache"))
    _folder_with_a_corrupt_png(tmp_path / "data", 6)
    store = tmp_path / "r.sqlite"
    assert suite.main([str(tv_file), "--data", str(tmp_path / "data"), "--tasks", "knn", "--image-size", "32",
                       "--store", str(store), "--cache", str(tmp_path / "features"), "--skip-unreadable"]) == 0
    frame = ResultsStore(store).query()
    skipped = frame[frame["metric"] == "unreadable_skipped"].set_index("split")["value"]
    assert skipped.to_dict() == {"train": 1.0, "test": 0.0}
    assert (frame[frame["task"] == "knn"]["eval_config"].str.contains('"skip_unreadable":true')).all()
