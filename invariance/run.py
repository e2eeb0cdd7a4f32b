"""Invariance of a checkpoint's representation, into the results store.

Two measures:

- ``invariance`` (Purushwalkam & Gupta, NeurIPS 2020): the firing-rate score
  (``invariance.firing``) of the global-pooled backbone output (the paper's layer; ``layer``
  otherwise) on probe sets: the synthetic ones (``synthetic`` presets ``probe-<kind>``, generated
  once into ``probe_dir`` and reused) and the real benchmarks in their own layouts
  (``imagedata.benchmarks``: GOT-10k, ALOI, PASCAL3D+). Rows: task ``invariance``, dataset = the
  probe set (``probe-occlusion``, ``got10k-occlusion``, ...), metrics ``top10``, ``top25``,
  ``sets_used``, ``sets_skipped``.
- ``transform_invariance`` (Ericsson et al., 2021): the whitened-feature cosine between clean and
  transformed images (``invariance.transforms``) of a dataset's test split, per transform and
  strength. Rows: task ``transform_invariance``, dataset = that dataset, metric ``<transform>@<s>``.

Features are extracted once and cached (``measure.features``); an evaluation already stored for
the same checkpoint hash, probe set and settings is not rerun unless ``force``.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsio import file_sha256
from imagedata.benchmarks import load_benchmark
from imagedata.probeset import ProbeSet
from measure import features as F
from measure.results import ResultsStore
from measure.tasks import Job, Row, store_jobs
from pretrain.checkpoint import CheckpointMeta, load_backbone, read_meta
from pretrain.resolve import recorded_config
from synthetic.presets import PROBES

from .firing import invariance_score
from .transforms import TRANSFORMS, transform_invariance

log = logging.getLogger("invariance")
VERSION = 2          # stored with every row: a changed protocol never reuses stored numbers (2: tied units)


@dataclass
class InvarianceConfig:
    """What to measure. ``probes``: synthetic probe kinds (``synthetic.presets.PROBES``);
    ``probe_sets`` sets of each, generated with ``probe_seed`` under ``probe_dir``;
    ``benchmarks``: real benchmark name -> root folder; ``transforms`` / ``strengths``: the second
    measure on the first ``transform_images`` test images of ``transform_data`` (default: the
    checkpoint's own dataset); empty ``transforms`` skips it."""

    probes: tuple[str, ...] = PROBES
    probe_sets: int = 100
    probe_seed: int = 0
    probe_dir: str = "data/probes"
    benchmarks: dict[str, str] = field(default_factory=dict)
    layer: str = "pool"
    min_set_size: int = 3
    transforms: tuple[str, ...] = tuple(TRANSFORMS)
    strengths: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    transform_data: str | None = None
    transform_split: str = "test"
    transform_images: int = 2000
    image_size: int | None = None        # real benchmarks: crop size (default: the checkpoint's training size)
    batch_size: int = 256
    cache_dir: str = str(F.DEFAULT_CACHE)
    device: str = "cpu"


def check_config(cfg: InvarianceConfig) -> None:
    """One clear ValueError for unknown probe kinds or transforms."""
    bad = [p for p in cfg.probes if p not in PROBES]
    if bad:
        raise ValueError(f"unknown probe {bad[0]!r}; valid: {', '.join(PROBES)}")
    bad = [t for t in cfg.transforms if t not in TRANSFORMS]
    if bad:
        raise ValueError(f"unknown transform {bad[0]!r}; valid: {', '.join(TRANSFORMS)}")
    if cfg.probe_sets < 1:
        raise ValueError(f"probe_sets {cfg.probe_sets}: expected a positive number of sets")


def probe_dataset(kind: str, sets: int, seed: int, root: Path | str) -> Path:
    """The synthetic probe set ``probe-<kind>`` of ``sets`` sets, generated once (then found up to date)."""
    from synthetic.generate import generate

    out = Path(root) / f"probe-{kind}-n{sets}-s{seed}"
    return generate(f"probe-{kind}", sets, seed, out, progress=False)


class _BenchmarkSource:
    """A real benchmark's crops as an ``measure.features`` image source, at ``size`` px."""

    def __init__(self, probe: ProbeSet, size: int) -> None:
        self.probe, self.image_size, self.targets = probe, size, probe.labels

    def __len__(self) -> int:
        return len(self.probe)

    def read(self, idx: np.ndarray) -> torch.Tensor:
        return self.probe.read(idx, self.image_size)

    def fingerprint(self) -> str:
        h = hashlib.sha256(f"{self.probe.name}|{self.image_size}".encode())
        for p in self.probe.images or []:
            st = Path(p).stat()
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        if self.probe.boxes is not None:
            h.update(np.ascontiguousarray(self.probe.boxes).tobytes())
        h.update(np.ascontiguousarray(self.probe.set_ids).tobytes())
        return f"bench-{h.hexdigest()[:16]}"


def _probe_inputs(ckpt: Path, name: str, cfg: InvarianceConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(features (N, D), set_ids (N,), labels (N,)) of one probe set (synthetic kind or benchmark)."""
    if name in cfg.benchmarks:
        probe = load_benchmark(name, cfg.benchmarks[name])
        size = cfg.image_size or int(read_meta(ckpt).data.image_size)
        src = _BenchmarkSource(probe, size)
        fs = F.extract_source(ckpt, src, src.fingerprint(), "all", layer=cfg.layer, cache_dir=cfg.cache_dir,
                              batch_size=cfg.batch_size, device=cfg.device, name=name)
        return fs.features, probe.set_ids, probe.labels
    data = probe_dataset(name, cfg.probe_sets, cfg.probe_seed, cfg.probe_dir)
    fs = F.extract(ckpt, data, "all", layer=cfg.layer, cache_dir=cfg.cache_dir, batch_size=cfg.batch_size,
                   device=cfg.device)
    from synthetic.dataset import open_dataset

    labels = open_dataset(data).labels
    return fs.features, labels["set_id"].to_numpy(), labels["class"].to_numpy()


def probe_config(name: str, cfg: InvarianceConfig) -> dict[str, Any]:
    """The settings a probe set's numbers depend on (stored as the eval config)."""
    out: dict[str, Any] = {"task": "invariance", "version": VERSION, "layer": cfg.layer,
                           "min_set_size": cfg.min_set_size}
    if name in cfg.benchmarks:
        out.update(benchmark=name, root=str(Path(cfg.benchmarks[name]).resolve()), image_size=cfg.image_size)
    else:
        out.update(probe=name, sets=cfg.probe_sets, seed=cfg.probe_seed)
    return out


def probe_rows(ckpt: Path, name: str, cfg: InvarianceConfig) -> dict[str, float]:
    """The firing-rate score of one probe set: top10, top25, sets used and skipped, and the units
    scored by ties (``tied_units``, of ``units``: their firing threshold is their minimum)."""
    feats, set_ids, labels = _probe_inputs(ckpt, name, cfg)
    res = invariance_score(feats, set_ids, labels, min_set_size=cfg.min_set_size)
    if res["sets_skipped"]:
        log.info("%s: %d sets with fewer than %d images skipped", name, res["sets_skipped"], cfg.min_set_size)
    if res["tied_units"]:
        log.info("%s: %d of %d units have their minimum as firing threshold (scored by ties)", name,
                 res["tied_units"], feats.shape[1])
    return {"top10": res["top10"], "top25": res["top25"], "sets_used": float(res["sets_used"]),
            "sets_skipped": float(res["sets_skipped"]), "tied_units": float(res["tied_units"]),
            "units": float(feats.shape[1])}


def transform_config(cfg: InvarianceConfig, data: Path) -> dict[str, Any]:
    return {"task": "transform_invariance", "version": VERSION, "transforms": list(cfg.transforms),
            "strengths": list(cfg.strengths), "split": cfg.transform_split, "images": cfg.transform_images,
            "draw": "stratified-s0",
            "data": data.name}


def transform_rows(ckpt: Path, data: Path, cfg: InvarianceConfig) -> dict[str, float]:
    """Whitened-feature cosine invariance of the backbone to every transform and strength."""
    from imagedata.formats import open_source

    from imagedata.subsets import stratified_subset

    source = open_source(data, image_size=cfg.image_size, split=cfg.transform_split)
    images = source.read(stratified_subset(np.asarray(source.targets), cfg.transform_images, seed=0)).float().div_(255)
    model, meta = load_backbone(ckpt, device=cfg.device)
    mean = torch.tensor(meta.data.mean, device=cfg.device).view(1, 3, 1, 1)
    std = torch.tensor(meta.data.std, device=cfg.device).view(1, 3, 1, 1)

    def encode(x: torch.Tensor) -> torch.Tensor:
        return F.LAYERS["pool"](model, (x.to(cfg.device) - mean) / std).flatten(1).float().cpu()

    res = transform_invariance(encode, images, cfg.transforms, cfg.strengths, batch_size=cfg.batch_size,
                               progress=True)
    return {f"{t}@{s:g}": v for t, by_s in res.items() for s, v in by_s.items()}


def _rows(values: dict[str, float]) -> list[Row]:
    return [(m, float(v), "all", None) for m, v in values.items()]


def invariance_jobs(ckpt: Path, cfg: InvarianceConfig, data: Path | str | None = None,
                    meta: CheckpointMeta | None = None) -> list[Job]:
    """One stored evaluation per probe set (task ``invariance``, dataset = the probe set) and one
    for the transform measure (task ``transform_invariance``, dataset = ``data``'s name)."""
    check_config(cfg)
    meta = meta or read_meta(ckpt)
    jobs: list[Job] = []
    for name in [*cfg.probes, *cfg.benchmarks]:
        dataset = name if name in cfg.benchmarks else f"probe-{name}"
        jobs.append(Job("invariance", dataset, probe_config(name, cfg),
                        lambda n=name: _rows(probe_rows(ckpt, n, cfg))))
    if cfg.transforms:
        tdata = Path(cfg.transform_data or data or meta.data.path or "")
        if not tdata.exists():
            raise FileNotFoundError(f"{tdata}: dataset for the transform measure not found (pass --data)")
        jobs.append(Job("transform_invariance", tdata.name, transform_config(cfg, tdata),
                        lambda: _rows(transform_rows(ckpt, tdata, cfg))))
    return jobs


def evaluate(ckpt: Path | str, cfg: InvarianceConfig, store: ResultsStore, *, force: bool = False,
             data: Path | str | None = None) -> list[dict[str, Any]]:
    """Every probe set (and the transform measure) of ``cfg`` for one checkpoint, into ``store``;
    returns a summary row per stored value (status ``new`` or ``stored``)."""
    check_config(cfg)
    ckpt = Path(ckpt)
    meta = read_meta(ckpt)
    sha, run_id = file_sha256(ckpt), meta.run_id or ckpt.parent.name
    if meta.config:                      # how it was pretrained, for the reports' variants
        store.record_run(run_id, sha, recorded_config(meta))
    return store_jobs(invariance_jobs(ckpt, cfg, data, meta), store, run_id, sha, force)


def config_dict(cfg: InvarianceConfig) -> dict[str, Any]:
    return asdict(cfg)
