"""VAE: a variational auto-encoder whose encoder is the backbone."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..losses.pretext import vae_loss
from ..views import Views
from .base import Method, MethodContext


@dataclass
class Config:
    """Kingma & Welling (ICLR 2014): latent 128 (the paper uses 2-200 on MNIST / Frey faces),
    beta 1 (the ELBO itself), Bernoulli decoder ("bce"; "mse" is a unit-variance Gaussian).
    decoder_width: channels of the last transposed-conv stage (doubling towards the start, at most
    512): 32 for small CPU runs and by default."""

    latent: int = 128
    beta: float = 1.0
    recon: str = "bce"
    decoder_width: int = 32


class Decoder(nn.Module):
    """z (B, K) -> logits (B, 3, S, S): linear to (C0, s0, s0), n transposed convs (4x4, stride 2,
    BN, ReLU) doubling the side, a 3x3 conv to 3 channels; bilinear resize if s0 * 2^n != S.
    s0 = ceil(S / 2^n) with n = floor(log2(S / 4)) (16 px: 4 -> 16; 224 px: 7 -> 224)."""

    def __init__(self, latent: int, size: int, width: int = 32) -> None:
        super().__init__()
        n = max(0, math.floor(math.log2(max(size, 4) / 4)))
        self.size, self.s0 = size, math.ceil(size / 2 ** n)
        chans = [min(512, width * 2 ** (n - i)) for i in range(n + 1)]   # n + 1 stage widths
        self.fc = nn.Linear(latent, chans[0] * self.s0 ** 2)
        ups: list[nn.Module] = []
        for a, b in itertools.pairwise(chans):
            ups += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(b),
                    nn.ReLU(inplace=True)]
        self.ups = nn.Sequential(*ups)
        self.out = nn.Conv2d(chans[-1], 3, 3, padding=1)
        self.c0 = chans[0]

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.fc(z)).view(z.shape[0], self.c0, self.s0, self.s0)
        x = self.out(self.ups(x))
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x


class VAE(Method):
    """Variational auto-encoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

    views[0] (B, 3, S, S) in [0, 1] -> backbone (B, F) -> linear (B, 2K) -> mu, logvar (B, K) ->
    z = mu + exp(logvar / 2) * eps (B, K) -> Decoder -> logits (B, 3, S', S') with S' =
    ctx.image_size (sigmoid gives the reconstruction). The target is views[0] resized to S' if it
    differs. Loss: reconstruction summed per image + beta * KL, averaged over the batch; logs both.
    """

    Config = Config

    def __init__(self, backbone: nn.Module, cfg: Config, ctx: MethodContext) -> None:
        super().__init__(backbone, cfg, ctx)
        self.to_latent = nn.Linear(backbone.num_features, 2 * cfg.latent)
        self.decoder = Decoder(cfg.latent, ctx.image_size, cfg.decoder_width)

    def reconstruct(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x (B, 3, H, W) in [0, 1] -> (logits (B, 3, S, S), mu, logvar (B, K))."""
        mu, logvar = self.to_latent(self.encode(x)).chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decoder(z), mu, logvar

    def loss(self, views: Views) -> tuple[torch.Tensor, dict[str, float]]:
        x = views.views[0]
        logits, mu, logvar = self.reconstruct(x)
        if x.shape[-2:] != logits.shape[-2:]:
            x = F.interpolate(x, size=logits.shape[-2:], mode="bilinear", align_corners=False)
        loss, rec, kl = vae_loss(logits, x.clamp(0, 1), mu, logvar, self.cfg.beta, self.cfg.recon)
        return loss, {"recon": rec.item(), "kl": kl.item()}
