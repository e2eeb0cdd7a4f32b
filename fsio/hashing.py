"""Content hashes of files: the identity of a checkpoint or a data file in caches and the results store."""
from __future__ import annotations

import hashlib
from pathlib import Path

_MEMO: dict[tuple[str, int, int], str] = {}
BLOCK = 1 << 20


def file_sha256(path: Path | str) -> str:
    """SHA-256 (hex) of a file's bytes, memoised by (resolved path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _MEMO:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(BLOCK), b""):
                h.update(block)
        _MEMO[key] = h.hexdigest()
    return _MEMO[key]
