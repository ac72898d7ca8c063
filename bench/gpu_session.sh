#!/bin/bash
# The one prepared script for a lent GPU machine (the device tool), sized for its 15 minutes:
# the GPU profile through a real Dask scheduler and a `--resources GPU=1` worker (issue 15 item 5,
# and issue 13's GPU training times), then the featvis benchmark on CUDA.
#
#   here, once:   make gpu-wheels        (.whl/: what the machine's python3 lacks, about 4 MB)
#   there:        run(command="bash bench/gpu_session.sh", carry=[".whl"], timeout_s=590)
#
# The results come back under $OUT: bench/results/cluster.json (its gpu_ keys) and
# featvis-cuda.json; copy them into bench/results/ here and commit them.
set -u
OUT=${OUT:-/tmp/gpu-session-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHON=${PYTHON:-python3}
if [ -d .whl ]; then
  $PYTHON -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
DEVICE=${DEVICE:-cuda} PROFILE=${PROFILE:-gpu}
# the device tool sends the working tree without .git; the runner names the code it ships by commit
if ! git rev-parse HEAD >/dev/null 2>&1; then
  git init -q && git add -A && git -c user.name=gpu-session -c user.email=gpu-session@localhost \
    commit -qm "the working tree as the device tool sent it" || exit 1
fi
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
$PYTHON -c "import torch, dask, distributed; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'dask', dask.__version__)"

# at most 7.5 minutes for the profile (what it made by then is recorded), so the featvis bench and
# the copies fit in one 10-minute call
timeout 470 $PYTHON -m bench.bench_cluster_gpu --device "$DEVICE" --profile "$PROFILE" --timeout 450 ${ONLY:+--only "$ONLY"} \
  2>&1 | tee "$OUT/cluster-gpu.log" | tail -40
cp bench/results/cluster.json "$OUT/"
timeout 100 $PYTHON -m bench.bench_featvis 2>&1 | tee "$OUT/featvis.log" | tail -25
cp bench/results/featvis-*.json "$OUT/" 2>/dev/null
ls -la "$OUT"
