"""Losses of the SSL methods: pure functions, each citing its paper, grouped by topic."""
from .contrastive import info_nce, negative_cosine, nt_xent

__all__ = ["info_nce", "negative_cosine", "nt_xent"]
