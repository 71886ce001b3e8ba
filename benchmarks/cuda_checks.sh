#!/usr/bin/env bash
# Everything the project checks and measures on CUDA, in one go, for a machine with an NVIDIA GPU:
#
#     benchmarks/cuda_checks.sh RESULTS_DIR [PYTHON]
#
# 1. the CUDA tests: parity with nn.LSTM (cuDNN) in float64 over the parity cases, float32 closeness, scratch_fast's
#    gradcheck on CUDA, its time loops replayed as CUDA graphs call after call, the CUDA-graph command's own test,
#    and, where PYTHON can import MLflow, the logged-model tests with CUDA present;
# 2. where PYTHON can import MLflow: the MLproject's entry points on the GPU (`benchmark` with device=cuda, `main`
#    with accelerator=cuda for one seed) into a sqlite store in RESULTS_DIR. Without MLflow these and the tests
#    above that need it are left out, and the log says so;
# 3. the benchmark grid on CUDA (forward, backward, forward+backward of every implementation and shape), twice, so
#    that the spread between two runs of the same code is on record beside the ratios, and once more with
#    scratch_fast's in-layer CUDA graphs turned off (LSTM_BENCH_CUDA_GRAPHS=0), every kernel launched eagerly;
# 4. a training step called as usual and replayed as one CUDA graph at medium and large
#    (benchmarks/cuda_graph_step.py), with PyTorch's TF32 defaults, with TF32 off and with TF32 on, and once with
#    scratch_fast's forward on its own element-wise kernels instead of PyTorch's fused cell (LSTM_BENCH_FUSED_CELL=0);
# 5. the peak memory of the first training step on CUDA, and of the third (the loop's steady state: what the first
#    two left allocated, such as library workspaces and scratch_fast's static buffers, plus the step's own need).
#
# Each stage runs under its own time limit and a failed stage does not stop the next (the log says which failed),
# except the tests: where one fails, nothing is timed.
# RESULTS_DIR receives all.log (everything printed), grid1.json, grid2.json and grideager.json (pytest-benchmark's
# results), memory.json and, with MLflow, mlflow.db and the runs' artifacts (mlruns/). PYTHON defaults to python3,
# with the repository on PYTHONPATH (no install needed).
set -u -o pipefail
results=${1:?usage: benchmarks/cuda_checks.sh RESULTS_DIR [PYTHON]}
python=${2:-python3}
mkdir -p "$results" && results=$(cd "$results" && pwd)  # absolute: the next line changes directory
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
log=$results/all.log
failed=0

stage() {  # stage NAME SECONDS COMMAND...: run COMMAND under a time limit, log it, remember a failure
    local name=$1 seconds=$2
    shift 2
    echo "=== $name ($(date -u +%H:%M:%S) UTC): $*" | tee -a "$log"
    timeout "$seconds" "$@" 2>&1 | tee -a "$log"
    local status=$?
    echo "=== $name: exit $status" | tee -a "$log"
    [ "$status" -eq 0 ] || failed=1
}

stage machine 60 bash -c "nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm \
    --format=csv; $python -c 'import torch; print(torch.__version__, torch.version.cuda, \
    torch.backends.cudnn.version(), torch.cuda.get_device_name())'"
has_mlflow=0
"$python" -c 'import mlflow' 2>/dev/null && has_mlflow=1
[ "$has_mlflow" = 1 ] ||
    echo "=== MLflow is not importable by $python: its tests and entry points are left out" | tee -a "$log"
mlflow_tests=()
[ "$has_mlflow" = 1 ] && mlflow_tests=(tests/test_model_logging.py)
stage cuda-tests 240 "$python" -m pytest -q -m cuda -p no:cacheprovider \
    tests/test_parity.py tests/test_scratch_fast.py tests/test_loop_graphs.py tests/test_fused_cell_forward.py \
    tests/test_benchmark_tools.py "${mlflow_tests[@]}"
if [ "$failed" != 0 ]; then  # correctness before speed: nothing is timed on a device where a check failed
    echo "=== stopped: a CUDA test failed, nothing timed ($(date -u +%H:%M:%S) UTC)" | tee -a "$log"
    exit 1
fi
if [ "$has_mlflow" = 1 ]; then
    # The MLproject runs `python`: PYTHON's own folder first on PATH makes that the same interpreter. Started in
    # RESULTS_DIR, MLflow puts the runs' artifacts (models, figures) there too, beside the store that points to them.
    mlflow_env=(env --chdir="$results" "PATH=$(dirname "$("$python" -c 'import sys; print(sys.executable)')"):$PATH"
                "MLFLOW_TRACKING_URI=sqlite:///$results/mlflow.db")
    stage mlflow-benchmark 300 "${mlflow_env[@]}" "$python" -m mlflow run "$PWD" -e benchmark --env-manager local \
        -P device=cuda
    stage mlflow-train 200 "${mlflow_env[@]}" "$python" -m mlflow run "$PWD" --env-manager local \
        -P accelerator=cuda -P seeds=0 -P max_epochs=100
fi
for run in 1 2 eager; do
    graphs=1
    [ "$run" = eager ] && graphs=0
    stage "grid-$run" 300 env LSTM_BENCH_CUDA_GRAPHS=$graphs "$python" -m pytest -q -p no:cacheprovider \
        benchmarks/test_lstm_passes.py --benchmark-only --lstm-devices cuda --benchmark-json "$results/grid$run.json" \
        --benchmark-columns median,iqr,rounds --benchmark-sort name
    [ "$run" = 1 ] || continue
    for shape in medium large; do
        for tf32 in default off on; do
            stage "graph-$shape-tf32-$tf32" 180 "$python" -m benchmarks.cuda_graph_step \
                --impls native,scratch_fast,scratch --shape "$shape" --rounds 30 --tf32 "$tf32"
        done
        # scratch_fast's forward with its own element-wise kernels instead of PyTorch's fused cell, for comparison
        stage "graph-$shape-hand-written-cell" 180 env LSTM_BENCH_FUSED_CELL=0 "$python" -m benchmarks.cuda_graph_step \
            --impls native,scratch_fast --shape "$shape" --rounds 30 --tf32 default
    done
done
stage memory 300 "$python" -m pytest -q -p no:cacheprovider benchmarks/test_peak_memory.py --benchmark-only \
    --lstm-devices cuda --lstm-shapes toy,medium,large --benchmark-json "$results/memory.json"
for shape in medium large; do
    for impl in native scratch_fast scratch; do
        stage "memory-third-step-$impl-$shape" 120 "$python" -m benchmarks.peak_memory "$impl" "$shape" \
            --device cuda --steps 3
    done
done
echo "=== done ($(date -u +%H:%M:%S) UTC), a stage failed: $failed" | tee -a "$log"
exit "$failed"
