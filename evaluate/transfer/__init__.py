"""Transfer protocols in the real frameworks: Detectron2 (detection / instance segmentation) and
mmsegmentation (semantic segmentation), initialised from sslbench checkpoints.

``convert``: checkpoint -> Detectron2 ``.pkl`` / mmengine ``.pth`` backbone weights.
"""
