"""Atomic writes: a file is either its old complete self or its new complete self, never half.

Every writer goes through :func:`atomic_path`: the content is written to a temporary file in the
destination's own folder (so the final ``os.replace`` is a rename on one file system), and only a
write that finished is renamed into place; a failed one leaves the old file untouched and removes
its temporary file.

    with atomic_path(out / "ckpt.pt") as tmp:     # any writer that takes a path
        torch.save(obj, tmp)
    write_text_atomic(out / "config.json", text)

Folders (a generated dataset, an export) are built in a staging folder beside their destination and
moved into place whole by :func:`replace_folder`.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: Path | str, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit rename it onto ``path``.

    ``suffix`` is the temporary file's ending, for writers that choose a format by it (``.npz``
    for ``np.savez``, ``.png`` for an image). The parent folder is created if needed. On an
    exception the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: Path | str, obj: Any, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON (sorted keys) to ``path`` atomically; returns ``path``."""
    return write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=True))


def replace_folder(staged: Path | str, final: Path | str) -> Path:
    """Move the complete folder ``staged`` to ``final`` (same file system), replacing an older
    ``final``: the old one is renamed aside first and removed only once the new one is in place,
    so ``final`` is always a complete folder or absent. Returns ``final``; OSError if the rename
    fails (the old folder is then put back)."""
    staged, final = Path(staged), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
    try:
        os.rename(staged, final)
    except OSError:
        if old is not None:
            os.rename(old, final)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final
