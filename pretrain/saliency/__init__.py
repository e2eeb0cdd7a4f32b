"""Saliency maps and salient-object masks: HC / RC global contrast (Cheng et al., CVPR 2011 / TPAMI 2015)."""
from .global_contrast import hc, quantize, rc, to_rgb_uint8
from .masks import saliency_cut, saliency_mask
from .segment import segment_image

__all__ = ["hc", "quantize", "rc", "saliency_cut", "saliency_mask", "segment_image", "to_rgb_uint8"]
