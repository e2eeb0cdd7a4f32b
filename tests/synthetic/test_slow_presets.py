"""Heavier end-to-end checks of the synthetic benchmark at a realistic size (`make test-slow`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imagedata.formats import open_source
from imagedata.loader import BatchLoader
from synthetic.dataset import open_dataset
from synthetic.generate import generate
from synthetic.show import contact_sheet

pytestmark = pytest.mark.slow


def test_shapes64_at_scale_is_balanced_and_loads(tmp_path: Path) -> None:
    root = generate("shapes64", 4000, 0, tmp_path / "shapes64", workers=2, progress=False)
    ds = open_dataset(root)
    counts = ds.labels["class"].value_counts()
    assert len(counts) == 10 and counts.min() == counts.max() == 400
    assert ds.labels.groupby("class")["instance"].nunique().min() == 5
    assert set(ds.labels["pose_bin"]) == set(range(5))
    splits = ds.labels["split"].value_counts(normalize=True)
    assert abs(splits["train"] - 0.8) < 0.03
    src = open_source(root, split="train")
    seen = np.concatenate([idx.numpy() for _, _, idx in BatchLoader(src, 256, drop_last=False)])
    assert np.array_equal(np.sort(seen), np.arange(len(src)))
    sheet = contact_sheet(ds, tmp_path / "sheet.png", n=40)
    assert sheet.stat().st_size > 10_000


def test_scenes_exports_read_back_like_the_dataset(tmp_path: Path) -> None:
    root = generate("scenes", 120, 0, tmp_path / "scenes", workers=2, progress=False)
    ds = open_dataset(root)
    assert (root / "exports" / "coco").is_dir() and (root / "exports" / "voc").is_dir()
    voc = open_source(root / "exports" / "voc", image_size=ds.meta["image_size"], split="train")
    first = int(ds.split_indices("train")[0])
    masks = voc.read_masks(np.array([0])).numpy()[0]
    assert np.array_equal(masks, np.asarray(ds.semantic[first]))
    occluded = ds.objects["occluded_frac"]
    assert ((occluded > 0.1) & (ds.objects["area"] > 0)).mean() > 0.1
