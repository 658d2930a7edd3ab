#!/usr/bin/env bash
# Entry point of the GPU image.
#   narrator-start-gpu all      ComfyUI, wait until it answers, then the Celery worker (default)
#   narrator-start-gpu comfyui  ComfyUI alone (compose runs it and the worker as two services)
#   narrator-start-gpu worker   the worker alone, against NARRATOR_COMFY_URL
# The worker's node name is ${WORKER_NAME:-gpu}-${WORKER_INDEX:-0}@<host> (WORKER_INDEX: one per GPU on
# a host): unique among live workers (one that finds its name answered refuses to start) and the same
# after a restart (give the container a fixed hostname), so a restarted worker requeues what it held.
# The worker loads NARRATOR_WARMUP_MODELS (and warms ComfyUI up) before it takes a task.
# WORKER_SLOTS=2 lets it hold a second chunk whose prompt waits in ComfyUI's queue (ComfyUI
# still runs one at a time): no idle GPU between short chunks, at the price of a chunk that
# may wait behind a long one while another GPU is free. 1 (the default) suits long chunks.
set -euo pipefail

COMFY_LISTEN="${COMFY_LISTEN:-127.0.0.1}"
COMFY_PORT="${COMFY_PORT:-8188}"
COMFY_START_TIMEOUT="${COMFY_START_TIMEOUT:-600}"
# Where things are in the image (overridable, so the script also runs outside it).
COMFY_PYTHON="${COMFY_PYTHON:-/opt/venv/bin/python}"
COMFY_MAIN="${COMFY_MAIN:-/comfyui/main.py}"
VENV_BIN="${VENV_BIN:-/opt/narrator/bin}"
export NARRATOR_COMFY_URL="${NARRATOR_COMFY_URL:-http://127.0.0.1:${COMFY_PORT}}"

prune_comfy() {
  # ComfyUI keeps every chunk it saves (output/) and every voice narrator uploads
  # (input/narrator/), and has no API to delete them: prune them here, every
  # COMFY_PRUNE_INTERVAL seconds (0: never), past COMFY_PRUNE_MAX_AGE, then oldest first
  # down to COMFY_PRUNE_MAX_BYTES; never a file younger than NARRATOR_CHUNK_TIME_LIMIT or
  # named by a queued or running prompt (docs/operations.md, "Cleanup").
  # $1: the process whose life this loop follows (ComfyUI, once the caller execs it).
  local owner="$1" interval="${COMFY_PRUNE_INTERVAL:-600}" base
  base="$(dirname "${COMFY_MAIN}")"
  while sleep "${interval}" && kill -0 "${owner}" 2>/dev/null; do
    "${VENV_BIN}/narrator" prune-comfy \
      --dir "${COMFY_OUTPUT_DIR:-${base}/output}" --dir "${COMFY_INPUT_DIR:-${base}/input}/narrator" \
      --max-age "${COMFY_PRUNE_MAX_AGE:-1d}" --max-bytes "${COMFY_PRUNE_MAX_BYTES:-20G}" \
      --comfy-url "${NARRATOR_COMFY_URL}" || true  # a failed round (ComfyUI busy) tries again next time
  done
}

comfyui() {
  local self="${BASHPID}"  # read here: in the background job it would be the job's own pid
  if [ "${COMFY_PRUNE_INTERVAL:-600}" != 0 ]; then
    prune_comfy "${self}" &
  fi
  # shellcheck disable=SC2086  # COMFY_ARGS is a list of flags
  exec "${COMFY_PYTHON}" "${COMFY_MAIN}" --listen "${COMFY_LISTEN}" --port "${COMFY_PORT}" \
    --disable-auto-launch ${COMFY_ARGS:-}
}

wait_for_comfyui() {
  # $1: the ComfyUI process to watch, if this script started it.
  "${VENV_BIN}/python" - "${NARRATOR_COMFY_URL}" "${COMFY_START_TIMEOUT}" "${1:-0}" <<'PY'
import sys, time, urllib.request
url, timeout, pid = sys.argv[1].rstrip("/") + "/system_stats", float(sys.argv[2]), int(sys.argv[3])

def exited(pid):
    try:  # a dead child stays a zombie ("Z") until this script's shell reaps it
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in "ZX"
    except OSError:
        return True

deadline = time.monotonic() + timeout
while True:
    if pid and exited(pid):
        sys.exit("ComfyUI exited before it answered")
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            if answer.status == 200:
                sys.exit(0)
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit(f"ComfyUI did not answer {url} within {timeout:.0f} s")
    time.sleep(1)
PY
}

worker() {
  exec "${VENV_BIN}/celery" -A narrator.tasks.worker worker \
    --queues "${WORKER_QUEUES:-narrator.gpu}" \
    --concurrency "${WORKER_SLOTS:-1}" \
    --hostname "${WORKER_NAME:-gpu}-${WORKER_INDEX:-0}@%h" \
    --loglevel "${WORKER_LOG_LEVEL:-INFO}"
}

case "${1:-all}" in
  comfyui) comfyui ;;
  worker) wait_for_comfyui; worker ;;
  all)
    # Two processes, one container: if either ends, stop the other and exit with its status.
    (comfyui) &
    comfy_pid=$!
    trap 'kill -TERM "${comfy_pid}" ${worker_pid:-} 2>/dev/null; wait' TERM INT
    wait_for_comfyui "${comfy_pid}"
    (worker) &
    worker_pid=$!
    set +e
    wait -n "${comfy_pid}" "${worker_pid}"
    status=$?
    kill -TERM "${comfy_pid}" "${worker_pid}" 2>/dev/null
    wait
    exit "${status}"
    ;;
  *) exec "$@" ;;
esac
