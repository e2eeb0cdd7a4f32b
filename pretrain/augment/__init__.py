"""Augmentation: batched tensor operations, the standard and saliency policies, and their registry.

- :mod:`.ops`: batched image operations (crops, flips, colour, blur) and one view's pipeline;
- :mod:`.masking`: grid masking, fills and the high-pass filter of the masking paper;
- :mod:`.input_transforms`: ``INPUT_TRANSFORMS``, the transform a checkpoint records (the high-pass
  filter of views trained with it) and the backbone wrapper that applies it in every evaluation;
- :mod:`.policy`: the ``Policy`` protocol and what a policy ``Produces``;
- :mod:`.standard`: SimCLR / MoCo v2, BYOL, SwAV multi-crop and no-augmentation policies;
- :mod:`.saliency`: salient-object segmentation (``sgd``) and saliency-guided masking policies;
- :mod:`.registry`: ``AUGMENTATIONS`` (name -> factory) and ``build_policy``.
"""
from .policy import Policy, Produces
from .registry import AUGMENTATIONS, SALIENCY_POLICIES, build_policy

__all__ = ["AUGMENTATIONS", "SALIENCY_POLICIES", "Policy", "Produces", "build_policy"]
