"""Importers: for every format, a network saved in the framework's own key layout imports strictly,
its pooled features equal the original's, only the format's known heads are dropped (and listed),
and a missing or unexpected key is refused naming it."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
import torch
import torchvision

from importer_fixtures import FIXTURES, Fixture, moco_fixture
from pretrain.checkpoint import CheckpointError, load_backbone, read_meta
from pretrain.importers import FORMATS, detect, import_checkpoint, resolve_checkpoint
from pretrain.importers.core import flatten, read_foreign

torch.manual_seed(0)


def _features(model: torch.nn.Module, size: int = 64) -> torch.Tensor:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model(x)


def test_every_format_has_a_fixture() -> None:
    assert set(FIXTURES) == set(FORMATS)


@pytest.fixture(scope="module", params=sorted(FORMATS))
def saved(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Fixture]:
    """Each format's file, saved once per module."""
    return request.param, FIXTURES[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture
def fixture(saved: tuple[str, Fixture], tmp_path: Path) -> tuple[str, Fixture]:
    """A test's own copy of the format's file (tests may edit it)."""
    fmt, fx = saved
    copy = tmp_path / "src" / fx.path.name
    copy.parent.mkdir()
    shutil.copyfile(fx.path, copy)
    return fmt, dataclasses.replace(fx, path=copy)


def test_import_reproduces_the_original_features(fixture: tuple[str, Fixture], tmp_path: Path) -> None:
    fmt, fx = fixture
    out = import_checkpoint(fx.path, tmp_path / "imported" / "ckpt.pt", fmt=fmt)
    model, meta = load_backbone(out)
    assert torch.allclose(_features(model), _features(fx.reference), atol=1e-6, rtol=0)
    prov = meta.provenance
    assert prov["format"] == fmt and prov["source_sha256"] and meta.method == fmt
    weights = _weights_dict(fx)
    kept = [k for k in weights if k.startswith(fx.prefix) and k not in prov["dropped"]]
    # every key of the file is either loaded into the backbone or listed as dropped
    assert len(kept) + len(prov["dropped"]) == len(weights)
    assert len(kept) == len(model.state_dict() if not hasattr(model, "backbone") else model.backbone.state_dict())
    assert all(k.startswith(FORMATS[fmt].drop) for k in prov["dropped"])


def _weights_dict(fx: Fixture) -> dict:
    obj = read_foreign(fx.path)
    for part in fx.weights:
        obj = obj[part]
    return flatten(obj)


def test_auto_recognises_the_layout(fixture: tuple[str, Fixture]) -> None:
    fmt, fx = fixture
    found = detect(read_foreign(fx.path))
    assert fmt in found.matched, (fmt, found.matched)


def _rewrite(fx: Fixture, edit) -> None:
    obj = torch.load(fx.path, weights_only=True) if fx.path.suffix != ".safetensors" else None
    if obj is None:
        from safetensors.torch import load_file, save_file
        sd = load_file(str(fx.path))
        edit(sd)
        save_file(sd, str(fx.path))
        return
    target = obj
    for part in fx.weights:
        target = target[part]
    if fx.weights and fx.weights[-1] == "model" and "trunk" in target:   # VISSL nests the trunk
        target = target["trunk"]
        edit(target, strip="trunk.")
    else:
        edit(target)
    torch.save(obj, fx.path)


def test_a_missing_backbone_key_is_refused_naming_it(fixture: tuple[str, Fixture], tmp_path: Path) -> None:
    fmt, fx = fixture
    victim = {}

    rename = FORMATS[fmt].rename

    def drop(sd: dict, strip: str = "") -> None:
        key = next(k for k in sd if (strip + k).startswith(fx.prefix)
                   and rename((strip + k)[len(fx.prefix):]) in ("layer2.0.conv1.weight", "blocks.1.attn.qkv.weight"))
        victim["key"] = rename((strip + key)[len(fx.prefix):])
        del sd[key]

    _rewrite(fx, drop)
    with pytest.raises(CheckpointError, match="missing backbone key") as e:
        import_checkpoint(fx.path, tmp_path / "ckpt.pt", fmt=fmt)
    assert victim["key"] in str(e.value)
    assert not (tmp_path / "ckpt.pt").exists()


def test_an_unexpected_key_is_refused_naming_it(fixture: tuple[str, Fixture], tmp_path: Path) -> None:
    fmt, fx = fixture

    def add(sd: dict, strip: str = "") -> None:
        sd[(fx.prefix.removeprefix(strip)) + "extra_adapter.weight"] = torch.zeros(3)

    _rewrite(fx, add)
    with pytest.raises(CheckpointError, match="extra_adapter.weight"):
        import_checkpoint(fx.path, tmp_path / "ckpt.pt", fmt=fmt)


def test_moco_v2_resnet50_file_imports_with_torchvision_features(tmp_path: Path) -> None:
    """The issue's bar: a MoCo v2-layout file of a random torchvision ResNet-50 with an MLP head."""
    fx = moco_fixture(tmp_path, make=lambda num_classes: torchvision.models.resnet50(num_classes=num_classes))
    out = import_checkpoint(fx.path, tmp_path / "ckpt.pt")             # --from auto
    model, meta = load_backbone(out)
    assert meta.backbone.name == "resnet50" and meta.provenance["format"] == "moco"
    assert torch.allclose(_features(model), _features(fx.reference), atol=1e-6, rtol=0)
    assert "module.encoder_q.fc.0.weight" in meta.provenance["dropped"]
    assert "module.queue" in meta.provenance["dropped"]
    sd = torch.load(fx.path, weights_only=True)
    del sd["state_dict"]["module.encoder_q.layer3.1.bn2.running_var"]
    torch.save(sd, fx.path)
    with pytest.raises(CheckpointError, match="module.encoder_q.layer3.1.bn2.running_var"):
        import_checkpoint(fx.path, tmp_path / "again.pt", fmt="moco")


def test_a_file_that_pickles_foreign_classes_is_refused_with_its_conversion(tmp_path: Path) -> None:
    from importer_fixtures import dino_fixture
    fx = dino_fixture(tmp_path, args=True)
    with pytest.raises(CheckpointError, match=r"argparse.Namespace.*\['teacher'\]"):
        import_checkpoint(fx.path, tmp_path / "ckpt.pt", fmt="dino")
    # the conversion's result (the teacher alone) imports
    teacher = {k: v for k, v in torch.load(fx.path, weights_only=False)["teacher"].items()}
    torch.save(teacher, tmp_path / "teacher.pth")
    model, _ = load_backbone(import_checkpoint(tmp_path / "teacher.pth", tmp_path / "ckpt.pt", fmt="dino"))
    assert torch.allclose(_features(model), _features(fx.reference), atol=1e-6, rtol=0)


def test_dino_vit_imports_as_a_timm_backbone(tmp_path: Path) -> None:
    from importer_fixtures import dino_fixture
    fx = dino_fixture(tmp_path, vit=True)
    model, meta = load_backbone(import_checkpoint(fx.path, tmp_path / "ckpt.pt", fmt="dino",
                                                  arch="timm/vit_small_patch16_224", arch_kwargs={"depth": 2}))
    assert meta.backbone.name == "timm" and meta.backbone.num_features == 384
    assert torch.allclose(_features(model, 224), _features(fx.reference, 224), atol=1e-5, rtol=0)


def test_an_unknown_layout_names_the_closest_formats_and_keys(tmp_path: Path) -> None:
    torch.save({"weights": {"trunk.stem.weight": torch.zeros(1)}}, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=r"unknown checkpoint layout; closest formats: .*first keys no "
                                              r"format places: weights.trunk.stem.weight"):
        import_checkpoint(tmp_path / "odd.pth", tmp_path / "ckpt.pt")


def test_an_unknown_format_name_lists_the_formats(tmp_path: Path) -> None:
    fx = FIXTURES["torchvision"](tmp_path)
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'simclrv9'; valid: auto, torchvision"):
        import_checkpoint(fx.path, tmp_path / "ckpt.pt", fmt="simclrv9")


def test_a_foreign_file_is_imported_once_and_cached_by_its_hash(tmp_path: Path) -> None:
    fx = FIXTURES["moco"](tmp_path)
    first = resolve_checkpoint(fx.path, cache_dir=tmp_path / "cache")
    assert first != fx.path and read_meta(first).provenance["format"] == "moco"
    mtime = first.stat().st_mtime_ns
    again = resolve_checkpoint(fx.path, cache_dir=tmp_path / "cache")
    assert again == first and again.stat().st_mtime_ns == mtime
    assert resolve_checkpoint(first, cache_dir=tmp_path / "cache") == first     # an sslbench file is itself


def test_a_timm_convnext_keeps_its_head_norm_and_drops_its_classifier(tmp_path: Path) -> None:
    """timm's ConvNeXt pools through ``head.norm``: a backbone key under the classifier's prefix."""
    import timm
    net = timm.create_model("convnext_atto", pretrained=False, num_classes=7).eval()
    torch.save(net.state_dict(), tmp_path / "convnext.pth")
    model, meta = load_backbone(import_checkpoint(tmp_path / "convnext.pth", tmp_path / "ckpt.pt", fmt="timm",
                                                  arch="timm/convnext_atto"))
    assert meta.provenance["dropped"] == ["head.fc.bias", "head.fc.weight"]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), net.forward_head(net.forward_features(x), pre_logits=True), atol=1e-6)
