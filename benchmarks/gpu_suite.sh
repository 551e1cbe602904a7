#!/usr/bin/env bash
# The GPU suite: one command for a CUDA machine, under 8 minutes, one table at the end.
#   1. a smoke run of every recipe on the GPU (benchmarks/gpu_smoke.py: trains, views, checkpoints)
#   2. the throughput benchmarks: DCGAN and U-Net images/s and the GPT's tokens/s and MFU,
#      each against a plain PyTorch loop of the same model measured in the same run
#   3. the GPT target: launch to val/loss 1.47 with the ~10M-parameter model
# Engine-only: needs python with torch (no Textual). Outputs are kept in $OUT (default: a
# new temporary folder); the table is printed last.
#   bash benchmarks/gpu_suite.sh
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-$(mktemp -d -t genstudio-gpu-XXXX)}
mkdir -p "$OUT"
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)"; then
  echo "gpu_suite: PyTorch sees no CUDA GPU here; nothing to measure" >&2
  exit 3
fi
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'device: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}')" | tee "$OUT/device.txt"
start=$(date +%s)
step() {  # name, seconds allowed, command...
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc in $(( $(date +%s) - t0 )) s" | tee -a "$OUT/steps.txt"
}
step smoke 270 "$PY" benchmarks/gpu_smoke.py --device cuda --seconds 5
step gan 50 "$PY" benchmarks/gan_throughput.py --seconds 6
step diffusion 50 "$PY" benchmarks/diffusion_throughput.py --seconds 6
step gpt 100 "$PY" benchmarks/gpt_throughput.py --device cuda --seconds 6 --set model=10m --set batch_size=64 \
  --target 1.47 --max-seconds 45
echo
echo "== GenStudio GPU suite: $(cat "$OUT/device.txt"), $(( $(date +%s) - start )) s in all; outputs in $OUT"
sed -n '/^recipe /,/^RESULT/p' "$OUT/smoke.txt"
echo
for name in gan diffusion gpt; do
  echo "-- $name"
  grep -E "engine|plain|MFU|launch to|RESULT" "$OUT/$name.txt" || tail -3 "$OUT/$name.txt"
done
echo
cat "$OUT/steps.txt"
