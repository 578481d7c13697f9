#!/usr/bin/env bash
# Does MoCov2 learn on the synthetic study's world if it is given more steps or
# another learning rate? The study (thesis_synthetic) gives it
# 8 epochs (248 steps on 1000 tiles); this runs the study's exp 13 stage
# (aerial branch, all tiles, from random weights, seed 0) for 40 epochs
# (1240 steps), then 10 epochs at three other learning rates and once without
# split BatchNorm, and prints the loss of every epoch and the label-free probe
# (cvbench/evaluation/probe.py) before and after. About 10 minutes on 2 CPU cores.
#
#   bash benchmarks/synthetic_mocov2_budget.sh [RUNS_DIR]
#
# The numbers quoted in the study's notes (docs/results.md) come from this script.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-/tmp/cvbench-mocov2-budget}
CVBENCH=${CVBENCH:-.venv/bin/cvbench}
PYTHON=${PYTHON:-.venv/bin/python}
STUDY=(--preset default --dataset synthetic --split cross_area
       --data-option num_val_cities=4 --data-option train_pairs=500 --data-option val_pairs=800
       --data-option reference_spacing=20 --data-option tile_size=48 --data-option pano_size=24x96
       --ground-size 24x96 --aerial-size 48x48 --head safa --max-train-pairs 500 --max-val-queries 500
       --pretrainer mocov2 --pretrain-branches aerial --pretrain-data all --pretrain-batch-size 32
       --max-pretrain-images 500 --pretrain-option queue_size=512 --pretrain-option momentum=0.98
       --base-init random --seed 0 --quiet)

report() {  # the newest run folder's pre-training evidence, one line
  "$PYTHON" - "$RUNS/$1" "$1" <<'EOF'
import json, pathlib, sys
folder, label = pathlib.Path(sys.argv[1]), sys.argv[2]
result = json.loads(max(folder.glob("*/result.json"), key=lambda p: p.stat().st_mtime).read_text())
stage = result["pretraining"]["aerial"]
losses = " ".join(f"{loss:.3f}" for loss in stage["losses"])
print(f"{label}: {stage['steps']} steps, probe {stage['probe']['before']:.2f} -> {stage['probe']['after']:.2f} "
      f"(chance {stage['probe']['chance']:.2f}), learned {stage['learned']}; loss per epoch: {losses}")
EOF
}

run() {  # label, then cvbench options
  local label=$1; shift
  "$CVBENCH" pretrain "${STUDY[@]}" --runs-dir "$RUNS/$label" "$@" > "$RUNS/$label.log" 2>&1
  report "$label"
}

mkdir -p "$RUNS"
run epochs40-lr0.03 --pretrain-epochs 40 --pretrain-lr 0.03 --pretrain-option bn_splits=4
for lr in 0.003 0.01 0.1; do
  run "epochs10-lr$lr" --pretrain-epochs 10 --pretrain-lr "$lr" --pretrain-option bn_splits=4
done
run epochs10-lr0.03-no-split-bn --pretrain-epochs 10 --pretrain-lr 0.03 --pretrain-option bn_splits=1
