#!/usr/bin/env bash
# The GPU check of docs/performance.md: on a machine with one CUDA GPU, from the
# repository root, in under 5 minutes. Prints the figures and writes JSON to $OUT
# (default: gpu_check_out/).
#
#   bash benchmarks/perf/gpu_check.sh
#
# cvbench must be importable with its plugins registered (pip install -e .).
# A machine without the package registries can install carried wheels
# instead: put cvbench's wheel (pip wheel --no-deps . -w .whl) and any missing
# dependency (faiss-cpu) in .whl/ and they are installed into /tmp/site first.
set -euo pipefail
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1 CVBENCH_CACHE=${CVBENCH_CACHE:-$OUT/cache}
step() { echo; echo "== $1 ($(date +%T))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, cvbench; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| cvbench', cvbench.__version__)"

step "smoke preset on the GPU (cvbench run --preset smoke --device cuda)"
time python3 -m cvbench run --preset smoke --device cuda --runs-dir "$OUT/runs" --quiet
python3 - "$OUT/runs" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/result.json")):
    record = json.loads(path.read_text())
    print(record["status"], record["device"], record["metrics"], {k: round(v, 2) for k, v in record["timings"].items()})
PY

throughput() { python3 benchmarks/perf/throughput.py --device cuda --steps 20 --warmup 5 --repeats 3 "$@"; }
step "throughput, default preset (resnet18 stage 2, 32x128 / 64x64), batch 64, channels_last, host-sync check"
throughput --preset default --batch 64 --sync-check --json "$OUT/throughput_default.json"
step "same, contiguous (NCHW) memory format"
throughput --preset default --batch 64 --channels-last off --json "$OUT/throughput_default_nchw.json"
step "thesis sizes: vgg16, SAFA 4096-d, 224x448 / 224x224 (VIGOR), batch 32, channels_last"
throughput --preset default --backbone vgg16 --backbone-stage -1 --dim 4096 --ground-size 224x448 \
  --aerial-size 224x224 --batch 32 --steps 10 --json "$OUT/throughput_vgg16.json"
step "same, contiguous (NCHW)"
throughput --preset default --backbone vgg16 --backbone-stage -1 --dim 4096 --ground-size 224x448 \
  --aerial-size 224x224 --batch 32 --steps 10 --channels-last off --json "$OUT/throughput_vgg16_nchw.json"
step "the default run on the GPU: cvbench run --pretrainer mocov2 --head safa (CPU: 173 s)"
time timeout 150 python3 -m cvbench run --pretrainer mocov2 --head safa --device cuda --workers 6 \
  --runs-dir "$OUT/runs_default" --quiet || echo "default run stopped (exit $?)"
python3 - "$OUT/runs_default" <<'PY'
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*/result.json")):
    record = json.loads(path.read_text())
    print(record["status"], record.get("metrics"), {k: round(v, 1) for k, v in record.get("timings", {}).items()})
PY
step "same, torch.compile (compilation in the warm-up)"
timeout 120 python3 benchmarks/perf/throughput.py --device cuda --steps 10 --warmup 3 --repeats 2 --compile \
  --preset default --backbone vgg16 --backbone-stage -1 --dim 4096 --ground-size 224x448 --aerial-size 224x224 \
  --batch 32 --json "$OUT/throughput_vgg16_compile.json" || echo "compile check stopped (exit $?)"
step "done"
