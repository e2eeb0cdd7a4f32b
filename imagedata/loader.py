"""Batches of an image source: :class:`BatchLoader` and the ``torch.utils.data`` adapter.

:class:`BatchLoader` reads an :class:`imagedata.source.ImageSource` in (shuffled, prefetched)
batches on a background thread; :func:`as_torch_dataset` wraps a source for
``torch.utils.data.DataLoader`` (decoding in worker processes)::

    loader = BatchLoader(source, batch_size=256, seed=0)
    for epoch in range(10):
        loader.set_epoch(epoch)
        for images, targets, indices in loader:                 # uint8 (B,3,H,W), int64 (B,), int64 (B,)
            ...
"""
from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from imagedata.source import ImageSource, as_index_array

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


# --------------------------------------------------------------------------------------------
# Batching


class _Failure:
    """An exception raised in the prefetch thread, carried to the consumer."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


_END = object()


class BatchLoader:
    """Iterate an :class:`ImageSource` in batches, reading ahead on a background thread.

    Yields ``(images, targets, indices)``: uint8 ``(B, 3, H, W)``, int64 ``(B,)``, int64 ``(B,)``
    where ``indices`` are source indices. With ``shuffle`` the order is a permutation drawn from
    ``(seed, epoch)``: the same for the same seed and epoch, different across epochs; call
    :meth:`set_epoch` before each epoch (iterating does not advance it). ``indices`` restricts the
    loader to a subset of the source. ``prefetch`` batches are read ahead (0: read in the
    consumer's thread); an exception in the reader is re-raised by the iterator, and the reader
    stops when the iterator is exhausted, closed or dropped. ``pin_memory`` pins the images
    (ignored with a warning when no CUDA device is present). ``workers`` > 0 decodes the batches
    in that many ``torch.utils.data.DataLoader`` worker processes instead of the thread (each
    worker reads whole batches, in plan order; ``prefetch`` batches ahead per worker), the data path
    that keeps GPUs fed.
    """

    def __init__(self, source: ImageSource, batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = True, prefetch: int = 2, indices: np.ndarray | None = None,
                 pin_memory: bool = False, workers: int = 0) -> None:
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if prefetch < 0 or workers < 0:
            raise ValueError(f"prefetch and workers must be >= 0, got {prefetch}, {workers}")
        self.workers = int(workers)
        self.source = source
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.prefetch = int(prefetch)
        n = len(source)
        self.indices = np.arange(n, dtype=np.int64) if indices is None else as_index_array(indices, n)
        self.pin_memory = pin_memory and torch.cuda.is_available()
        if pin_memory and not self.pin_memory:
            warnings.warn("pin_memory=True but no CUDA device is available; not pinning", stacklevel=2)
        self.epoch = 0
        self._targets = torch.from_numpy(np.asarray(source.targets, dtype=np.int64))

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose shuffled order the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """Number of batches per epoch."""
        n = self.indices.size
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """int64 ``(M,)`` the source indices of ``epoch`` (default: the current one), in order."""
        if not self.shuffle:
            return self.indices
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        return self.indices[rng.permutation(self.indices.size)]

    def batches(self, epoch: int | None = None) -> list[np.ndarray]:
        """The index arrays of ``epoch``'s batches (``len(self)`` of them)."""
        order = self.order(epoch)
        return [order[s:s + self.batch_size] for s in range(0, len(self) * self.batch_size, self.batch_size)]

    def read_batch(self, idx: np.ndarray, pin: bool | None = None) -> Batch:
        """Read one batch of source indices ``idx`` (pinned if ``pin``, default ``pin_memory``)."""
        images = self.source.read(idx)
        if self.pin_memory if pin is None else pin:
            images = images.pin_memory()
        index = torch.from_numpy(idx)
        return images, self._targets[index], index

    def __iter__(self) -> Iterator[Batch]:
        return self.iter_plan(self.batches())

    def iter_plan(self, plan: Sequence[np.ndarray]) -> Iterator[Batch]:
        """Read the given batches of source indices in order (prefetched like ``__iter__``); used
        to resume mid-epoch and to read one process's share of a global batch."""
        if self.workers > 0:
            batches = _PlanBatches(self, list(plan))
            return iter(torch.utils.data.DataLoader(batches, batch_size=None, num_workers=self.workers,
                                                    pin_memory=self.pin_memory, prefetch_factor=max(1, self.prefetch)))
        if self.prefetch == 0:
            return (self.read_batch(idx) for idx in plan)
        return self._prefetched(list(plan))

    def _prefetched(self, plan: list[np.ndarray]) -> Iterator[Batch]:
        """Yield the batches of ``plan`` read by a background thread through a bounded queue."""
        q: queue.Queue[Any] = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()
        thread = threading.Thread(target=self._produce, args=(plan, q, stop), daemon=True,
                                  name="sslbench-prefetch")
        thread.start()
        try:
            while True:
                item = q.get()
                if item is _END:
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            stop.set()
            thread.join()

    def _produce(self, plan: list[np.ndarray], q: queue.Queue[Any], stop: threading.Event) -> None:
        """Prefetch thread: read the batches of ``plan`` into ``q`` until done or ``stop`` is set."""
        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    pass
            return False

        try:
            for idx in plan:
                if stop.is_set() or not put(self.read_batch(idx)):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(_Failure(e))
            return
        put(_END)


class _PlanBatches(torch.utils.data.Dataset):
    """The batches of a plan as a dataset of batches: item ``k`` is batch ``k`` read whole (unpinned:
    the DataLoader pins in the main process)."""

    def __init__(self, loader: BatchLoader, plan: list[np.ndarray]) -> None:
        self.loader, self.plan = loader, plan

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> Batch:
        return self.loader.read_batch(self.plan[k], pin=False)


# --------------------------------------------------------------------------------------------
# torch.utils.data


class SourceDataset(torch.utils.data.Dataset):
    """A map-style ``torch.utils.data.Dataset`` over an :class:`ImageSource`.

    ``dataset[i]`` is ``(uint8 (3, H, W), int target)``; ``__getitems__`` reads a whole batch with
    one ``source.read`` when a ``DataLoader`` asks for a batch of indices.
    """

    def __init__(self, source: ImageSource) -> None:
        self.source = source

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.source.read(np.asarray([index]))[0], int(self.source.targets[index])

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, int]]:
        images = self.source.read(np.asarray(indices, dtype=np.int64))
        return [(img, int(self.source.targets[i])) for img, i in zip(images, indices)]


def as_torch_dataset(source: ImageSource) -> SourceDataset:
    """Wrap ``source`` for ``torch.utils.data.DataLoader`` (use a batch sampler for speed)."""
    return SourceDataset(source)
