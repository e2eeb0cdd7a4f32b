"""Contact sheets of a synthetic dataset (synthetic.show)."""
from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakes import write_fake_dataset
from synthetic import show
from synthetic.dataset import DatasetError, open_dataset

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def ds(tmp_path):
    """A 12-image fake dataset of 32 px images."""
    return open_dataset(write_fake_dataset(tmp_path / "ds", n=12, size=32, seed=0))


@pytest.mark.parametrize("masks", [False, True])
def test_contact_sheet_size_and_content(ds, tmp_path, masks):
    out = show.contact_sheet(ds, tmp_path / "sheets" / "sheet.png", n=7, cols=3, masks=masks)
    assert out == tmp_path / "sheets" / "sheet.png"
    assert [p.name for p in out.parent.iterdir()] == ["sheet.png"]  # no temporary file left
    image = Image.open(out)
    assert image.format == "PNG" and image.mode == "RGB"
    tile = 128  # 32 px images enlarged 4x
    caption = show.CAPTION_LINES * show.LINE
    assert image.size == (3 * (tile + show.PAD) + show.PAD, 3 * (tile + caption + show.PAD) + show.PAD)
    pixels = np.asarray(image)
    assert pixels.std() > 10 and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100
    first = pixels[show.PAD:show.PAD + tile, show.PAD:show.PAD + tile]
    index = int(show.pick_images(ds, 7)[0])
    enlarged = np.repeat(np.repeat(ds.images[index], 4, axis=0), 4, axis=1)
    assert np.array_equal(first, enlarged) != masks  # boxes drawn on top only with masks


def test_pick_images_is_spread_over_classes_and_seeded(ds):
    picked = show.pick_images(ds, 6, seed=3)
    assert len(set(picked.tolist())) == 6
    counts = Counter(ds.labels["class"].to_numpy()[picked])
    assert max(counts.values()) - min(counts.values()) <= 1 and len(counts) == 3
    assert np.array_equal(picked, show.pick_images(ds, 6, seed=3))
    assert sorted(show.pick_images(ds, 100).tolist()) == list(range(12))
    val = show.pick_images(ds, 100, split="val")
    assert set(ds.labels["split"].to_numpy()[val]) == {"val"}
    with pytest.raises(DatasetError, match="no images in split"):
        show.pick_images(ds, 4, split="holdout")


def test_caption_lists_class_pose_and_clip(ds):
    labels = ds.labels.copy()
    labels["azimuth"] = 33.6
    labels["elevation"] = -10.2
    ds.labels = labels
    row = labels.iloc[5]
    lines = show.caption(ds, 5)
    assert lines[0] == f"{ds.classes[row['class']]} i0"
    assert lines[1] == "az 34 el -10"
    assert lines[2] == f"#5 clip {row['clip']} f {row['frame']}"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthetic.show", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_cli_writes_sheet(ds, tmp_path):
    out = tmp_path / "sheet.png"
    result = run_cli(str(ds.root), "--out", str(out), "--n", "4", "--cols", "2", "--masks")
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (2 * (128 + show.PAD) + show.PAD,
                                    2 * (128 + show.CAPTION_LINES * show.LINE + show.PAD) + show.PAD)


@pytest.mark.parametrize("case", ["missing", "not_a_dataset", "bad_split", "bad_n"])
def test_cli_bad_input_is_one_line_and_status_2(tmp_path, case):
    root = tmp_path / "data"
    extra: list[str] = []
    if case == "not_a_dataset":
        root.mkdir()
    elif case in ("bad_split", "bad_n"):
        write_fake_dataset(root, n=3, size=8)
        extra = ["--split", "holdout"] if case == "bad_split" else ["--n", "0"]
    result = run_cli(str(root), "--out", str(tmp_path / "sheet.png"), *extra)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert not (tmp_path / "sheet.png").exists()
