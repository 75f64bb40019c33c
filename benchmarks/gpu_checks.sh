#!/usr/bin/env bash
# The ConsistI2V checks that only a CUDA GPU can run, as one time-boxed script: every stage has its own time
# limit, prints as it goes and keeps its whole output in LOG_DIR, so a stage that runs long costs its limit and
# no more, and what ran before it is kept.
#
#   benchmarks/gpu_checks.sh                 # tests, then speed: about 6 minutes on an H100
#   benchmarks/gpu_checks.sh speed           # one stage
#   SPEED_ARGS="--compile-mode reduce-overhead --compile-batches 8,16" benchmarks/gpu_checks.sh speed
#
# Stages:
#   tests   the CUDA-only tests: the bf16 temporal-attention kernel at the real widths, the sampler under
#           CUDA's synchronisation check (fp32 and bf16), the CUDA-graph pipeline (about 1.5 min)
#   speed   benchmarks/consisti2v_speed.py: bf16 eager and compiled at batch 8, full-size network, with the
#           step timeline and the compiled-vs-fp32 error of one UNet call (about 4.5 min, 3 of them compiling)
#   layers  benchmarks/profile_unet.py: the layer variants alone (fused attention with rotary inside or not,
#           temporal convolution forms, stacked projections, SDPA backends; about 3 min)
#
# Environment: LOG_DIR (default gpu-checks), PYTHON (the interpreter with torch; default .venv/bin/python where
# the README's setup made it, else python3),
# SPEED_ARGS / LAYERS_ARGS (added to the stage's command line), TESTS_TIMEOUT / SPEED_TIMEOUT / LAYERS_TIMEOUT
# (seconds). Exit status: 0 when every stage passed, 1 when one failed or ran out of time, 2 for an unknown stage
# or no usable GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
LOG_DIR=${LOG_DIR:-gpu-checks}  # not under runs/, whose folders 'i2vbench leaderboard runs/*' reads as runs
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    [ -x .venv/bin/python ] && PYTHON=.venv/bin/python
fi
mkdir -p "$LOG_DIR"
export PYTHONUNBUFFERED=1
stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(tests speed)
for stage in "${stages[@]}"; do
    case $stage in
        tests|speed|layers) ;;
        *) echo "unknown stage '$stage': choose from tests, speed, layers" >&2; exit 2 ;;
    esac
done
failed=0

run_stage() {  # name, time limit (s), command...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "== $name (limit ${limit} s): $*"
    timeout --signal=INT --kill-after=20 "$limit" "$@" 2>&1 | tee "$LOG_DIR/$name.log"
    local rc=$?
    local verdict="exit $rc"
    [ "$rc" -eq 124 ] && verdict="stopped at its ${limit} s limit"
    [ "$rc" -eq 0 ] || failed=1
    echo "$name: $verdict after $((SECONDS - start)) s" | tee -a "$LOG_DIR/summary.txt"
}

nvidia-smi -L 2>/dev/null | tee "$LOG_DIR/summary.txt"
if ! "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "$PYTHON cannot import torch: set PYTHON to the interpreter of the environment the README's setup made" >&2
    exit 2
fi
if ! "$PYTHON" -c "import sys, torch
print('torch', torch.__version__, '| CUDA', torch.version.cuda, '|',
      torch.cuda.get_device_name() if torch.cuda.is_available() else 'no CUDA device')
sys.exit(0 if torch.cuda.is_available() else 1)" 2>&1 | tee -a "$LOG_DIR/summary.txt"; then
    echo "these checks need a CUDA GPU that $PYTHON's torch can use" >&2
    exit 2
fi

for stage in "${stages[@]}"; do
    case $stage in
        tests)
            run_stage tests "${TESTS_TIMEOUT:-180}" "$PYTHON" -m pytest -q -p no:cacheprovider -rs \
                tests/consisti2v/test_ci2v_temporal_kernel.py tests/consisti2v/test_ci2v_sampling.py \
                tests/test_consisti2v_adapter.py -k "cuda or bf16" ;;
        speed)
            # shellcheck disable=SC2086  # SPEED_ARGS is a list of options
            run_stage speed "${SPEED_TIMEOUT:-420}" "$PYTHON" benchmarks/consisti2v_speed.py --batches 8 \
                --reference-batch 0 --compile-batches 8 --repeats 1 --layout channels_last ${SPEED_ARGS:-} ;;
        layers)
            # shellcheck disable=SC2086
            run_stage layers "${LAYERS_TIMEOUT:-240}" "$PYTHON" benchmarks/profile_unet.py --videos 8 --attention \
                --temporal-conv --projections --sdpa-backends --skip-eager ${LAYERS_ARGS:-} ;;
    esac
done
echo "== summary (also in $LOG_DIR/summary.txt)"
cat "$LOG_DIR/summary.txt"
exit $failed
