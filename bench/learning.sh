#!/usr/bin/env bash
# The learning check behind the figure in docs/pretrain.md ("It learns"): cpu-preset pretraining on
# shapes64-heldout (its test split holds objects never seen in training), then a linear probe at the
# 32-px view size, beside the silhouette floor, the random backbone and the supervised ceiling.
#   bash bench/learning.sh [DATA] [METHODS...]      (default: data/shapes64-heldout random supervised simclr mocov2 byol)
# The supervised ceiling trains CEILING_EPOCHS (default 60, four times the preset's 15): the ceiling is
# supervised training to convergence (bench/RESULTS.md shows 15 / 30 / 60 epochs). Train times land in
# bench/out/learning-times.tsv and the table.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-data/shapes64-heldout}; shift || true
methods=${*:-random supervised simclr mocov2 byol}
[ -d "$data" ] || .venv/bin/python -m synthetic.generate --preset "$(basename "$data")" --n 20000 --seed 0 --out "$data"
mkdir -p bench/out
: > bench/out/learning-times.tsv
.venv/bin/python -m evaluate.floor "$data" | tee bench/out/learning-floor.txt   # the hand-made floor
for m in $methods; do
  start=$(date +%s)
  extra=(); [ "$m" = supervised ] && extra=("--train.epochs=${CEILING_EPOCHS:-60}")
  ckpt=$(.venv/bin/python -m pretrain --method "$m" --preset cpu --data "$data" --quiet "${extra[@]}")
  secs=$(( $(date +%s) - start ))
  echo "$m trained in ${secs}s: $ckpt"
  printf '%s\t%s\t%s\n' "$m" "$secs" "$ckpt" >> bench/out/learning-times.tsv
  .venv/bin/python bench/linear_probe.py "$data" "$ckpt" --json "bench/out/learning-$m.json"            # at the 32-px view size
  .venv/bin/python bench/linear_probe.py "$data" "$ckpt" --size 0 --json "bench/out/learning-$m-stored.json"  # at 64 px
done
.venv/bin/python bench/learning_table.py bench/out | tee bench/out/learning-table.md
