#!/usr/bin/env bash
# RunPod serverless entry: a local Redis (unless NARRATOR_BROKER_URL names a shared broker),
# ComfyUI, the GPU and CPU workers, then the handler (python -m narrator.runpod_handler),
# which submits each RunPod job to the chain and awaits its result.
set -euo pipefail

VENV_BIN="${VENV_BIN:-/opt/narrator/bin}"
RUNPOD_WORKERS="${RUNPOD_WORKERS:-cpu,gpu}"
pids=()
# The GPU worker's state file (the image's HEALTHCHECK reads the same one); the handler
# takes no job before it says ready. The CPU worker gets a file of its own.
gpu_ready=/tmp/narrator-ready.json
cpu_ready=/tmp/narrator-cpu-ready.json
handler_waits_for=""
rm -f "${gpu_ready}" "${cpu_ready}"  # left by this container's previous life

stop_all() {
  trap - TERM INT EXIT
  [[ ${#pids[@]} -gt 0 ]] && kill -TERM "${pids[@]}" 2>/dev/null
  wait
}
trap stop_all TERM INT EXIT

if [[ -z "${NARRATOR_BROKER_URL:-}" ]]; then
  # One container, one job at a time: an in-memory Redis is the broker and the result backend.
  mkdir -p /tmp/redis
  redis-server --bind 127.0.0.1 --port 6379 --dir /tmp/redis --save "" --appendonly no \
    --maxmemory-policy noeviction --daemonize no --logfile "" &
  pids+=($!)
  export NARRATOR_BROKER_URL="redis://127.0.0.1:6379/0"
fi

narrator-start-gpu comfyui &
pids+=($!)

if [[ ",${RUNPOD_WORKERS}," == *",gpu,"* ]]; then
  NARRATOR_READY_FILE="${gpu_ready}" WORKER_NAME=gpu narrator-start-gpu worker &
  pids+=($!)
  handler_waits_for="${gpu_ready}"
fi
if [[ ",${RUNPOD_WORKERS}," == *",cpu,"* ]]; then
  NARRATOR_READY_FILE="${cpu_ready}" "${VENV_BIN}/celery" -A narrator.tasks.worker worker --queues narrator.cpu \
    --concurrency "${WORKER_CONCURRENCY:-2}" --hostname "cpu@%h" --loglevel "${WORKER_LOG_LEVEL:-INFO}" &
  pids+=($!)
fi

# With a GPU worker here, the handler waits (NARRATOR_READY_TIMEOUT) until it is ready, and exits
# if its warm-up failed or it died: no job is taken by a worker that cannot synthesize.
NARRATOR_READY_FILE="${handler_waits_for}" "${VENV_BIN}/python" -m narrator.runpod_handler &
pids+=($!)

# Any process ending ends the container: RunPod replaces the worker.
set +e
wait -n "${pids[@]}"
status=$?
stop_all
exit "${status}"
