"""Frozen features apply a checkpoint's input transform: a checkpoint trained on high-passed views
gets high-passed images in every frozen-feature protocol (linear, kNN, clustering, low-shot, the
dense layers), a checkpoint of plain images does not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from imagedata.formats import open_source
from measure import features as F
from pretrain.augment.input_transforms import INPUT_TRANSFORMS, InputTransform, transform_params
from pretrain.checkpoint import load_backbone

N = 8


def with_transform(src: Path, dst: Path, name: str) -> Path:
    """A copy of checkpoint ``src`` declaring the registered transform ``name`` (its defaults)."""
    ckpt = torch.load(src, map_location="cpu", weights_only=True)
    ckpt["input_transform"] = {"name": name, "params": transform_params(name)}
    torch.save(ckpt, dst)
    return dst


def expected(ckpt: Path, data: Path, layer: str, transform: InputTransform | None,
             idx: np.ndarray | None = None) -> np.ndarray:
    """The layer's features of test images ``idx`` (default the first N: the features' own draw is
    passed in), by hand: the bare backbone on the normalised images, through ``transform`` first
    when given."""
    model, meta = load_backbone(ckpt)
    bare = getattr(model, "backbone", model)
    x = open_source(data, split="test").read(np.arange(N) if idx is None else idx).float() / 255
    mean, std = torch.tensor(meta.data.mean), torch.tensor(meta.data.std)
    z = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    if transform is not None:
        z = transform(z, mean, std)
    with torch.no_grad():
        y = F.LAYERS[layer](bare, z)
    y = torch.cat([m.flatten(1) for m in y], 1) if isinstance(y, list) else y.flatten(1)
    return y.numpy().astype(F.LAYER_DTYPES[layer]).astype(np.float32)


@pytest.fixture(scope="module")
def highpass_ckpt(eval_data: Path, tmp_path_factory: pytest.TempPathFactory, make_ckpt) -> Path:
    """A tiny checkpoint trained with random grid masking and the high-pass fill (4 steps)."""
    return make_ckpt("simclr", eval_data, tmp_path_factory.mktemp("runs"), aug="random-mask")


def close(a: np.ndarray, b: np.ndarray) -> bool:
    return np.allclose(a.astype(np.float32), b, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("layer", sorted(F.LAYERS))
def test_a_highpass_trained_checkpoint_gets_high_passed_images(highpass_ckpt: Path, eval_data: Path,
                                                               tmp_path: Path, layer: str) -> None:
    meta_t = load_backbone(highpass_ckpt)[1].input_transform
    assert meta_t is not None and meta_t.name == "highpass"
    fs = F.extract(highpass_ckpt, eval_data, "test", layer=layer, limit=N, cache_dir=tmp_path, progress=False)
    assert close(fs.features, expected(highpass_ckpt, eval_data, layer, meta_t, fs.indices))
    assert not close(fs.features, expected(highpass_ckpt, eval_data, layer, None, fs.indices))


@pytest.mark.parametrize("layer", sorted(F.LAYERS))
def test_a_checkpoint_of_plain_images_gets_plain_images(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                                        layer: str) -> None:
    fs = F.extract(tiny_ckpt, eval_data, "test", layer=layer, limit=N, cache_dir=tmp_path, progress=False)
    assert close(fs.features, expected(tiny_ckpt, eval_data, layer, None, fs.indices))


@pytest.mark.parametrize("name", sorted(INPUT_TRANSFORMS))
def test_every_registered_transform_reaches_the_features(tiny_ckpt: Path, eval_data: Path, tmp_path: Path,
                                                         name: str) -> None:
    """The same weights declaring a transform: other features (a new checkpoint hash, so a new
    cache entry), those of the transformed images."""
    ckpt = with_transform(tiny_ckpt, tmp_path / "t.pt", name)
    plain = F.extract(tiny_ckpt, eval_data, "test", limit=N, cache_dir=tmp_path, progress=False)
    fs = F.extract(ckpt, eval_data, "test", limit=N, cache_dir=tmp_path, progress=False)
    assert fs.key != plain.key and not fs.cached
    t = InputTransform(name, transform_params(name))
    assert close(fs.features, expected(tiny_ckpt, eval_data, "pool", t, fs.indices))
    assert not close(fs.features, plain.features)
