"""``python -m pretrain.saliency precompute --data DIR --algo rc [--param seg_k=50 ...]``, ``stats``
and ``examples``.

``precompute`` fills the offline saliency cache (:mod:`pretrain.saliency.cache`) for every image of
one split of a dataset, computing only the maps that are missing or corrupt. The cache defaults to
``<DATA>/.saliency`` (beside a dataset file such as a COCO json), so a dataset carries its own
maps; entries are keyed by image content, so the splits of a dataset share one cache.
``stats`` prints, per algorithm folder of a cache, its parameters, entry count and size.
``examples --data DIR --out F.npz`` writes images, HC / RC maps, masks and policy views for
``python -m reports build --saliency F.npz`` (:mod:`pretrain.saliency.examples`).
``iou --data DIR`` scores the threshold rules of HC / RC maps against a synthetic dataset's
object masks (:mod:`pretrain.saliency.quality`): a Markdown table, and ``--json`` the rows.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .algos import ALGORITHMS
from .cache import default_cache_dir

log = logging.getLogger("pretrain.saliency")
CHUNK = 256


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["seg_k=50", "name=text"]`` -> ``{"seg_k": 50, "name": "text"}`` (values parsed as JSON if they can be)."""
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param {item!r}: expected name=value")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        out[name.strip()] = value
    return out


def read_images(source: Any, chunk: int = CHUNK) -> Iterator[np.ndarray]:
    """Every image of an ImageSource as uint8 ``(H, W, 3)``, read ``chunk`` at a time."""
    for start in range(0, len(source), chunk):
        batch = source.read(np.arange(start, min(start + chunk, len(source))))
        yield from batch.permute(0, 2, 3, 1).contiguous().numpy()


def precompute(args: argparse.Namespace) -> int:
    from .cache import SaliencyCache

    data = Path(args.data)
    if not data.exists():
        raise ValueError(f"{data}: no such dataset file or folder")
    cache_dir = Path(args.cache) if args.cache else default_cache_dir(data)
    cache = SaliencyCache(cache_dir, args.algo, parse_params(args.param))
    from imagedata.formats import open_source        # imports torch: after the cheap checks

    source = open_source(data, args.image_size, args.split)
    n = len(source)
    log.info("saliency %s %s: %d images of %s (split %s) -> %s", args.algo, cache.params, n, data, args.split,
             cache.folder)
    t0 = time.perf_counter()
    computed = cache.fill(read_images(source), workers=args.workers, progress=not args.quiet, total=n)
    s = cache.stats
    log.info("done in %.1fs: %d already cached, %d computed (%d corrupt entries repaired)",
             time.perf_counter() - t0, s["hits"], computed, s["corrupt"])
    return 0


def stats(args: argparse.Namespace) -> int:
    from .cache import cache_summary

    if not args.cache and not args.data:
        raise ValueError("pass --cache DIR or --data DIR")
    root = Path(args.cache) if args.cache else default_cache_dir(args.data)
    if not root.is_dir():
        raise ValueError(f"{root}: no such saliency cache folder")
    rows = cache_summary(root)
    for r in rows:
        print(f"{r['folder']}  algo={r['algo']}  params={json.dumps(r['params'], sort_keys=True)}  "
              f"entries={r['entries']}  size={r['bytes'] / 2**20:.2f} MiB")
    print(f"total: {sum(r['entries'] for r in rows)} entries, {sum(r['bytes'] for r in rows) / 2**20:.2f} MiB "
          f"in {root}")
    return 0


def examples(args: argparse.Namespace) -> int:
    from .examples import write_examples

    data = Path(args.data)
    if not data.exists():
        raise ValueError(f"{data}: no such dataset file or folder")
    out = write_examples(data, args.out, n=args.n, seed=args.seed, cache=args.cache, split=args.split,
                         image_size=args.image_size)
    log.info("saliency examples of the first images of %s -> %s", data, out)
    return 0


def iou(args: argparse.Namespace) -> int:
    from fsio import write_json_atomic

    from .cache import SaliencyCache
    from .quality import RULES, iou_rows, table

    data = Path(args.data)
    if not (data / "semantic.npy").exists():
        raise ValueError(f"{data}: not a synthetic dataset with object masks (semantic.npy)")
    algos, rules = args.algo.split(","), args.rules.split(",")
    bad = [r for r in rules if r not in RULES] + [a for a in algos if a not in ALGORITHMS]
    if bad:
        raise ValueError(f"unknown rule / algorithm {', '.join(bad)}; rules: {', '.join(RULES)}; "
                         f"algorithms: {', '.join(ALGORITHMS)}")
    from imagedata.synthetic import SyntheticSource   # imports torch: after the cheap checks

    source = SyntheticSource(data, args.split)
    n = min(args.limit or len(source), len(source))
    images = source.read(np.arange(n)).permute(0, 2, 3, 1).contiguous().numpy()
    truth = np.asarray(source.dataset.semantic[source.indices[:n]]) > 0     # every object's pixels
    cache_dir = Path(args.cache) if args.cache else default_cache_dir(data)
    maps = {a: SaliencyCache(cache_dir, a).get_many(images) for a in algos}
    rows = iou_rows(images, truth, maps, rules)
    print(f"{data} ({args.split}, first {n} images): salient-object masks vs the objects' masks")
    print(table(rows))
    if args.json:
        write_json_atomic(Path(args.json), {"data": str(data), "split": args.split, "images": n, "rows": rows})
    return 0


COMMANDS = {"precompute": precompute, "stats": stats, "examples": examples, "iou": iou}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m pretrain.saliency", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("precompute", help="fill the saliency cache of a dataset split")
    pre.add_argument("--data", required=True, help="dataset folder or file (as for python -m pretrain)")
    pre.add_argument("--algo", required=True, help=f"one of {', '.join(ALGORITHMS)}")
    pre.add_argument("--cache", default=None, help="cache folder (default: <DATA>/.saliency)")
    pre.add_argument("--split", default="train", help="dataset split (default: train; 'all' for every image)")
    pre.add_argument("--workers", type=int, default=2, help="processes computing maps (default: 2)")
    pre.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                     help="algorithm parameter (repeatable)")
    pre.add_argument("--image-size", type=int, default=None,
                     help="side of the decoded images (required for image files; as in training)")
    pre.add_argument("--quiet", action="store_true")
    st = sub.add_parser("stats", help="print the entries and size of a saliency cache")
    st.add_argument("--cache", default=None, help="cache folder")
    st.add_argument("--data", default=None, help="dataset whose default cache (<DATA>/.saliency) to inspect")
    st.add_argument("--quiet", action="store_true")
    ex = sub.add_parser("examples", help="write images, saliency maps and policy views as an npz for the reports")
    ex.add_argument("--data", required=True, help="dataset folder or file")
    ex.add_argument("--out", required=True, help="npz to write (python -m reports build --saliency OUT)")
    ex.add_argument("--n", type=int, default=6, help="number of images (default: 6, the first of the split)")
    ex.add_argument("--seed", type=int, default=0, help="seed of the policies' random choices (default: 0)")
    ex.add_argument("--cache", default=None, help="saliency cache folder (default: <DATA>/.saliency)")
    ex.add_argument("--split", default="train", help="dataset split (default: train)")
    ex.add_argument("--image-size", type=int, default=None,
                    help="side the images are read at (required for image files; default: a synthetic set's own)")
    ex.add_argument("--quiet", action="store_true")
    io = sub.add_parser("iou", help="IoU of HC / RC masks per threshold rule against a synthetic dataset's object masks")
    io.add_argument("--data", required=True, help="synthetic dataset folder (with semantic.npy)")
    io.add_argument("--algo", default="hc,rc", help="saliency algorithms, comma-separated (default: hc,rc)")
    io.add_argument("--rules", default="adaptive,otsu,cut", help="threshold rules (default: adaptive,otsu,cut)")
    io.add_argument("--split", default="train", help="dataset split (default: train)")
    io.add_argument("--limit", type=int, default=1000, help="first N images of the split (default 1000; 0: all)")
    io.add_argument("--cache", default=None, help="saliency cache folder (default: <DATA>/.saliency)")
    io.add_argument("--json", default=None, help="also write the rows to this JSON file")
    io.add_argument("--quiet", action="store_true")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    try:
        return COMMANDS[args.command](args)
    except (ValueError, OSError, KeyError, ImportError) as e:
        msg = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
        print(f"error: {msg.splitlines()[0] if msg else type(e).__name__}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
