"""The invariance tasks of the suite, registered in :mod:`measure.tasks` (on request only).

- ``invariance``: the firing-rate score on every synthetic probe set (Purushwalkam & Gupta,
  NeurIPS 2020); one stored evaluation per probe set, whose name is the rows' dataset;
- ``transform_invariance``: the whitened-feature cosine to every transform and strength
  (Ericsson et al., 2021) on the suite's dataset.

Both measure data of their own (generated probe sets, transformed copies of the test split), so
they are records with ``jobs`` (see :mod:`invariance.run`) and are not run by default.
"""
from __future__ import annotations

from measure.context import Context
from measure.tasks import Job, Task, register

from .run import InvarianceConfig, invariance_jobs


def _config(ctx: Context, probes: bool) -> InvarianceConfig:
    """The measure's settings from the suite's (``invariance_sets``, ``probe_dir``, ``transform_images``)."""
    base, cfg = InvarianceConfig(), ctx.cfg
    return InvarianceConfig(probes=base.probes if probes else (), transforms=() if probes else base.transforms,
                            probe_sets=cfg.invariance_sets, probe_dir=cfg.probe_dir,
                            transform_images=cfg.transform_images, transform_split=cfg.test_split,
                            image_size=cfg.image_size, cache_dir=cfg.cache_dir, device=cfg.device)


def probe_jobs(ctx: Context) -> list[Job]:
    """Firing-rate invariance score on every synthetic probe set (top10, top25, sets used / skipped)."""
    return invariance_jobs(ctx.ckpt, _config(ctx, probes=True), ctx.data, ctx.meta)


def transform_jobs(ctx: Context) -> list[Job]:
    """Whitened-feature cosine invariance to every transform and strength on the test split."""
    return invariance_jobs(ctx.ckpt, _config(ctx, probes=False), ctx.data, ctx.meta)


register(
    Task("invariance", jobs=probe_jobs, default=False),
    Task("transform_invariance", jobs=transform_jobs, default=False),
)
