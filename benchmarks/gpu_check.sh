#!/usr/bin/env bash
# bnlab on one CUDA GPU, in about 5 minutes: the core and engine tests on the GPU, `bnlab reproduce
# --preset seed`, and the 256-run sweep (8 learning rates x 2 variants x 16 seeds x 50,000 steps),
# each with its wall time and the engine's runs x steps per second.
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]        (default: gpu-check-<time>)
#
# Needs Python >= 3.11 and an NVIDIA driver (nvidia-smi). JAX's CUDA build is used as found; where
# it is missing it is installed into .venv-gpu from ./wheels (BNLAB_WHEELS: a folder of wheels made
# on a machine with internet by `pip download -d wheels 'jax[cuda12]' -e .`) or, failing that, from
# the registry. SWEEP_STEPS shortens the sweep (default 50000) where the budget is tight; the
# summary says which length ran. Everything goes to OUT_DIR; the summary also to OUT_DIR/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-gpu-check-$(date +%Y%m%d-%H%M%S)}
WHEELS=${BNLAB_WHEELS:-wheels}
SWEEP_STEPS=${SWEEP_STEPS:-50000}
JAX_CUDA=${JAX_CUDA:-cuda12}  # cuda13 for CUDA 13 drivers (JAX's pip extras)
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(($(date +%s) - $1)); }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

start=$(date +%s)
if python3 -c 'import jax, sys; sys.exit(jax.default_backend() != "gpu")' 2>/dev/null \
    && python3 -c 'import bnlab' 2>/dev/null; then
  PY=python3
  say "environment: the system Python already has JAX on the GPU and bnlab"
else
  python3 -m venv .venv-gpu
  . .venv-gpu/bin/activate
  if [ -d "$WHEELS" ]; then
    pip install -q --no-index --find-links "$WHEELS" -e . "jax[$JAX_CUDA]" pytest hypothesis
    say "environment: .venv-gpu from the wheels in $WHEELS"
  else
    pip install -q -e . "jax[$JAX_CUDA]" pytest hypothesis
    say "environment: .venv-gpu from the registry"
  fi
  PY=python
fi
$PY - <<'EOF' | tee -a "$SUMMARY"
import jax
assert jax.default_backend() == "gpu", f"expected JAX on the GPU, got {jax.devices()}"
print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({len(jax.devices())} device)")
EOF
say "setup: $(elapsed "$start") s"

# 1. the core's and the engine's tests, on the GPU (JAX_PLATFORMS makes a CPU fallback an error)
start=$(date +%s)
JAX_PLATFORMS=cuda $PY -m pytest -q -p no:cacheprovider -m "not slow" \
  tests/test_core_batchnorm.py tests/test_core_backward.py tests/test_core_population.py \
  tests/test_core_precision.py tests/test_engine_model.py tests/test_engine_train.py \
  tests/test_engine_norm_noise.py 2>&1 | tail -n 3 | tee "$OUT/tests.txt"
say "core and engine tests on the GPU: $(tail -n 1 "$OUT/tests.txt") ($(elapsed "$start") s)"

# 2. Figure 1 end to end
start=$(date +%s)
JAX_PLATFORMS=cuda $PY -m bnlab reproduce --preset seed --out "$OUT/reproduce" --quiet \
  > "$OUT/reproduce.txt" 2>&1
say "bnlab reproduce --preset seed: $(elapsed "$start") s end to end"

# 3. the 256-run sweep: 8 learning rates x 2 variants x 16 seeds
cat > "$OUT/sweep256.toml" <<EOF
preset = "seed"
steps = $SWEEP_STEPS
eval_every = 5000
seeds = 16
[grid]
lr = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02]
EOF
start=$(date +%s)
JAX_PLATFORMS=cuda $PY -m bnlab sweep "$OUT/sweep256.toml" --out "$OUT/sweep" --quiet \
  > "$OUT/sweep.txt" 2>&1
say "bnlab sweep, 256 runs x $SWEEP_STEPS steps: $(elapsed "$start") s end to end"

$PY - "$OUT" <<'EOF' | tee -a "$SUMMARY"
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
for name in ("reproduce", "sweep"):
    t = json.loads((out / name / "timing.json").read_text())
    runs = len(json.loads((out / name / "metrics.json").read_text())["runs"])
    rate = t.get("runs_x_steps_per_s")
    if rate is None and t.get("train_s"):
        steps = json.loads((out / name / "config.json").read_text()).get("steps")
        rate = runs * steps / t["train_s"] if steps else None
    shown = f"{rate:,.0f} runs x steps/s" if rate else "runs x steps/s not recorded"
    print(f"{name}: {runs} runs, training {t.get('train_s', float('nan')):.1f} s, {shown}")
EOF
