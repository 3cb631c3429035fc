#!/usr/bin/env bash
# Issue 34's GPU goals on one H100 (or H200): MFU through the whole training loop (data, step,
# logging, a periodic checkpoint) for 0.154B, 0.411B and 1.4B (open_lm_1b) at seq 2048 in bf16,
# the loop's overhead over the bare step, the step time split and the profile's top ops
# (benchmarks/bench_train.py --sizes gpu). Sized to finish in about 7 minutes on one H100 (under the
# 10 a device call allows): each size is one process with a deadline, the loop reuses the paired
# run's compiled step through the persistent cache.
#
#   bash benchmarks/gpu_mfu.sh                 # all three sizes
#   bash benchmarks/gpu_mfu.sh 1.4B            # some of them
#   EXTRA="model.set.remat=dots" bash benchmarks/gpu_mfu.sh 1.4B   # overrides for every size
#
# Writes $OUT (default runs/gpu_mfu): device.txt, <size>.json (bench_train's rows) and <size>.log.
# Needs jax with CUDA, flax, optax, orbax-checkpoint, grain, tqdm, pyyaml, tokenizers: where the
# device's image lacks some, put their wheels in $WHEELS (default shared/wheels) to be installed
# offline first.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu_mfu}
WHEELS=${WHEELS:-shared/wheels}
mkdir -p "$OUT"
export SCALING_JAX_COMPILATION_CACHE=${SCALING_JAX_COMPILATION_CACHE:-/tmp/gpu_mfu_jax_cache}
if [ -d "$WHEELS" ]; then
  python -m pip install -q --no-index --find-links "$WHEELS" "$WHEELS"/*.whl 2>&1 | tail -3
fi
python - <<'PY' 2>&1 | tee "$OUT/device.txt"
import importlib, jax
print("jax", jax.__version__, "|", jax.device_count(), "x", jax.devices()[0].device_kind)
for m in ("flax", "optax", "orbax.checkpoint", "grain", "tqdm", "yaml", "tokenizers"):
    try:
        mod = importlib.import_module(m)
        print(m, getattr(mod, "__version__", "?"))
    except ImportError as e:
        print("MISSING", m, e)
PY
grep -q MISSING "$OUT/device.txt" && { echo "missing packages: see $OUT/device.txt"; exit 3; }

SIZES=("$@")
[ ${#SIZES[@]} -eq 0 ] && SIZES=(0.154B 0.411B 1.4B)
declare -A LIMIT=([0.154B]=130 [0.411B]=160 [1.4B]=240)  # seconds per size (start, compiles, steps, saves)
for size in "${SIZES[@]}"; do
  echo "=== $size $(date -u +%H:%M:%S)"
  # shellcheck disable=SC2086
  timeout "${LIMIT[$size]:-240}" python benchmarks/bench_train.py --sizes gpu --only "$size" --steps 20 --every 5 \
      --ckpt-every 10 --blocks 2 --block 5 --profile-steps 2 --json "$OUT/$size.json" ${EXTRA:-} 2>&1 \
    | grep -v "^W0000\|^I0000" | tee "$OUT/$size.log"
  echo "=== $size exit ${PIPESTATUS[0]} $(date -u +%H:%M:%S)"
done
