"""The data layer: every image source the harness reads, as batched uint8 tensors.

Every dataset is an :class:`imagedata.source.ImageSource`: a fixed-length list of images with
integer targets whose ``read(indices)`` returns one uint8 batch ``(B, 3, H, W)`` (RGB, channels
first) in the order asked for. :func:`imagedata.formats.open_source` picks the right reader for a
path and :class:`imagedata.loader.BatchLoader` iterates a source in (shuffled, prefetched)
batches::

    from imagedata.formats import open_source
    from imagedata.loader import BatchLoader

    source = open_source("data/shapes-20k", split="train")      # folder with meta.json
    loader = BatchLoader(source, batch_size=256, seed=0)
    for epoch in range(10):
        loader.set_epoch(epoch)
        for images, targets, indices in loader:                 # uint8 (B,3,H,W), int64 (B,), int64 (B,)
            ...

Modules:

* :mod:`imagedata.source` - the :class:`ImageSource` protocol, index checking, the
  :class:`FileSource` base of the file-backed sources and the folder-listing helpers.
* :mod:`imagedata.decode` - PIL decoding on a shared thread pool, resizing, the decoded-pixel cache.
* One reader per source: :mod:`imagedata.synthetic` (our synthetic datasets, memory-mapped),
  :mod:`imagedata.imagefolder`, :mod:`imagedata.coco`, :mod:`imagedata.voc`,
  :mod:`imagedata.frames` (folders of video frames).
* :mod:`imagedata.formats` - format detection and :func:`open_source` over the ``READERS``
  registry.
* :mod:`imagedata.loader` - :class:`BatchLoader` and the ``torch.utils.data`` adapter.
* :mod:`imagedata.subsets` - class-stratified subsets (labelled subsets, validation splits).
* The invariance benchmarks as probe sets: :mod:`imagedata.probeset` (the :class:`ProbeSet` rows
  and shared layout helpers), :mod:`imagedata.got10k`, :mod:`imagedata.aloi`,
  :mod:`imagedata.pascal3d`, and :mod:`imagedata.benchmarks` (``BENCHMARKS``, :func:`load_benchmark`).

Adding a reader: write ``imagedata/<format>.py`` with a source class (usually a
:class:`imagedata.source.FileSource` subclass that sets ``classes`` and ``targets`` and calls
``_init_files``) and an ``open_<format>(path, image_size, split, *, cache, image_dir)`` function,
then add it to ``READERS`` in :mod:`imagedata.formats` (and to :func:`detect_format` if its layout
can be recognised). The parametrized tests over ``READERS`` then cover it once the tests can make
a small fixture in its layout. A new invariance benchmark is a ``load_<name>(root) -> ProbeSet``
function added to ``BENCHMARKS``.
"""
