"""Feature extraction and its content-hashed cache (measure.features)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from measure import features as F
from pretrain.checkpoint import CheckpointError, load_backbone
from synthetic.generate import generate
from imagedata.formats import open_source


def test_features_match_the_backbone_and_are_extracted_once(tiny_ckpt: Path, eval_data: Path,
                                                            tmp_path: Path) -> None:
    before = dict(F.STATS)
    fs = F.extract(tiny_ckpt, eval_data, "train", cache_dir=tmp_path, batch_size=32, progress=False)
    batches = F.STATS["forward_batches"] - before["forward_batches"]
    src = open_source(eval_data, split="train")
    assert fs.features.shape == (len(src), load_backbone(tiny_ckpt)[0].num_features)
    assert batches == -(-len(src) // 32) and not fs.cached
    model, meta = load_backbone(tiny_ckpt)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (meta.data.mean, meta.data.std))
    with torch.no_grad():
        ref = model((src.read(np.arange(5)).float() / 255 - mean) / std).numpy()
    np.testing.assert_allclose(fs.features[:5], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(fs.targets, src.targets)

    again = F.extract(tiny_ckpt, eval_data, "train", cache_dir=tmp_path, batch_size=32, progress=False)
    assert again.cached and F.STATS["forward_batches"] - before["forward_batches"] == batches   # no new forward
    np.testing.assert_array_equal(again.features, fs.features)
    other = F.extract(tiny_ckpt, eval_data, "test", cache_dir=tmp_path, batch_size=32, progress=False)
    assert other.key != fs.key and not other.cached


def test_cache_key_follows_checkpoint_content_not_its_path(tiny_ckpt: Path, eval_data: Path, tmp_path: Path) -> None:
    fs = F.extract(tiny_ckpt, eval_data, "test", cache_dir=tmp_path / "c", progress=False)
    copy = tmp_path / "copy.pt"
    shutil.copy(tiny_ckpt, copy)
    assert F.extract(copy, eval_data, "test", cache_dir=tmp_path / "c", progress=False).cached
    other_data = generate("shapes64", 40, 1, tmp_path / "other", size=32, workers=1, progress=False)
    assert F.extract(tiny_ckpt, other_data, "test", cache_dir=tmp_path / "c", progress=False).key != fs.key


def test_corrupt_cache_entry_is_recomputed(tiny_ckpt: Path, eval_data: Path, tmp_path: Path) -> None:
    fs = F.extract(tiny_ckpt, eval_data, "test", cache_dir=tmp_path, progress=False)
    path = tmp_path / f"{fs.key}.npz"
    path.write_bytes(path.read_bytes()[:100])
    again = F.extract(tiny_ckpt, eval_data, "test", cache_dir=tmp_path, progress=False)
    assert not again.cached
    np.testing.assert_array_equal(again.features, fs.features)
    assert F.extract(tiny_ckpt, eval_data, "test", cache_dir=tmp_path, progress=False).cached


def test_bad_inputs_fail_with_one_clear_line(tiny_ckpt: Path, eval_data: Path, tmp_path: Path, make_ckpt) -> None:
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not an sslbench checkpoint"):
        F.extract(foreign, eval_data, "test", cache_dir=tmp_path, progress=False)
    with pytest.raises(F.FeatureError, match="unknown layer"):
        F.extract(tiny_ckpt, eval_data, "test", layer="nope", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="no images in split"):
        F.extract(tiny_ckpt, eval_data, "nosuchsplit", cache_dir=tmp_path)
    resnet = make_ckpt("random", eval_data, tmp_path / "runs", **{"backbone.name": "resnet18"})
    small = generate("shapes64", 8, 0, tmp_path / "tiny16", size=16, workers=1, progress=False)
    with pytest.raises(F.FeatureError, match="needs at least 32 px"):
        F.extract(resnet, small, "all", cache_dir=tmp_path, progress=False)
    gray = tmp_path / "gray.pt"
    ckpt = torch.load(tiny_ckpt, weights_only=True)
    ckpt["data"].update(mean=[0.5], std=[0.25])                   # as if trained on 1-channel images
    torch.save(ckpt, gray)
    with pytest.raises(F.FeatureError, match="trained on 1-channel data, .* has 3-channel RGB images"):
        F.extract(gray, eval_data, "test", cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob(".*.npz"))                      # no temporary file left behind


def test_dense_layer_is_the_stage_pyramid_and_survives_the_cache(tiny_ckpt: Path, eval_data: Path,
                                                                 tmp_path: Path, make_ckpt) -> None:
    ckpt = make_ckpt("simclr", eval_data, tmp_path / "runs", **{"backbone.name": "resnet9"})
    fs = F.extract(ckpt, eval_data, "test", layer="dense", cache_dir=tmp_path / "c", progress=False)
    model, meta = load_backbone(ckpt)
    src = open_source(eval_data, split="test")
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (meta.data.mean, meta.data.std))
    with torch.no_grad():
        ref = model.forward_stages((src.read(np.arange(3)).float() / 255 - mean) / std)[2:]   # strides 4 and 8
    assert fs.shapes.tolist() == [list(r.shape[1:]) for r in ref]
    again = F.extract(ckpt, eval_data, "test", layer="dense", cache_dir=tmp_path / "c", progress=False)
    assert again.cached and again.shapes.tolist() == fs.shapes.tolist()
    for got, want in zip(F.dense_maps(again), ref):
        torch.testing.assert_close(got[:3], want, rtol=2e-2, atol=2e-2)      # stored as float16
    tiny = F.extract(tiny_ckpt, eval_data, "test", layer="dense", cache_dir=tmp_path / "c", progress=False)
    assert len(F.dense_maps(tiny)) == 1                                   # strides 1 and 2 only: the last stage
    with pytest.raises(F.FeatureError, match="no map shapes"):
        F.dense_maps(F.extract(tiny_ckpt, eval_data, "test", cache_dir=tmp_path / "c", progress=False))
