#!/usr/bin/env bash
# The cpu reproductions behind bench/RESULTS.md "Reproductions on the cpu preset": each paper's cpu
# plan end to end, one after another (run them alone: the wall times are part of the result), then
# its results store copied to bench/reproductions/<paper>-cpu.sqlite, from which `make report`
# rebuilds every verdict without rerunning anything.
#   bash bench/reproduce_cpu.sh [PAPERS...]   (default: saliency-aug saliency-masking invariance slotcon utility)
# Logs: bench/out/reproduce-<paper>.log; wall times: bench/out/reproduce-times.tsv (paper, seconds,
# exit status, date). Exits non-zero when any plan failed (the others still run).
set -uo pipefail
cd "$(dirname "$0")/.."
papers=${*:-saliency-aug saliency-masking invariance slotcon utility}
mkdir -p bench/out bench/reproductions
failed=0
for paper in $papers; do
  start=$(date +%s)
  .venv/bin/python -m reports reproduce --paper "$paper" --scale cpu --out reproductions \
    > "bench/out/reproduce-$paper.log" 2>&1
  status=$?
  secs=$(( $(date +%s) - start ))
  printf '%s\t%s\t%s\t%s\n' "$paper" "$secs" "$status" "$(date -u +%F)" >> bench/out/reproduce-times.tsv
  echo "$paper: exit $status in ${secs}s (log bench/out/reproduce-$paper.log)"
  if [ "$status" -eq 0 ]; then
    cp "reproductions/$paper-cpu/results.sqlite" "bench/reproductions/$paper-cpu.sqlite.tmp" &&
      mv "bench/reproductions/$paper-cpu.sqlite.tmp" "bench/reproductions/$paper-cpu.sqlite"
  else
    failed=1
  fi
done
exit $failed
