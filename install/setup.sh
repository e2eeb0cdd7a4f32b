#!/usr/bin/env bash
# `make setup`: create .venv and install everything sslbench needs, Detectron2 and mmcv/mmseg
# included. Safe to re-run: a stamp keyed on the install files skips all work when nothing
# changed, and the two source builds (mmcv with CPU ops, patched detectron2) are kept as wheels in
# a local wheelhouse ($SSLBENCH_WHEELHOUSE, default ~/.cache/sslbench/wheels) and never rebuilt.
#
# mmcv's CUDA kernels: mmcv compiles them whenever torch sees a GPU. We build the CPU ops on
# purpose (CUDA_VISIBLE_DEVICES="" during the build) so that the wheel is the same everywhere;
# set SSLBENCH_MMCV_CUDA=1 on a GPU machine to build CUDA ops into a separate wheel instead.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
mkdir -p "$(dirname "$VENV")"
CONSTRAINTS=install/constraints.txt
MMCV_VARIANT=cpu
if [ "${SSLBENCH_MMCV_CUDA:-0}" = "1" ]; then MMCV_VARIANT=cuda; fi
WHEELHOUSE=${SSLBENCH_WHEELHOUSE:-$HOME/.cache/sslbench/wheels}/$MMCV_VARIANT
STAMP_KEY=$(cat install/* pyproject.toml | sha256sum | cut -c1-16)-$MMCV_VARIANT
STAMP=$VENV/.sslbench-setup-$STAMP_KEY

log() { printf '[setup] %s\n' "$*"; }

if [ -f "$STAMP" ]; then
  log "$VENV is up to date ($STAMP exists); nothing to do"
  exit 0
fi

[ -x "$VENV/bin/python" ] || { log "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
PY="$(cd "$VENV" && pwd)/bin/python"
PIP=("$PY" -m pip install --progress-bar off -c "$CONSTRAINTS")

log "base tools and torch/torchvision"
"${PIP[@]}" -q --upgrade pip "setuptools<81" wheel ninja
"${PIP[@]}" -q torch torchvision

D2_VERSION=$("$PY" install/patch_sdist.py --detectron2-version)
MMCV_WHEEL_GLOB="$WHEELHOUSE/mmcv-2.1.0-*.whl"
D2_WHEEL_GLOB="$WHEELHOUSE/pb1_detectron2-${D2_VERSION}-*.whl"

build_wheels() {
  mkdir -p "$WHEELHOUSE"
  local need=()
  ls $MMCV_WHEEL_GLOB >/dev/null 2>&1 || need+=(mmcv)
  ls $D2_WHEEL_GLOB >/dev/null 2>&1 || need+=(detectron2)
  if [ ${#need[@]} -eq 0 ]; then log "wheelhouse $WHEELHOUSE has mmcv and detectron2"; return; fi
  local tmp; tmp=$(mktemp -d)
  log "downloading sdists (${need[*]})"
  "$PY" install/fetch_sdist.py install/sdists.txt "$tmp/sdist"
  for pkg in "${need[@]}"; do
    local name=$pkg; [ "$pkg" = detectron2 ] && name=pb1-detectron2
    mkdir -p "$tmp/src/$pkg"
    tar xzf "$tmp"/sdist/${name}-*.tar.gz -C "$tmp/src/$pkg" --strip-components=1
    "$PY" install/patch_sdist.py "$pkg" "$tmp/src/$pkg"
    log "building $pkg wheel$([ "$pkg" = mmcv ] && echo ' (with its ops: 10-20 min on 2 cores)')"
    if [ "$pkg" = mmcv ]; then
      if [ "$MMCV_VARIANT" = cuda ]; then
        ( cd "$tmp/src/mmcv" && MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
          "$PY" -m pip wheel -q --no-deps --no-build-isolation . -w "$tmp/whl" )
      else
        ( cd "$tmp/src/mmcv" && MMCV_WITH_OPS=1 CUDA_VISIBLE_DEVICES="" FORCE_CUDA=0 \
          MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" -m pip wheel -q --no-deps --no-build-isolation . -w "$tmp/whl" )
      fi
    else
      "$PY" -m pip wheel -q --no-deps --no-build-isolation "$tmp/src/$pkg" -w "$tmp/whl"
    fi
    mv "$tmp"/whl/*.whl "$WHEELHOUSE"/   # complete wheels only enter the wheelhouse
  done
  rm -rf "$tmp"
}
build_wheels

log "sslbench and its dependencies (Detectron2, mmcv, mmseg, mmdet, lightly, ...)"
# the two local builds by file, so that a rebuilt wheel replaces an installed older one
"${PIP[@]}" -q --no-deps $MMCV_WHEEL_GLOB $D2_WHEEL_GLOB
"${PIP[@]}" -q --find-links "$WHEELHOUSE" -e ".[transfer,dev]"

# mmengine pulls the GUI opencv-python, which shares cv2/ with the headless build: keep only the
# headless one (the last installed wins, so remove both first).
log "opencv: headless build only"
"$PY" -m pip uninstall -q -y opencv-python opencv-python-headless >/dev/null 2>&1 || true
"${PIP[@]}" -q --no-deps opencv-python-headless

# Debian's chromium: the headless browser the HTML-report test renders reports in (system package).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "chromium (Debian package, for the HTML report test)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends chromium >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
  else
    log "WARNING: chromium is missing and this user cannot install it: run 'sudo apt-get install chromium'"
  fi
fi

# Debian's dataset-fashion-mnist: the offline real dataset of the README's end-to-end example
# (/usr/share/datasets/fashion-mnist, IDX files; tests make their own data and do not need it).
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "dataset-fashion-mnist (Debian package, for the README's real-data example)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends dataset-fashion-mnist >/dev/null \
      || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends dataset-fashion-mnist >/dev/null; }
  else
    log "WARNING: dataset-fashion-mnist is missing and this user cannot install it: run 'sudo apt-get install dataset-fashion-mnist'"
  fi
fi

log "checking imports"
"$PY" - <<'PY'
import torch, torchvision.ops, detectron2, detectron2.model_zoo, mmcv.ops, mmseg, mmdet, cv2, pycocotools, timm, submitit
from detectron2 import model_zoo
model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.yaml")
import mmcv.ops as ops
x = torch.rand(1, 4, 8, 8)
ops.roi_align(x, torch.tensor([[0, 0, 0, 4, 4.0]]), (2, 2))  # a compiled CPU op
print(f"[setup] ok: torch {torch.__version__}, detectron2 {detectron2.__version__}, "
      f"mmcv {mmcv.__version__}, mmseg {mmseg.__version__}, cv2 {cv2.__version__}")
PY
rm -f "$VENV"/.sslbench-setup-*
touch "$STAMP"
log "done"
