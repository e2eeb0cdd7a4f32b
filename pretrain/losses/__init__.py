"""Losses of the SSL methods: pure functions, each citing its paper, grouped by topic."""
from .clustering import sinkhorn, swapped_prediction, swav_loss
from .contrastive import info_nce, negative_cosine, nt_xent, nt_xent_global, nt_xent_with_negatives
from .distillation import dino_center, dino_loss, mocov3_contrastive
from .grouping import (batch_center, ema_center, grouping_loss, semantic_grouping, slot_contrastive,
                       teacher_assignments)
from .pretext import cmc_loss, gaussian_kl, pirl_nce, rotation_loss, vae_loss

__all__ = [
    "batch_center", "cmc_loss", "dino_center", "dino_loss", "ema_center", "gaussian_kl", "grouping_loss",
    "info_nce", "mocov3_contrastive", "negative_cosine", "nt_xent", "nt_xent_global",
    "nt_xent_with_negatives", "pirl_nce", "rotation_loss", "semantic_grouping", "sinkhorn",
    "slot_contrastive", "swapped_prediction", "swav_loss", "teacher_assignments", "vae_loss",
]
