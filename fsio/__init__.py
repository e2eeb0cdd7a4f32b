"""File-system helpers every layer shares: atomic writes and content hashes.

The bottom layer of sslbench: it imports nothing from the project and no torch, so the synthetic
renderer, the data layer, pretraining, the results store and the torch-free reports all write
files the same way (``fsio.atomic``) and hash them the same way (``fsio.hashing``).
"""
from .atomic import atomic_path, replace_folder, write_bytes_atomic, write_json_atomic, write_text_atomic
from .hashing import file_sha256

__all__ = ["atomic_path", "file_sha256", "replace_folder", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]
