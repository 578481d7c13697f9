#!/usr/bin/env bash
# The GPU check of docs/performance.md: on a machine with one CUDA GPU, from the
# repository root, in under 8 minutes: each step has a time cap, and a step that
# would run past $GPU_CHECK_SECONDS (default 470) from the start is cut short or
# skipped, saying so. Writes its JSON to $OUT (default:
# benchmarks/perf/results/gpu_check/), keeps the runs it makes in $WORK (default:
# gpu_check_out/), and ends by printing the tables docs/performance.md shows.
#
#   bash benchmarks/perf/gpu_check.sh                 # the issue-20 figures and the default run
#   GPU_CHECK_FULL=1 GPU_CHECK_SECONDS=600 bash benchmarks/perf/gpu_check.sh  # also the memory-format rows
#
# cvbench must be importable with its plugins registered (pip install -e .).
# A machine without the package registries can install carried wheels
# instead: put cvbench's wheel (pip wheel --no-deps . -w .whl) and any missing
# dependency (faiss-cpu) in .whl/ and they are installed into /tmp/site first.
set -euo pipefail
OUT=${OUT:-benchmarks/perf/results/gpu_check}
WORK=${WORK:-gpu_check_out}
mkdir -p "$OUT" "$WORK"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 CVBENCH_CACHE=${CVBENCH_CACHE:-$WORK/cache}
step() { echo; echo "== $1 ($(date +%T))"; }
BUDGET=${GPU_CHECK_SECONDS:-470}  # the whole check, in seconds: under 8 minutes whatever a step takes
capped() {  # capped SECONDS COMMAND...: COMMAND for at most SECONDS, and never past the budget
  local cap=$1 left=$((BUDGET - SECONDS))
  shift
  if ((left < cap)); then cap=$left; fi
  if ((cap < 10)); then echo "skipped: the check's ${BUDGET} s are spent"; return 0; fi
  timeout "$cap" "$@" || echo "stopped after at most ${cap} s (exit $?)"
}
PERF=benchmarks/perf
THESIS=(--preset default --backbone vgg16 --backbone-stage -1 --dim 4096 --ground-size 112x616 --aerial-size 256x256)

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, cvbench; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| cvbench', cvbench.__version__)"

step "smoke preset on the GPU (cvbench run --preset smoke --device cuda)"
time capped 60 python3 -m cvbench run --preset smoke --device cuda --runs-dir "$WORK/runs" --quiet
python3 - "$WORK/runs" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/result.json")):
    record = json.loads(path.read_text())
    print(record["status"], record["device"], record["metrics"], {k: round(v, 2) for k, v in record["timings"].items()},
          "fine-tuning:", record.get("finetuning"))
PY

step "exact ranking on the GPU: 100,000 x 1,000,000 x 256 against the products it needs"
capped 120 python3 $PERF/recall.py --queries 100000 --references 1000000 --dim 256 --repeats 1 --device cuda \
  --json "$OUT/recall_cuda_100k_1m.json"

step "loader against step at the thesis' sizes (CVACT JPEGs; VGG16, 112x616 / 256x256; batch 96 / 128)"
capped 120 python3 $PERF/loading.py --against-step --device cuda --images 512 --workers 12 --batch 96 \
  --pretrain-batch 128 --steps 10 --json "$OUT/loader_vs_step.json"

throughput() { capped 90 python3 $PERF/throughput.py --device cuda --steps 10 --warmup 3 --repeats 3 "$@"; }
step "MFU at the thesis' sizes: VGG16, SAFA 4096-d, 112x616 / 256x256, batch 96 / 128, channels_last"
throughput "${THESIS[@]}" --batch 96 --pretrain-batch 128 --sync-check --json "$OUT/mfu_thesis.json"
step "same, torch.compile (compilation in the warm-up)"
capped 150 python3 $PERF/throughput.py --device cuda --steps 10 --warmup 3 --repeats 2 --compile "${THESIS[@]}" \
  --batch 96 --pretrain-batch 128 --json "$OUT/mfu_thesis_compile.json"

step "the default run on the GPU: cvbench run --pretrainer mocov2 --head safa"
time capped 100 python3 -m cvbench run --pretrainer mocov2 --head safa --device cuda --workers 6 \
  --runs-dir "$WORK/runs_default" --quiet
python3 - "$WORK/runs_default" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/result.json")):
    record = json.loads(path.read_text())
    print(record["status"], record.get("metrics"), {k: round(v, 1) for k, v in record.get("timings", {}).items()})
    for branch, stage in record.get("pretraining", {}).items():
        print(f"pre-training {branch}: data wait {stage.get('data_wait_fraction')}, "
              f"peak GPU memory {stage.get('peak_gpu_memory_bytes')}")
    print("fine-tuning:", record.get("finetuning"))
PY

if [[ -n "${GPU_CHECK_FULL:-}" ]]; then
  step "default preset (resnet18 stage 2, 32x128 / 64x64), batch 64: channels_last, then NCHW"
  throughput --preset default --batch 64 --sync-check --json "$OUT/throughput_default.json"
  throughput --preset default --batch 64 --channels-last off --json "$OUT/throughput_default_nchw.json"
  step "thesis sizes, contiguous (NCHW)"
  throughput "${THESIS[@]}" --batch 96 --pretrain-batch 128 --channels-last off --json "$OUT/mfu_thesis_nchw.json"
fi

step "tables for docs/performance.md"
python3 $PERF/tables.py "$OUT"
step "done"
