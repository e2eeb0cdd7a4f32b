"""BatchLoader (order, shuffling, prefetching, errors) and the torch.utils.data adapter."""
from __future__ import annotations

import gc
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from fakes import write_fake_dataset
from image_layouts import SIZE, Built, as_hwc
from imagedata.loader import BatchLoader, as_torch_dataset
from imagedata.synthetic import SyntheticSource


# --------------------------------------------------------------------------------------------
# BatchLoader


class ListSource:
    """An in-memory source: image i is filled with i; optionally fails reading index ``fail``."""

    def __init__(self, n: int, fail: int | None = None) -> None:
        self.n, self.fail = n, fail
        self.targets = np.arange(n, dtype=np.int64) % 3
        self.classes = ["a", "b", "c"]
        self.image_size = 2

    def __len__(self) -> int:
        return self.n

    def read(self, indices: np.ndarray) -> torch.Tensor:
        if self.fail is not None and self.fail in indices:
            raise RuntimeError(f"cannot read {self.fail}")
        return torch.from_numpy(np.asarray(indices, dtype=np.uint8)).view(-1, 1, 1, 1).expand(-1, 3, 2, 2)


def epoch_indices(loader: BatchLoader) -> list[int]:
    out = []
    for images, targets, indices in loader:
        assert images.dtype == torch.uint8 and targets.dtype == indices.dtype == torch.int64
        assert (images[:, 0, 0, 0].long() == indices).all()
        assert (targets == indices % 3).all()
        out += indices.tolist()
    return out


def test_worker_processes_read_the_same_batches_in_order() -> None:
    """workers > 0: the plan's batches decoded in DataLoader worker processes, as the thread reads them."""
    thread = BatchLoader(ListSource(20), 4, seed=3, prefetch=2)
    workers = BatchLoader(ListSource(20), 4, seed=3, prefetch=2, workers=2)
    plan = thread.batches(1)
    for (a, ta, ia), (b, tb, ib) in zip(thread.iter_plan(plan), workers.iter_plan(plan), strict=True):
        assert torch.equal(a, b) and torch.equal(ta, tb) and torch.equal(ia, ib)
    with pytest.raises(RuntimeError, match="cannot read 5"):
        list(BatchLoader(ListSource(10, fail=5), 5, shuffle=False, workers=1))
    with pytest.raises(ValueError, match="prefetch and workers must be >= 0"):
        BatchLoader(ListSource(4), 2, workers=-1)


@pytest.mark.parametrize("prefetch", [0, 2])
def test_loader_covers_every_index_once(prefetch: int) -> None:
    loader = BatchLoader(ListSource(10), 3, drop_last=False, prefetch=prefetch)
    assert len(loader) == 4
    assert sorted(epoch_indices(loader)) == list(range(10))
    dropped = BatchLoader(ListSource(10), 3, drop_last=True, prefetch=prefetch)
    got = epoch_indices(dropped)
    assert len(dropped) == 3 and len(got) == 9 and len(set(got)) == 9
    ordered = BatchLoader(ListSource(10), 4, shuffle=False, drop_last=False, prefetch=prefetch)
    assert epoch_indices(ordered) == list(range(10))


def test_loader_shuffles_per_epoch_deterministically() -> None:
    a, b = (BatchLoader(ListSource(50), 7, seed=1, drop_last=False) for _ in range(2))
    first = epoch_indices(a)
    assert first == epoch_indices(b) == epoch_indices(a)  # same seed, same epoch
    a.set_epoch(1)
    second = epoch_indices(a)
    assert second != first and sorted(second) == sorted(first)
    b.set_epoch(1)
    assert epoch_indices(b) == second
    assert epoch_indices(BatchLoader(ListSource(50), 7, seed=2, drop_last=False)) != first
    assert first != sorted(first)


def test_loader_index_subset() -> None:
    loader = BatchLoader(ListSource(20), 4, drop_last=False, indices=np.arange(5, 15))
    assert len(loader) == 3 and sorted(epoch_indices(loader)) == list(range(5, 15))


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_loader_reraises_source_errors(prefetch: int) -> None:
    loader = BatchLoader(ListSource(12, fail=7), 4, shuffle=False, prefetch=prefetch)
    it = iter(loader)
    next(it)
    with pytest.raises(RuntimeError, match="cannot read 7"):
        next(it)
    assert not prefetch_threads()


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "sslbench-prefetch" and t.is_alive()]


def test_loader_thread_stops_when_dropped_or_done() -> None:
    loader = BatchLoader(ListSource(100), 2, prefetch=2)
    it = iter(loader)
    next(it)
    assert prefetch_threads()
    del it
    gc.collect()
    assert not prefetch_threads()
    list(loader)
    assert not prefetch_threads()


def test_loader_over_a_real_source(built: Built) -> None:
    loader = BatchLoader(built.source, 3, drop_last=False, seed=4)
    seen = []
    for images, targets, indices in loader:
        assert images.shape[1:] == (3, SIZE, SIZE)
        np.testing.assert_array_equal(targets.numpy(), built.targets[indices.numpy()])
        got = as_hwc(images).astype(int)
        assert np.abs(got - built.expected[indices.numpy()].astype(int)).max() <= built.tolerance
        seen += indices.tolist()
    assert sorted(seen) == list(range(len(built.source)))


def test_loader_argument_checks() -> None:
    with pytest.raises(ValueError):
        BatchLoader(ListSource(3), 0)
    with pytest.raises(IndexError):
        BatchLoader(ListSource(3), 1, indices=np.array([3]))
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="pin_memory"):
            BatchLoader(ListSource(3), 1, pin_memory=True)


def test_as_torch_dataset_with_dataloader(tmp_path: Path) -> None:
    src = SyntheticSource(write_fake_dataset(tmp_path / "s", n=6, size=SIZE))
    ds = as_torch_dataset(src)
    image, target = ds[4]
    assert image.shape == (3, SIZE, SIZE) and target == src.targets[4]
    dl = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=False)
    images, targets = next(iter(dl))
    assert images.shape == (4, 3, SIZE, SIZE) and images.dtype == torch.uint8
    np.testing.assert_array_equal(as_hwc(images), src.dataset.images[:4])
    np.testing.assert_array_equal(targets.numpy(), src.targets[:4])


@pytest.mark.timeout(120)
def test_worker_processes_decode_image_files(tmp_path: Path) -> None:
    """Files decode on a thread pool; a forked DataLoader worker makes its own (the parent's
    threads do not exist in the child)."""
    from imagedata.formats import open_source
    from imagedata.layouts import write_layouts
    write_layouts(tmp_path, ["imagenet"])
    src = open_source(tmp_path / "imagenet", 32, "train", cache=False)
    src.read(np.arange(4))                                   # the parent's pool exists before the fork
    thread = BatchLoader(src, 6, seed=1)
    workers = BatchLoader(src, 6, seed=1, workers=2)
    got = list(workers.iter_plan(thread.batches(0)))
    want = list(thread.iter_plan(thread.batches(0)))
    assert len(got) == len(want) == 4
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) for a, b in zip(got, want))
