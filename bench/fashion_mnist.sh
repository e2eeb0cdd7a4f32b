#!/usr/bin/env bash
# The README's real-data example, end to end on Fashion-MNIST as Debian distributes it
# (dataset-fashion-mnist, installed by `make setup`: IDX files in /usr/share/datasets/fashion-mnist):
# SimCLR pretrained on the train split (60 000 images, the cpu preset at 32 px, EPOCHS epochs)
# against random init, both probed by the suite (linear, kNN, few-shot episodes) on a 10 000-image
# class-stratified draw of train and a 2 000-image draw of test.
#   bash bench/fashion_mnist.sh        (EPOCHS=3 SEEDS="0" DATA=... OUT=... to change)
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
OUT=${OUT:-runs/fashion-mnist}
EPOCHS=${EPOCHS:-3}
SEEDS=${SEEDS:-0}
PY=.venv/bin/python
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || { echo "error: $DATA: no Fashion-MNIST IDX files (sudo apt-get install dataset-fashion-mnist)" >&2; exit 2; }
for seed in $SEEDS; do
  for method in simclr random; do
    "$PY" -m pretrain --method "$method" --preset cpu --data "$DATA" --data.split=train --data.image_size=32 \
      --train.epochs="$EPOCHS" --train.seed="$seed" --train.out="$OUT/runs" --resume --quiet
  done
done
"$PY" -m evaluate.suite "$OUT/runs" --data "$DATA" --tasks linear,knn,fewshot --train-limit 10000 --test-limit 2000 \
  --store "$OUT/results.sqlite" --cache "$OUT/features"
"$PY" -m reports table --db "$OUT/results.sqlite" --rows method --cols metric \
  --where "metric=top1,top1@k20,prototype@5way5shot,logistic@5way5shot"
