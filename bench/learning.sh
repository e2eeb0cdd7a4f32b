#!/usr/bin/env bash
# The learning check behind the figure in docs/pretrain.md ("It learns"): cpu-preset pretraining on
# shapes64-heldout (its test split holds objects never seen in training), then a linear probe at the
# 32-px view size, beside the silhouette floor, the random backbone and the supervised ceiling.
#   bash bench/learning.sh [DATA] [METHODS...]      (default: data/shapes64-heldout random supervised simclr mocov2 byol)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data/shapes64-heldout}; shift || true
methods=${*:-random supervised simclr mocov2 byol}
[ -d "$data" ] || .venv/bin/python -m synthetic.generate --preset "$(basename "$data")" --n 20000 --seed 0 --out "$data"
mkdir -p bench/out
.venv/bin/python -m evaluate.floor "$data" | tee bench/out/learning-floor.txt   # the hand-made floor
for m in $methods; do
  start=$(date +%s)
  ckpt=$(.venv/bin/python -m pretrain --method "$m" --preset cpu --data "$data" --quiet)
  echo "$m trained in $(( $(date +%s) - start ))s: $ckpt"
  .venv/bin/python bench/linear_probe.py "$data" "$ckpt" --json "bench/out/learning-$m.json"            # at the 32-px view size
  .venv/bin/python bench/linear_probe.py "$data" "$ckpt" --size 0 --json "bench/out/learning-$m-stored.json"  # at 64 px
done
.venv/bin/python bench/learning_table.py bench/out | tee bench/out/learning-table.md
