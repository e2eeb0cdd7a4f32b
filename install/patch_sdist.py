"""Patch an unpacked sdist so that it builds against torch 2.14 on these machines.

Usage: python install/patch_sdist.py {mmcv|detectron2} SRC_DIR

- mmcv 2.1.0: torch 2.14's headers require C++20 (``#error C++20 or later compatible compiler
  is required to use ATen``), but mmcv's setup.py asks for ``-std=c++17``.
- pb1-detectron2 0.6 (the v0.6 code without its C++ sources): drop the extension (it only holds
  optional ops: rotated boxes, deformable conv, the fast COCO evaluator), package the model-zoo
  configs that the sdist ships inside ``detectron2/model_zoo/configs``, drop the ``black==21.4b2``
  pin, replace the aliases that Pillow 10 and numpy 1.24 removed (``np.str`` too: VOC's loader), and make the four modules that
  import ``detectron2._C`` at import time import a stand-in whose every use raises a clear error.
Each edit is checked: a patch that no longer applies raises instead of building something else.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path


def _replace(path: Path, old: str, new: str, count_min: int = 1) -> None:
    text = path.read_text()
    n = text.count(old)
    if n < count_min:
        raise SystemExit(f"patch_sdist: {path}: expected {old!r} at least {count_min}x, found {n}")
    path.write_text(text.replace(old, new))


def patch_mmcv(src: Path) -> None:
    _replace(src / "setup.py", "-std=c++17", "-std=c++20")


_NP_ALIAS = re.compile(r"\bnp\.(bool|int|float|object|str)\b(?!_)")


_C_USERS = ("detectron2/layers/deform_conv.py", "detectron2/layers/rotated_boxes.py",
             "detectron2/layers/roi_align_rotated.py", "detectron2/evaluation/fast_eval_api.py")
_C_IMPORT = """try:
    from detectron2 import _C
except ImportError:  # built without the C++ extension: its ops raise a clear error when used
    from detectron2._C_missing import _C
"""
_C_MISSING = '''"""Stand-in for detectron2._C in a build without the C++ extension: any use raises."""


class _Missing:
    def __getattr__(self, name):
        raise ImportError(
            f"detectron2._C.{name} is unavailable: this detectron2 was built without its C++ "
            "extension (rotated boxes, deformable convolution, fast COCO evaluation); use "
            "COCOEvaluator(..., use_fast_impl=False) and axis-aligned boxes")


_C = _Missing()
'''


# Local version label of our detectron2 build; bump it whenever this patch changes, so that
# `make setup` builds and installs the new wheel over an old one.
DETECTRON2_LOCAL = "sslbench.3"


def patch_detectron2(src: Path) -> None:
    _replace(src / "detectron2/__init__.py", '__version__ = "0.6"', f'__version__ = "0.6+{DETECTRON2_LOCAL}"')
    setup = src / "setup.py"
    _replace(setup, "ext_modules=get_extensions(),", "ext_modules=[],")
    _replace(setup, 'package_data={"detectron2.model_zoo": get_model_zoo_configs()},',
             'package_data={"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]},')
    _replace(setup, '"black==21.4b2",', "")
    if not any((src / "detectron2/model_zoo/configs").rglob("*.yaml")):
        raise SystemExit(f"patch_sdist: {src}: no model-zoo configs under detectron2/model_zoo")
    (src / "detectron2/_C_missing.py").write_text(_C_MISSING)
    for rel in _C_USERS:
        _replace(src / rel, "from detectron2 import _C\n", _C_IMPORT)
    for py in (src / "detectron2").rglob("*.py"):
        text = py.read_text()
        new = _NP_ALIAS.sub(r"\1", text)
        new = new.replace("Image.LINEAR", "Image.BILINEAR")
        if new != text:
            py.write_text(new)


def main(argv: list[str]) -> None:
    if argv == ["--detectron2-version"]:
        print(f"0.6+{DETECTRON2_LOCAL}")
        return
    if len(argv) != 2 or argv[0] not in ("mmcv", "detectron2"):
        raise SystemExit("usage: python install/patch_sdist.py {mmcv|detectron2} SRC_DIR")
    {"mmcv": patch_mmcv, "detectron2": patch_detectron2}[argv[0]](Path(argv[1]))


if __name__ == "__main__":
    main(sys.argv[1:])
