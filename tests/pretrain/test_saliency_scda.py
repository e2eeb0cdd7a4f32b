"""SCDA saliency (Wei et al., TIP 2017): the mask of known feature maps, and masks from a real checkpoint."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pretrain import config as C
from pretrain import trainer as T
from pretrain.checkpoint import load_backbone
from pretrain.saliency.scda import SCDA, resize_mask, scda_map, scda_mask


def features_with(blobs: list[tuple[slice, slice, float]], b: int = 1, c: int = 4, size: int = 7) -> torch.Tensor:
    """(b, c, size, size) features: low noise plus hot rectangles."""
    g = torch.Generator().manual_seed(0)
    f = torch.rand(b, c, size, size, generator=g) * 0.1
    for rows, cols, value in blobs:
        f[:, :, rows, cols] += value
    return f


def test_map_is_the_channel_sum() -> None:
    f = torch.rand(2, 5, 3, 4)
    torch.testing.assert_close(scda_map(f), f.sum(1))
    with pytest.raises(ValueError, match="B, C, h, w"):
        scda_map(torch.rand(5, 3, 4))


def test_mask_equals_a_single_hot_blob() -> None:
    f = features_with([(slice(2, 5), slice(1, 4), 1.0)], b=2)
    expected = torch.zeros(7, 7, dtype=torch.bool)
    expected[2:5, 1:4] = True
    for largest in (True, False):
        mask = scda_mask(f, largest_component=largest)
        assert mask.dtype == torch.bool and mask.shape == (2, 7, 7)
        assert torch.equal(mask[0], expected) and torch.equal(mask[1], expected)


def test_largest_component_keeps_the_larger_of_two_blobs() -> None:
    big, small = (slice(0, 3), slice(0, 3), 1.0), (slice(5, 7), slice(5, 7), 1.0)
    f = features_with([big, small])
    both = scda_mask(f, largest_component=False)[0]
    kept = scda_mask(f, largest_component=True)[0]
    assert int(both.sum()) == 13 and int(kept.sum()) == 9
    assert kept[0:3, 0:3].all() and not kept[5:, 5:].any()


def test_components_are_8_connected() -> None:
    diagonal = [(slice(i, i + 1), slice(i, i + 1), 1.0) for i in range(4)]
    f = features_with(diagonal + [(slice(6, 7), slice(0, 2), 1.0)])
    kept = scda_mask(f)[0]
    assert int(kept.sum()) == 4 and all(kept[i, i] for i in range(4))


def test_constant_map_gives_an_empty_mask() -> None:
    assert not scda_mask(torch.ones(1, 2, 4, 4)).any()


def test_resize_mask() -> None:
    m = torch.zeros(1, 7, 7, dtype=torch.bool)
    m[0, 2:5, 1:4] = True
    up = resize_mask(m, 14)
    assert up.shape == (1, 14, 14) and torch.equal(up, m.repeat_interleave(2, 1).repeat_interleave(2, 2))
    assert torch.equal(resize_mask(m, 7), m)
    assert resize_mask(torch.ones(2, 7, 7, dtype=torch.bool), 3).all()


@pytest.fixture(scope="module")
def checkpoint(shapes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = {"data.path": str(shapes_dir), "train.out": str(tmp_path_factory.mktemp("scda")),
                 "train.tensorboard": False}
    return T.train(C.build_config("random", None, "test", overrides), progress=False) / "ckpt.pt"


def test_scda_on_a_real_checkpoint(checkpoint: Path, shapes_dir: Path) -> None:
    from imagedata.formats import open_source

    images = open_source(shapes_dir, split="all").read(np.arange(4)).contiguous()     # uint8 (4, 3, 32, 32)
    scda = SCDA(checkpoint)
    mask = scda(images)
    backbone, meta = load_backbone(checkpoint)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (meta.data.mean, meta.data.std))
    with torch.no_grad():
        feats = backbone.forward_features((images.float() / 255 - mean) / std)
    g = feats.shape[-1]
    assert mask.dtype == torch.bool and mask.shape == (4, g, g)
    assert torch.equal(mask, scda_mask(feats))
    assert mask.flatten(1).any(1).all()
    assert scda.masks_at(images, 4).shape == (4, 4, 4)
    assert torch.equal(scda.masks_at(images, g), mask)
    with pytest.raises(ValueError, match="uint8"):
        scda(images.float())


def test_missing_or_bad_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ckpt.pt"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        SCDA(missing)
    bad = tmp_path / "ckpt.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=str(bad)):
        SCDA(bad)
