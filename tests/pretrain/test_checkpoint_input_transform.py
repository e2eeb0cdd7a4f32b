"""The checkpoint's ``input_transform``: written by the trainer for a policy that trains on
high-passed views, read back typed, None for older checkpoints, loud on an unknown name; and
``load_backbone`` (hence SCDA) puts the backbone behind it."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pretrain.augment.input_transforms import InputTransform, InputTransformed
from pretrain.checkpoint import CheckpointError, CheckpointMeta, load_backbone, read_meta

PAPER_HIGHPASS = InputTransform("highpass", {"kernel": 11, "sigma": 5.0})


@pytest.fixture(scope="module")
def highpass_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> Path:
    """A tiny checkpoint trained with random grid masking and the high-pass fill (4 steps)."""
    return make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("runs"), aug="random-mask")


def rewrite(src: Path, dst: Path, **changes: object) -> Path:
    """A copy of ``src`` with top-level keys changed (a value of ``...`` deletes the key)."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    for key, value in changes.items():
        if value is ...:
            del ckpt[key]
        else:
            ckpt[key] = value
    torch.save(ckpt, dst)
    return dst


def test_the_trainer_records_the_policy_transform(highpass_ckpt: Path, tiny_ckpt: Path) -> None:
    assert torch.load(highpass_ckpt, weights_only=True)["input_transform"] == \
        {"name": "highpass", "params": {"kernel": 11, "sigma": 5.0}}
    assert read_meta(highpass_ckpt).input_transform == PAPER_HIGHPASS
    assert torch.load(tiny_ckpt, weights_only=True)["input_transform"] is None        # the default policy
    assert read_meta(tiny_ckpt).input_transform is None


def test_load_backbone_wraps_only_a_transformed_checkpoint(highpass_ckpt: Path, tiny_ckpt: Path) -> None:
    model, meta = load_backbone(highpass_ckpt)
    assert isinstance(model, InputTransformed) and model.transform == meta.input_transform
    assert not model.training and model.num_features == meta.backbone.num_features
    bare, _ = load_backbone(tiny_ckpt)
    assert not isinstance(bare, InputTransformed)


def test_the_metadata_round_trips(highpass_ckpt: Path, tiny_ckpt: Path) -> None:
    for ckpt in (highpass_ckpt, tiny_ckpt):
        meta = read_meta(ckpt)
        assert CheckpointMeta.from_dict(meta.to_dict()) == meta


def test_an_older_checkpoint_without_the_field_reads_as_none(highpass_ckpt: Path, tmp_path: Path) -> None:
    old = rewrite(highpass_ckpt, tmp_path / "old.pt", input_transform=...)
    model, meta = load_backbone(old)
    assert meta.input_transform is None and not isinstance(model, InputTransformed)


@pytest.mark.parametrize("value, match", [
    ({"name": "sobel", "params": {}}, r"input_transform 'sobel' is not registered \(valid: highpass\)"),
    ({"name": "highpass", "params": {"radius": 2}}, r"bad input_transform .*unknown setting\(s\) radius"),
    ("highpass", r"bad input_transform .*expected"),
])
def test_a_bad_transform_is_one_clear_checkpoint_error(highpass_ckpt: Path, tmp_path: Path, value: object,
                                                       match: str) -> None:
    bad = rewrite(highpass_ckpt, tmp_path / "bad.pt", input_transform=value)
    for read in (read_meta, load_backbone):
        with pytest.raises(CheckpointError, match=match) as err:
            read(bad)
        assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_scda_reads_a_transformed_checkpoint_through_its_transform(highpass_ckpt: Path) -> None:
    """SCDA (saliency from a frozen checkpoint) loads through ``load_backbone``: it feeds the
    backbone high-passed images when that is what it was trained on."""
    from pretrain.saliency.scda import SCDA

    scda = SCDA(highpass_ckpt)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    model, meta = load_backbone(highpass_ckpt)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (meta.data.mean, meta.data.std))
    z = (images.float() / 255 - mean) / std
    with torch.no_grad():
        want = model.backbone.forward_features(meta.input_transform(z, mean.view(3), std.view(3)))
        torch.testing.assert_close(scda.features(images), want)
