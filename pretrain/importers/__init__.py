"""Foreign checkpoints (torchvision, timm, MoCo, SwAV, DINO, PyContrast, SimCLR / BYOL ports,
Barlow Twins, solo-learn, lightly, OpenMMLab, VISSL) as sslbench checkpoints: ``FORMATS`` says
where each framework keeps its backbone and which heads it may drop; ``import_checkpoint``
writes the ``ckpt.pt``; ``cached_import`` does it once per source file (by its sha256)."""
from .cache import cached_import, is_sslbench_checkpoint, resolve_checkpoint
from .core import Imported, detect, import_as, import_checkpoint, import_file, split_keys
from .formats import ALIASES, FORMATS, ImportFormat, get_format

__all__ = ["ALIASES", "FORMATS", "ImportFormat", "Imported", "cached_import", "detect", "get_format", "import_as",
           "import_checkpoint", "import_file", "is_sslbench_checkpoint", "resolve_checkpoint", "split_keys"]
