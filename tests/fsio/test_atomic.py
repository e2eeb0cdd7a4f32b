"""fsio: atomic file writes, folder replacement and file hashes."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fsio import atomic_path, file_sha256, replace_folder, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_a_write_lands_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "a.json"
    write_json_atomic(out, {"b": 1, "a": [1, 2]})
    assert json.loads(out.read_text()) == {"a": [1, 2], "b": 1} and out.read_text().index('"a"') < out.read_text().index('"b"')
    write_text_atomic(out, "new")
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert out.read_text() == "new" and (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.json", "b.bin", "sub"]


def test_a_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    out = tmp_path / "a.txt"
    out.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(out, suffix=".npz") as tmp:
            assert tmp.suffix == ".npz" and tmp.parent == tmp_path
            tmp.write_text("half")
            raise RuntimeError("disk full")
    assert out.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_replace_folder_swaps_a_complete_folder_in(tmp_path: Path) -> None:
    final = tmp_path / "dataset"
    for content in ("first", "second"):
        staged = tmp_path / f".staged-{content}"
        staged.mkdir()
        (staged / "meta.json").write_text(content)
        assert replace_folder(staged, final) == final
        assert (final / "meta.json").read_text() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_replace_folder_puts_the_old_folder_back_when_the_move_fails(tmp_path: Path) -> None:
    final = tmp_path / "dataset"
    final.mkdir()
    (final / "meta.json").write_text("old")
    with pytest.raises(OSError):
        replace_folder(tmp_path / "missing", final)
    assert (final / "meta.json").read_text() == "old"


def test_file_sha256_follows_the_content(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == hashlib.sha256(b"abc").hexdigest()
    path.write_bytes(b"abcd")                       # a new size: a new memo key
    assert file_sha256(path) == hashlib.sha256(b"abcd").hexdigest()
