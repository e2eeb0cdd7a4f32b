"""PIRL: Pretext-Invariant Representation Learning with a jigsaw transform and a memory bank."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..distributed import gather
from ..losses.pretext import pirl_nce
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """Misra & van der Maaten (CVPR 2020), sec. 3 / 4.1 defaults; the same values are used for small
    CPU runs except that num_negatives is capped at dataset_size - 1.

    dim: 128 (projection / memory-bank size); num_negatives: N = 32000 in the paper (ImageNet),
    4096 here (capped by the dataset size); temperature: 0.07; lam: lambda = 0.5 weights the
    jigsaw term against the image term (eq. 5); bank_momentum: 0.5 (m_I <- 0.5 m_I + 0.5 f(v_I));
    grid: 3 (3x3 jigsaw tiles); tile_size: side the tiles are resized to before the backbone
    (None: max(image_size // 2, backbone.min_image_size); the paper uses 64 px tiles of 224 px
    images).
    """

    dim: int = 128
    num_negatives: int = 4096
    temperature: float = 0.07
    lam: float = 0.5
    bank_momentum: float = 0.5
    grid: int = 3
    tile_size: int | None = None


def make_tiles(x: torch.Tensor, grid: int = 3) -> torch.Tensor:
    """(B, C, H, W) -> (B, grid*grid, C, s, s) tiles in row-major order, s = min(H, W) // grid
    (the centre grid*s square is used)."""
    b, c, h, w = x.shape
    s = min(h, w) // grid
    top, left = (h - grid * s) // 2, (w - grid * s) // 2
    x = x[:, :, top:top + grid * s, left:left + grid * s]
    x = x.reshape(b, c, grid, s, grid, s).permute(0, 2, 4, 1, 3, 5)   # (B, gy, gx, C, s, s)
    return x.reshape(b, grid * grid, c, s, s)


def assemble_tiles(tiles: torch.Tensor) -> torch.Tensor:
    """Inverse of ``make_tiles``: (B, g*g, C, s, s) -> (B, C, g*s, g*s)."""
    b, n, c, s, _ = tiles.shape
    g = round(n ** 0.5)
    return tiles.reshape(b, g, g, c, s, s).permute(0, 3, 1, 4, 2, 5).reshape(b, c, g * s, g * s)


def shuffle_tiles(tiles: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """tiles (B, n, ...), perm (B, n) int64: out[b, j] = tiles[b, perm[b, j]] (batched gather)."""
    return tiles[torch.arange(tiles.shape[0], device=tiles.device)[:, None], perm]


def random_permutations(b: int, n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(b, n) int64, an independent uniform permutation of range(n) per row."""
    return torch.rand(b, n, device=device).argsort(1)




class PIRL(Method):
    """PIRL (Misra & van der Maaten, "Self-Supervised Learning of Pretext-Invariant
    Representations", CVPR 2020) with the jigsaw transform.

    Image branch: views[0] (B, 3, H, W) -> backbone (B, F) -> f: linear to (B, 128).
    Jigsaw branch: views[1] -> 3x3 tiles shuffled by a random permutation per image -> each tile
    resized to tile_size and encoded by the same backbone (9B, F) -> per-tile linear (9B, 128) ->
    the 9 features concatenated in tile-position order of the shuffled image (B, 1152) -> g:
    linear to (B, 128) (VISSL's head: per-tile 2048->128, concat, 1152->128).
    Memory bank: ``memory`` (dataset_size, 128) of L2-normalised rows m_I, updated in
    ``after_step`` at ``views.indices`` as m_I <- normalise(0.5 m_I + 0.5 f(v_I)).
    Loss (eq. 5): lam * NCE(g(v_I^t), m_I) + (1 - lam) * NCE(f(v_I), m_I) with N negatives drawn
    uniformly from the bank (one set shared by the batch; a negative that is the anchor's own
    image is left out). When distributed, every process applies the rows of all processes, so
    the banks stay identical. The bank is only updated in training mode.
    """

    Config = Config
    needs = frozenset({"indices"})

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        nf = backbone.num_features
        self.image_head = nn.Linear(nf, cfg.dim)
        self.tile_head = nn.Linear(nf, cfg.dim)
        self.jigsaw_head = nn.Linear(cfg.grid ** 2 * cfg.dim, cfg.dim)
        self.tile_size = cfg.tile_size or max(ctx.image_size // 2, getattr(backbone, "min_image_size", 1))
        self.num_negatives = max(1, min(cfg.num_negatives, ctx.dataset_size - 1))
        self.register_buffer("memory", F.normalize(torch.randn(ctx.dataset_size, cfg.dim), dim=1))
        self._pending: list[tuple[torch.Tensor, torch.Tensor]] = []

    def jigsaw_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> g(v^t) (B, dim), tiles shuffled per image."""
        b, n = x.shape[0], self.cfg.grid ** 2
        tiles = shuffle_tiles(make_tiles(x, self.cfg.grid), random_permutations(b, n, x.device))
        tiles = tiles.flatten(0, 1)                                    # (B*n, 3, s, s)
        if tiles.shape[-1] != self.tile_size:
            tiles = F.interpolate(tiles, size=self.tile_size, mode="bilinear", align_corners=False)
        feats = self.tile_head(self.encode(tiles))                      # (B*n, dim)
        return self.jigsaw_head(feats.reshape(b, n * self.cfg.dim))

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        if views.indices is None:
            raise ValueError("PIRL needs views.indices (dataset indices) for its memory bank")
        idx = views.indices.to(self.memory.device).long()
        f = F.normalize(self.image_head(self.encode(views.views[0])), dim=1)
        g = F.normalize(self.jigsaw_features(views.views[1]), dim=1)
        neg_idx = torch.randperm(self.ctx.dataset_size, device=idx.device)[:self.num_negatives]
        positive, negatives = self.memory[idx], self.memory[neg_idx]          # copies (advanced indexing)
        exclude = idx[:, None] == neg_idx[None, :]
        t = self.cfg.temperature
        loss_jig = pirl_nce(g, positive, negatives, t, exclude)
        loss_img = pirl_nce(f, positive, negatives, t, exclude)
        loss = self.cfg.lam * loss_jig + (1 - self.cfg.lam) * loss_img
        if self.training:
            self._pending.append((idx, f.detach()))
        return loss, {"loss_jigsaw": loss_jig.item(), "loss_image": loss_img.item(),
                      "pos_sim": (f * positive).sum(1).mean().item()}

    @torch.no_grad()
    def update_memory(self, idx: torch.Tensor, feats: torch.Tensor) -> None:
        """m_I <- normalise(momentum m_I + (1 - momentum) f(v_I)) at the rows idx (B,)."""
        m = self.cfg.bank_momentum
        self.memory[idx] = F.normalize(m * self.memory[idx] + (1 - m) * feats.to(self.memory.dtype), dim=1)

    def after_step(self, progress: float) -> None:
        for idx, feats in self._pending:
            self.update_memory(gather(idx), gather(feats))
        self._pending.clear()
