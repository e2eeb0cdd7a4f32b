"""Salient-object masks scored against object masks: IoU, the rules, the batched Otsu, the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pretrain.augment import masking as M
from pretrain.saliency.__main__ import main
from pretrain.saliency.masks import saliency_mask
from pretrain.saliency.quality import RULES, iou_rows, mask_iou, mean_ci, score_rule, table


def brute_iou(a: np.ndarray, b: np.ndarray) -> float:
    both = sum(1 for x, y in zip(a.ravel(), b.ravel()) if x and y)
    either = sum(1 for x, y in zip(a.ravel(), b.ravel()) if x or y)
    return 1.0 if either == 0 else both / either


@pytest.mark.parametrize("seed", range(4))
def test_mask_iou_is_the_brute_force_one(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.random((9, 7)) < 0.4, rng.random((9, 7)) < 0.6
    assert mask_iou(a, b) == pytest.approx(brute_iou(a, b))
    assert mask_iou(a, a) == 1.0 and mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 1.0


def test_mean_ci_is_196_standard_errors() -> None:
    mean, half = mean_ci([0.0, 1.0, 2.0, 3.0])
    assert mean == 1.5 and half == pytest.approx(1.96 * np.std([0, 1, 2, 3], ddof=1) / 2)
    assert mean_ci([0.4]) == (0.4, 0.0)


def square_scene(n: int = 3, side: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images of a red square on grey, a saliency map high on the square (plus noise), the truth."""
    rng = np.random.default_rng(0)
    images = np.full((n, side, side, 3), 128, np.uint8)
    truth = np.zeros((n, side, side), bool)
    for i in range(n):
        x0 = 6 + 3 * i
        truth[i, x0:x0 + 14, 8:22] = True
    images[truth] = (220, 30, 30)
    maps = np.clip(0.9 * truth + 0.05 * rng.random(truth.shape), 0, 1).astype(np.float32)
    return images, maps, truth


@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_finds_a_clear_object(rule: str) -> None:
    images, maps, truth = square_scene()
    row = score_rule(rule, images, maps, truth)
    assert row["rule"] == rule and row["n"] == 3 and row["iou"] > 0.8 and row["empty"] == 0.0
    assert row["fg_truth"] == pytest.approx(truth.mean())


def test_iou_rows_cover_every_algorithm_and_rule_and_render() -> None:
    images, maps, truth = square_scene()
    rows = iou_rows(images, truth, {"hc": maps, "rc": 1 - maps}, ("adaptive", "otsu"))
    assert [(r["algo"], r["rule"]) for r in rows] == [("hc", "adaptive"), ("hc", "otsu"), ("rc", "adaptive"),
                                                     ("rc", "otsu")]
    assert rows[0]["iou"] > 0.8 > rows[2]["iou"]               # the inverted map cuts the background
    assert table(rows).count("\n") == len(rows) + 1


def test_an_unknown_rule_is_refused() -> None:
    images, maps, truth = square_scene(1)
    with pytest.raises(ValueError, match="unknown threshold rule 'mean'; valid: adaptive, otsu, cut"):
        score_rule("mean", images, maps, truth)


@pytest.mark.parametrize("seed", range(5))
def test_batched_otsu_matches_opencv(seed: int) -> None:
    rng = np.random.default_rng(seed)
    maps = rng.beta(0.5 + seed, 2.0, size=(3, 20, 24)).astype(np.float32)
    got = M.otsu_foreground(torch.from_numpy(maps)[:, None])[:, 0].numpy()
    want = np.stack([saliency_mask(m, "otsu") for m in maps])
    assert np.array_equal(got, want)


def test_otsu_of_a_constant_map_is_empty_and_the_policy_threshold_takes_it() -> None:
    flat = torch.full((2, 1, 8, 8), 0.3)
    assert not M.otsu_foreground(flat).any()
    assert torch.equal(M.adaptive_foreground(flat, "otsu"), M.otsu_foreground(flat))
    with pytest.raises(ValueError, match="'adaptive', 'otsu' or a number"):
        M.adaptive_foreground(flat, "mean")


def test_cli_scores_a_synthetic_dataset(shapes_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "iou.json"
    assert main(["iou", "--data", str(shapes_dir), "--limit", "6", "--rules", "adaptive,otsu",
                 "--cache", str(tmp_path / "sal"), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| hc | adaptive | 6 |" in printed and "| rc | otsu | 6 |" in printed
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 4 and all(0 <= r["iou"] <= 1 and r["n"] == 6 for r in rows)


def test_cli_refuses_data_without_masks_and_unknown_rules(shapes_dir: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    assert main(["iou", "--data", str(tmp_path)]) == 2
    assert "not a synthetic dataset with object masks (semantic.npy)" in capsys.readouterr().err
    assert main(["iou", "--data", str(shapes_dir), "--rules", "adaptive,grabcut"]) == 2
    assert "unknown rule / algorithm grabcut" in capsys.readouterr().err
