"""``python -m invariance ckpt.pt [ckpt2.pt | runs/] [--probes occlusion,viewpoint,...]
[--benchmark got10k-occlusion=ROOT ...] [--transforms all|none|rotation,blur,...] [--store DB]``

Measures the firing-rate invariance score on the synthetic probe sets (and on the real benchmarks
given with ``--benchmark``) and the transform invariance, for every checkpoint, into the results
store; prints one line per value. See ``invariance.run``.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from imagedata.benchmarks import BENCHMARKS
from imagedata.probeset import LayoutError
from measure.checkpoints import add_import_args, find_checkpoints, import_options
from measure.features import FeatureError
from measure.results import ResultsStore
from pretrain.checkpoint import CheckpointError
from synthetic.dataset import DatasetError
from synthetic.presets import PROBES

from .firing import InvarianceError
from .run import InvarianceConfig, evaluate
from .transforms import TRANSFORMS

DEFAULT_STORE = Path("results/results.sqlite")


def _names(text: str, valid: tuple[str, ...], what: str) -> tuple[str, ...]:
    if text in ("all", ""):
        return valid if text == "all" else ()
    if text == "none":
        return ()
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in valid]
    if bad:
        raise ValueError(f"unknown {what} {bad[0]!r}; valid: {', '.join(valid)}")
    return names


def _benchmarks(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, root = item.partition("=")
        if not sep or name not in BENCHMARKS:
            raise ValueError(f"--benchmark {item!r}: expected NAME=ROOT with NAME one of {', '.join(BENCHMARKS)}")
        out[name] = root
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m invariance", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="+", help="checkpoint files or folders of runs")
    ap.add_argument("--probes", default="all", help=f"synthetic probe kinds, 'all' or 'none' ({', '.join(PROBES)})")
    ap.add_argument("--sets", type=int, default=100, help="sets per synthetic probe")
    ap.add_argument("--probe-seed", type=int, default=0)
    ap.add_argument("--probe-dir", default="data/probes", help="where the synthetic probe sets are generated")
    ap.add_argument("--benchmark", action="append", default=[], metavar="NAME=ROOT",
                    help=f"a real benchmark in its own layout ({', '.join(BENCHMARKS)}); repeatable")
    ap.add_argument("--transforms", default="all", help="transforms of the second measure, 'all' or 'none'")
    ap.add_argument("--strengths", default="0.25,0.5,0.75,1", help="transform strengths in [0, 1]")
    ap.add_argument("--data", help="dataset of the transform measure (default: the checkpoint's own)")
    ap.add_argument("--images", type=int, default=2000, help="test images of the transform measure")
    ap.add_argument("--transform-split", default="test", help="split of the transform measure (ImageNet: val)")
    ap.add_argument("--layer", default="pool")
    ap.add_argument("--image-size", type=int, help="crop size for the real benchmarks (default: training size)")
    ap.add_argument("--store", type=Path, default=DEFAULT_STORE)
    ap.add_argument("--cache", help="feature cache folder")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--force", action="store_true", help="recompute values already in the store")
    add_import_args(ap)
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", datefmt="%H:%M:%S")
    try:
        cfg = InvarianceConfig(probes=_names(a.probes, PROBES, "probe"), probe_sets=a.sets, probe_seed=a.probe_seed,
                               probe_dir=a.probe_dir, benchmarks=_benchmarks(a.benchmark), layer=a.layer,
                               transforms=_names(a.transforms, tuple(TRANSFORMS), "transform"),
                               strengths=tuple(float(s) for s in a.strengths.split(",")),
                               transform_data=a.data, transform_images=a.images, image_size=a.image_size,
                               transform_split=a.transform_split,
                               device=a.device, **({"cache_dir": a.cache} if a.cache else {}))
        store = ResultsStore(a.store)
        for ckpt in find_checkpoints(a.ckpts, **import_options(a)):
            for row in evaluate(ckpt, cfg, store, force=a.force):
                if row["status"] == "new":
                    print(f"{row['run_id']}  {row['task']:<20} {row['dataset']:<28} {row['metric']:<16} "
                          f"{row['value']:.3f}")
                else:
                    print(f"{row['run_id']}  {row['task']:<20} {row['dataset']:<28} (stored)")
    except (ValueError, FileNotFoundError, CheckpointError, DatasetError, FeatureError, InvarianceError,
            LayoutError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
