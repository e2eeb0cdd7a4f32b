"""Saliency augmentation policies: segmentation, random / saliency-guided masking, branches,
hard negatives, the cache in training, and every policy with every method it applies to."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF

from pretrain import config as C
from pretrain.augment import masking as M
from pretrain import trainer as T
from pretrain.backbones import build_backbone
from pretrain.losses.contrastive import info_nce, nt_xent_with_negatives
from pretrain.augment import SALIENCY_POLICIES, build_policy
from pretrain.methods.base import MethodContext
from pretrain.methods.mocov2 import MoCoV2
from pretrain.views import RawBatch, Views
from imagedata.formats import open_source

TWO_VIEW_METHODS = ("simclr", "mocov2", "byol", "simsiam", "swav")
NEGATIVE_METHODS = ("simclr", "mocov2")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture(scope="module")
def scda_ckpt(shapes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scda")
    cfg = C.build_config("random", None, "test", {"data.path": str(shapes_dir), "train.out": str(out),
                                                  "train.tensorboard": False})
    return T.train(cfg, progress=False) / "ckpt.pt"


def settings(name: str, cache: Path, scda: Path) -> dict:
    """Test settings of a policy: HC saliency (fast) in a temporary cache, SCDA from ``scda``."""
    if name in ("sgd", "sgd-only"):
        return {"algo": "hc", "cache": str(cache)}
    if name.startswith("sal-mask"):
        return {"scda_checkpoint": str(scda), "grid": 4}
    return {"grid": 4}


def shapes_batch(shapes_dir: Path, n: int = 8) -> RawBatch:
    src = open_source(shapes_dir, split="all")
    idx = torch.arange(n)
    return RawBatch(images=src.read(idx.numpy()), targets=torch.zeros(n, dtype=torch.long), indices=idx)


# --------------------------------------------------------------------------------------------
# every policy


@pytest.mark.parametrize("name", SALIENCY_POLICIES)
def test_policy_views_and_determinism(name: str, shapes_dir: Path, scda_ckpt: Path, tmp_path: Path) -> None:
    batch = shapes_batch(shapes_dir)
    make = lambda: build_policy(name, **settings(name, tmp_path / "cache", scda_ckpt))  # noqa: E731
    a, b, c = make()(batch, gen(1)), make()(batch, gen(1)), make()(batch, gen(2))
    assert len(a.views) == 2 and all(v.shape == (8, 3, 32, 32) and torch.isfinite(v).all() for v in a.views)
    assert all(torch.equal(x, y) for x, y in zip(a.views, b.views))
    assert any(not torch.equal(x, y) for x, y in zip(a.views, c.views))
    assert a.masks is not None and len(a.masks) == 2
    assert (a.negatives is not None) == name.endswith("-hn")
    if a.negatives is not None:
        assert a.negatives.shape == (8, 1, 3, 32, 32)


# hard negatives apply to SimCLR and MoCo v2 only (the refusal for the others is tested below)
PAIRS = [(n, m) for n in SALIENCY_POLICIES for m in TWO_VIEW_METHODS if not n.endswith("-hn") or m in NEGATIVE_METHODS]


@pytest.mark.parametrize("name, method", PAIRS)
def test_policy_trains_with_method(name: str, method: str, shapes_dir: Path, scda_ckpt: Path, tmp_path: Path) -> None:
    aug_cfg = {f"aug_cfg.{k}": v for k, v in settings(name, tmp_path / "cache", scda_ckpt).items()}
    cfg = C.build_config(method, name, "test", {"data.path": str(shapes_dir), "train.out": str(tmp_path / "runs"),
                                                "train.tensorboard": False, "train.steps": 2, **aug_cfg})
    run_dir = T.train(cfg, progress=False)
    assert (run_dir / "ckpt.pt").is_file()
    losses = [line for line in (run_dir / "log.jsonl").read_text().splitlines() if '"loss"' in line]
    assert losses and all("NaN" not in line for line in losses)


def test_hard_negatives_refused_for_methods_without_them(shapes_dir: Path, scda_ckpt: Path, tmp_path: Path) -> None:
    cfg = C.build_config("byol", "sal-mask-hn", "test", {"data.path": str(shapes_dir), "train.out": str(tmp_path),
                                                          "aug_cfg.scda_checkpoint": str(scda_ckpt)})
    with pytest.raises(ValueError, match="hard negatives.*simclr"):
        T.train(cfg, progress=False)


@pytest.mark.parametrize("overrides, message", [
    ({"fill": "pink"}, "valid fills"), ({"branch": "middle"}, "valid: query"), ({"saliency": "magic"}, "valid: none"),
    ({"saliency": "none", "hard_negatives": 1}, "need saliency"), ({"scda_checkpoint": None}, "scda_checkpoint"),
])
def test_bad_mask_settings(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_policy("sal-mask", **overrides)


def test_missing_scda_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        build_policy("sal-mask", scda_checkpoint=str(tmp_path / "nope.pt"))


# --------------------------------------------------------------------------------------------
# segmentation


def test_sgd_only_pairs_are_never_two_copies_unless_asked(shapes_dir: Path, tmp_path: Path) -> None:
    """Without the pipeline, a pair drawn independently is two copies of one image whenever both
    views are kept or both segmented (about half); sgd-only segments exactly one of the two."""
    batch = shapes_batch(shapes_dir, 16)
    policy = build_policy("sgd-only", algo="hc", cache=str(tmp_path), fill="grey")
    has_fg = (policy.maps(batch.images, batch.indices) > 0.5).flatten(1).any(1)
    assert policy.config.distinct_pairs and has_fg.all()
    first_segmented = 0
    for seed in range(6):
        a, b = policy(batch, gen(seed)).views[:2]
        assert not (a == b).flatten(1).all(1).any()
        first_segmented += int((a != batch.images.float() / 255).flatten(1).any(1).sum())
    assert 0.3 < first_segmented / (6 * 16) < 0.7               # each view still segmented with p 0.5
    asked = build_policy("sgd-only", algo="hc", cache=str(tmp_path), fill="grey", distinct_pairs=False)
    same = sum(int((lambda v: (v[0] == v[1]).flatten(1).all(1).sum())(asked(batch, gen(s)).views)) for s in range(6))
    assert same > 0


@pytest.mark.parametrize("threshold", ["cut", "adaptive", "otsu", 0.4])
def test_sgd_only_with_p1_is_the_segmented_image(threshold, shapes_dir: Path, tmp_path: Path) -> None:
    batch = shapes_batch(shapes_dir)
    policy = build_policy("sgd-only", algo="hc", cache=str(tmp_path), seg_p=1.0, fill="grey", distinct_pairs=False,
                          threshold=threshold)
    out = policy(batch, gen())
    x = batch.images.float() / 255
    maps = policy.maps(batch.images, batch.indices)
    fg = maps > 0.5 if threshold == "cut" else M.adaptive_foreground(maps, threshold)
    expected = torch.where(fg.flatten(1).any(1).view(-1, 1, 1, 1), M.segment(x, fg, "grey", gen()), x)
    for v in out.views:
        torch.testing.assert_close(v, expected, atol=1e-5, rtol=0)
    assert (out.views[0] == 0.5).float().mean() > 0.3          # the background is gone


def test_sgd_with_p0_is_the_default_pipeline(shapes_dir: Path, tmp_path: Path) -> None:
    batch = shapes_batch(shapes_dir)
    sgd = build_policy("sgd", algo="hc", cache=str(tmp_path), seg_p=0.0)(batch, gen(5))
    # the same draws as the default policy, except one Bernoulli draw per view
    g = gen(5)
    default = build_policy("default")
    x = batch.images.float() / 255
    from pretrain.augment.ops import augment_view
    for i, cfg in enumerate(default.pipelines(32, 32)):
        torch.rand(8, generator=g)
        assert torch.equal(sgd.views[i], augment_view(x, cfg, g).image)


@pytest.mark.parametrize("fill", M.SEGMENT_FILLS)
def test_segment_keeps_foreground(fill: str) -> None:
    x = torch.rand(3, 3, 8, 8, generator=gen())
    fg = torch.zeros(3, 1, 8, 8, dtype=torch.bool)
    fg[:, :, 2:6, 2:6] = True
    y = M.segment(x, fg, fill, gen(9))
    assert torch.equal(y[:, :, 2:6, 2:6], x[:, :, 2:6, 2:6])
    assert not torch.equal(y, x)
    if fill == "swap":
        assert torch.equal(y[1, :, 0], x[0, :, 0])


def test_the_default_rule_is_saliency_cut_from_the_cache(shapes_dir: Path, tmp_path: Path) -> None:
    """threshold=cut (the default) reads the SaliencyCut masks of the HC maps from the cache, as
    ``hc-cut`` entries: what ``saliency_cut`` gives for each image, computed once."""
    from pretrain.saliency.global_contrast import hc
    from pretrain.saliency.masks import saliency_cut

    batch = shapes_batch(shapes_dir)
    policy = build_policy("sgd", algo="hc", cache=str(tmp_path))
    assert policy.config.threshold == "cut" and policy.maps.algo == "hc-cut"
    maps = policy.maps(batch.images, batch.indices)
    rgb = batch.images.permute(0, 2, 3, 1).numpy()
    expected = torch.from_numpy(__import__("numpy").stack([saliency_cut(i, hc(i)) for i in rgb]))
    assert torch.equal(maps[:, 0] > 0.5, expected)
    assert set(maps.unique().tolist()) <= {0.0, 1.0}
    assert any(p.name.startswith("hc-cut-") for p in tmp_path.iterdir())
    assert build_policy("sgd", algo="hc", cache=str(tmp_path)).maps(batch.images, batch.indices).equal(maps)


@pytest.mark.parametrize("bad, match", [({"threshold": "median"}, "unknown sgd threshold 'median'; valid: cut, "),
                                        ({"algo": "rc-cut"}, "unknown saliency algorithm 'rc-cut'; valid: hc, rc")])
def test_sgd_bad_rule_or_algorithm_is_one_line(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_policy("sgd", **bad)


def test_maps_come_from_the_cache_once(shapes_dir: Path, tmp_path: Path) -> None:
    batch = shapes_batch(shapes_dir)
    first = build_policy("sgd", algo="hc", cache=str(tmp_path), threshold="adaptive")
    first(batch, gen())
    assert first.maps._cache.stats["computed"] == 8
    first(batch, gen())                                      # memoised by dataset index
    assert first.maps._cache.stats["computed"] == 8 and first.maps._cache.stats["hits"] == 0
    second = build_policy("sgd", algo="hc", cache=str(tmp_path), threshold="adaptive")
    second(batch, gen())                                     # a new run reads the stored maps
    assert second.maps._cache.stats == {"hits": 8, "misses": 0, "computed": 0, "corrupt": 0}
    other = build_policy("sgd", algo="hc", cache=str(tmp_path), params={"delta": 0.5}, threshold="adaptive")
    other(batch, gen())                                      # another parameter misses
    assert other.maps._cache.stats["computed"] == 8


# --------------------------------------------------------------------------------------------
# masking


def test_saliency_guided_proportions_hold_statistically() -> None:
    """Over many draws: masked cells = int(r G^2), of which round(r fg_ratio G^2) foreground."""
    g, grid, n = gen(3), 7, 4000
    fg = torch.rand(n, grid, grid, generator=g) < torch.rand(n, 1, 1, generator=g).clamp(0.1, 0.9)
    cells = M.saliency_guided_cells(fg, (0.05, 0.25), g)
    masked = cells.flatten(1).sum(1).float()
    in_fg = (cells & fg).flatten(1).sum(1).float()
    n_fg = fg.flatten(1).sum(1).float()
    r = 0.05 + 0.2 * torch.rand(n, generator=gen(99))                # independent draws of the formula
    total = (r * 49).floor()
    assert abs(masked.mean() - total.mean()) < 0.1
    assert abs(in_fg.mean() - torch.minimum(torch.round(r * n_fg), total).mean()) < 0.1
    share = in_fg.sum() / masked.sum()                              # masked cells split like saliency
    assert abs(share - (n_fg * masked).sum() / 49 / masked.sum()) < 0.05
    assert ((in_fg <= n_fg) & (masked - in_fg <= 49 - n_fg)).all()


def test_random_cells_counts() -> None:
    cells = M.random_cells(2000, 7, (0.05, 0.25), gen(1))
    counts = cells.flatten(1).sum(1)
    assert counts.min() >= 2 and counts.max() <= 12                 # int(0.05*49) .. int(0.25*49)
    assert abs(cells.float().mean(0).std().item()) < 0.02         # uniform over the cells


def test_hard_negative_cells_mask_only_foreground() -> None:
    fg = torch.zeros(500, 7, 7, dtype=torch.bool)
    fg[:, 1:6, 1:6] = True                                         # 25 fg cells
    cells = M.hard_negative_cells(fg, (0.4, 0.7), gen(2))
    assert not (cells & ~fg).any()
    counts = cells.flatten(1).sum(1)
    assert counts.min() >= 10 and counts.max() <= 18               # round(r * 25), r in [0.4, 0.7]


@pytest.mark.parametrize("fill", ["mean", "blur"])
@pytest.mark.parametrize("branch", ["query", "key", "both"])
def test_masked_branch(branch: str, fill: str, shapes_dir: Path) -> None:
    batch = shapes_batch(shapes_dir)
    default = build_policy("default")(batch, gen(7))
    out = build_policy("random-mask", branch=branch, fill=fill, grid=4)(batch, gen(7))
    for i in (0, 1):
        masked = branch == "both" or (branch == "query") == (i == 0)
        assert torch.equal(out.views[i], default.views[i]) != masked
        assert (out.masks[i] is not None) == masked
        if masked:
            unmasked = out.masks[i] == 0
            assert torch.equal(out.views[i][unmasked.expand_as(out.views[i])],
                               default.views[i][unmasked.expand_as(out.views[i])])


def test_highpass_views_and_noise_fill() -> None:
    x = torch.rand(4, 3, 32, 32, generator=gen())
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    hp = M.high_pass(x, mean, std)
    z = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    zn = (hp - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    torch.testing.assert_close(zn, z - M.gaussian_blur_fixed(z, 11, 5.0))
    assert zn.mean().abs() < 0.05                                  # a high-pass image has ~zero mean
    pixels = torch.zeros(4, 1, 32, 32, dtype=torch.bool)
    pixels[:, :, :16] = True
    for noise_std in (0.18, 0.14, 1.0):                            # the authors' query / hard-negative std
        filled = M.fill_masked(hp, pixels, "highpass", gen(), mean, std, noise_std)
        noise = ((filled - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))[:, :, :16]
        assert abs(noise.std().item() / noise_std - 1) < 0.05 and abs(noise.mean().item()) < 0.05 * noise_std
        assert torch.equal(filled[:, :, 16:], hp[:, :, 16:])


def test_filters_match_the_authors_torchvision_transforms() -> None:
    """The authors' HighPassFilter is z - torchvision GaussianBlur((11, 11), 5)(z) on the
    normalised view (moco/loader.py), their blur fill GaussianBlur((31, 31), 10) of the view."""
    z = torch.randn(2, 3, 32, 32, generator=gen(6))
    torch.testing.assert_close(M.high_pass(z, torch.zeros(3), torch.ones(3)),
                               z - TF.gaussian_blur(z, [11, 11], [5.0, 5.0]), atol=1e-5, rtol=0)
    x = torch.rand(2, 3, 32, 32, generator=gen(7))
    everywhere = torch.ones(2, 1, 32, 32, dtype=torch.bool)
    torch.testing.assert_close(M.fill_masked(x, everywhere, "blur", gen(), torch.zeros(3), torch.ones(3)),
                               TF.gaussian_blur(x, [31, 31], [10.0, 10.0]), atol=1e-5, rtol=0)


def test_policy_noise_strength_in_views_and_hard_negatives(shapes_dir: Path, scda_ckpt: Path) -> None:
    """Masked cells hold N(0, 0.18^2) noise in the normalised high-pass space, hard negatives
    N(0, 0.14^2) (the authors' main_moco.py: noise_std 0.18 for q, 0.14 for the negatives)."""
    batch = shapes_batch(shapes_dir)
    policy = build_policy("sal-mask-hn", scda_checkpoint=str(scda_ckpt), grid=4, ratio=(0.5, 0.5))
    mean, std = torch.tensor([0.4, 0.5, 0.6]), torch.tensor([0.2, 0.25, 0.3])
    policy.bind(".", mean, std)
    out = policy(batch, gen(4))
    norm = lambda t: (t - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)  # noqa: E731
    masked = out.masks[0].bool().expand_as(out.views[0])
    assert masked.sum() > 1000
    assert abs(norm(out.views[0])[masked].std().item() / 0.18 - 1) < 0.1
    neg, key = out.negatives[:, 0], out.views[1]
    changed = (neg != key).all(1, keepdim=True).expand_as(neg)        # noise differs in every channel
    assert changed.sum() > 1000
    assert abs(norm(neg)[changed].std().item() / 0.14 - 1) < 0.1


def test_hard_negatives_are_masked_copies_of_the_key(shapes_dir: Path, scda_ckpt: Path) -> None:
    batch = shapes_batch(shapes_dir)
    out = build_policy("sal-mask-hn", scda_checkpoint=str(scda_ckpt), fill="mean", grid=4)(batch, gen(3))
    neg, key = out.negatives[:, 0], out.views[1]
    differs = (neg != key).any(1)                                   # (B, h, w) changed pixels
    assert differs.flatten(1).any(1).float().mean() > 0.5          # most images have a foreground to mask


# --------------------------------------------------------------------------------------------
# hard negatives in the losses


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_info_nce_hard_negative_logits(alpha: float) -> None:
    g = gen(4)
    q, k = F.normalize(torch.randn(5, 8, generator=g), dim=1), F.normalize(torch.randn(5, 8, generator=g), dim=1)
    queue = F.normalize(torch.randn(11, 8, generator=g), dim=1)
    t = F.normalize(torch.randn(5, 2, 8, generator=g), dim=-1)
    tau = 0.2
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ queue.T, alpha * torch.einsum("bd,bkd->bk", q, t)], 1) / tau
    expected = -(logits[:, 0] - logits.logsumexp(1)).mean()
    torch.testing.assert_close(info_nce(q, k, queue, tau, t, alpha), expected)
    assert info_nce(q, k, queue, tau, t, alpha) > info_nce(q, k, queue, tau)


def test_nt_xent_hard_negative_weight() -> None:
    g = gen(5)
    z1, z2, zn = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g), torch.randn(4, 3, 6, generator=g)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = F.normalize(zn, dim=-1).repeat(2, 1, 1)
    sim = z @ z.T / 0.5
    sim.fill_diagonal_(float("-inf"))
    logits = torch.cat([sim, 2.0 * torch.einsum("nd,nkd->nk", z, n) / 0.5], 1)
    target = torch.cat([torch.arange(4, 8), torch.arange(4)])
    torch.testing.assert_close(nt_xent_with_negatives(z1, z2, zn, 0.5, alpha=2.0), F.cross_entropy(logits, target))


# --------------------------------------------------------------------------------------------
# which encoder sees a masked view (MoCo v2 under one-sided masking)


def _fed(inputs: list[torch.Tensor], rows: torch.Tensor) -> bool:
    """Whether the encoder was fed ``rows`` (B, ...): True if every row is among its ``inputs``,
    False if none is (anything in between fails the test)."""
    seen = torch.cat([t.flatten(1) for t in inputs])
    found = (seen[:, None] == rows.flatten(1)[None]).all(-1).any(0)
    assert found.all() or not found.any(), "some images of a view reached the encoder, others not"
    return bool(found.all())


def moco_encoder_inputs(views: Views) -> tuple[MoCoV2, dict[str, list[torch.Tensor]]]:
    """A MoCo v2 with its default (symmetric) config after one training step on ``views``, and
    the inputs its query encoder and its key encoder received."""
    torch.manual_seed(0)
    ctx = MethodContext(mean=(0.5,) * 3, std=(0.25,) * 3, num_classes=4, dataset_size=96, image_size=32, total_steps=1)
    model = MoCoV2(build_backbone("tiny"), MoCoV2.Config(proj_hidden=32, proj_dim=16, queue_size=64), ctx)
    seen: dict[str, list[torch.Tensor]] = {"query": [], "key": []}
    model.backbone.register_forward_pre_hook(lambda m, a: seen["query"].append(a[0].detach().clone()))
    model.key_backbone.register_forward_pre_hook(lambda m, a: seen["key"].append(a[0].detach().clone()))
    loss, _ = model.loss(views)
    loss.backward()
    model.after_step(1.0)
    return model, seen


@pytest.mark.parametrize("fill", ["highpass", "mean"])
@pytest.mark.parametrize("branch", ["query", "key", "both"])
def test_moco_keeps_a_one_sided_mask_on_its_branch(branch: str, fill: str, shapes_dir: Path) -> None:
    """The masking paper's MoCo v2 (Chen et al., WACV 2024; the authors' moco/builder.py): with
    the query view masked the key encoder never encodes a masked view, with the key view masked
    the query encoder never does; masked on both sides, the (symmetric) loss feeds both views to
    both encoders."""
    out = build_policy("random-mask", branch=branch, fill=fill, grid=4, ratio=(0.25, 0.5))(shapes_batch(shapes_dir),
                                                                                           gen(7))
    assert out.masked == {"query": (0,), "key": (1,), "both": (0, 1)}[branch]
    assert all(out.masks[i] is not None and out.masks[i].flatten(1).sum(1).min() > 0 for i in out.masked)
    model, seen = moco_encoder_inputs(out)
    x = [model.normalize(v) for v in out.views]
    expected = {"query": {0, 1}, "key": {0, 1}} if branch == "both" else {"query": {0}, "key": {1}}
    for encoder, inputs in seen.items():
        assert {i for i in (0, 1) if _fed(inputs, x[i])} == expected[encoder], encoder
    assert MoCoV2.effective_settings({"symmetric": True}, out.masked) == {"symmetric": branch == "both"}


def test_moco_key_encoder_sees_only_the_hard_negatives_masked(shapes_dir: Path, scda_ckpt: Path) -> None:
    """With hard negatives the key encoder encodes the unmasked key view and the negatives (masked
    copies of it, as the authors' key encoder does), never the masked query."""
    out = build_policy("sal-mask-hn", scda_checkpoint=str(scda_ckpt), grid=4)(shapes_batch(shapes_dir), gen(3))
    model, seen = moco_encoder_inputs(out)
    x = [model.normalize(v) for v in out.views]
    assert _fed(seen["key"], x[1]) and _fed(seen["key"], model.normalize(out.negatives[:, 0]))
    assert not _fed(seen["key"], x[0]) and not _fed(seen["query"], x[1])
