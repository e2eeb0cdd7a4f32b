"""Saliency examples for the reports: maps, masks and the policies' views of the first images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pretrain.saliency.__main__ import main
from pretrain.saliency.examples import MASK_FILLS, saliency_examples
from reports import plots as P
from imagedata.formats import open_source


def test_examples_are_the_policies_views_of_the_first_images(shapes_dir: Path, tmp_path: Path) -> None:
    cols = saliency_examples(shapes_dir, n=3, cache=str(tmp_path / "c"))
    assert list(cols) == ["image", "HC", "RC", "RC mask", "sgd-only view", "sgd view", "random-mask",
                          *(f"sal-mask {f}" for f in MASK_FILLS)]
    first = open_source(shapes_dir, None, "train").read(np.arange(3)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(cols["image"], first)
    for name in ("HC", "RC"):
        assert cols[name].shape == (3, 32, 32) and 0 <= cols[name].min() and cols[name].max() <= 1
    from pretrain.saliency.masks import rc_cut
    rule = np.stack([rc_cut(img) > 0.5 for img in first])                     # sgd's default rule: SaliencyCut
    assert cols["RC mask"].dtype == bool and np.array_equal(cols["RC mask"], rule) and cols["RC mask"].any()
    for name in ("sgd-only view", "sgd view", "random-mask", *(f"sal-mask {f}" for f in MASK_FILLS)):
        assert cols[name].shape[0] == 3 and cols[name].shape[-1] == 3 and np.isfinite(cols[name]).all()
    # sgd-only: the object kept and the background black on the whole image; an image without a
    # salient region stays as it is
    has_object = cols["RC mask"].any(axis=(1, 2))[:, None, None, None]
    kept = np.where(cols["RC mask"][..., None] | ~has_object, first / 255.0, 0.0)
    np.testing.assert_allclose(cols["sgd-only view"], kept, atol=1e-6)
    assert not np.allclose(cols["sal-mask blur"], cols["sal-mask mean"])


def test_cli_writes_an_npz_the_report_renders(shapes_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ex.npz"
    args = ["examples", "--data", str(shapes_dir), "--out", str(out), "--n", "2", "--cache", str(tmp_path / "c"),
            "--quiet"]
    assert main(args) == 0
    with np.load(out) as z:
        columns = {k: z[k] for k in z.files}
    assert list(columns)[:3] == ["image", "HC", "RC"]
    assert all(p.stat().st_size > 0 for p in P.saliency_examples(columns, tmp_path / "fig"))


@pytest.mark.parametrize("args, message", [
    (["--data", "/nonexistent/data"], "no such dataset"),
    (["--n", "0"], "at least 1"),
])
def test_bad_input_is_one_line(args: list[str], message: str, shapes_dir: Path, tmp_path: Path, capsys) -> None:
    base = {"--data": str(shapes_dir), "--out": str(tmp_path / "ex.npz"), "--n": "2"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main(["examples", *[x for kv in base.items() for x in kv], "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "ex.npz").exists()
