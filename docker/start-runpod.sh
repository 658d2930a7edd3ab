#!/usr/bin/env bash
# Entry point of the RunPod image.
#   narrator-start-runpod all      the weights on the network volume, then what serves jobs (default)
#   narrator-start-runpod weights  only the weights step (a volume's first boot by hand, or a test)
#
# Weights: when a RunPod network volume is mounted (RUNPOD_VOLUME, /runpod-volume), the models
# VIBEVOICE_MODELS names live on it, in narrator/models/tts/VibeVoice/<Name>: fetched there by
# fetch_weights.py when missing, completed when a file is missing, left alone when complete, and
# ComfyUI's models/tts/VibeVoice/<Name> becomes a symlink to each. This runs before ComfyUI
# starts: the node pack discovers model folders when it is imported.
#
# What serves jobs:
# - No NARRATOR_BROKER_URL (the template): ComfyUI and the handler, nothing else. The handler
#   runs each job's chain in its own process and loads NARRATOR_WARMUP_MODELS on this ComfyUI
#   before it asks RunPod for a job; when that fails it exits 1 with the reason.
# - NARRATOR_BROKER_URL set: the container joins that pool with the workers RUNPOD_WORKERS names
#   (cpu,gpu by default; none: the handler only submits and follows, e.g. on a CPU endpoint). With
#   a GPU worker here the handler takes no job before that worker has warmed up, and exits 1 when
#   its warm-up fails or it dies.
# Any process ending ends the container: RunPod replaces the worker.
set -euo pipefail

VENV_BIN="${VENV_BIN:-/opt/narrator/bin}"
COMFY_PYTHON="${COMFY_PYTHON:-/opt/venv/bin/python}"
COMFY_MAIN="${COMFY_MAIN:-/comfyui/main.py}"
FETCH_WEIGHTS="${FETCH_WEIGHTS:-/opt/narrator/fetch_weights.py}"
RUNPOD_VOLUME="${RUNPOD_VOLUME:-/runpod-volume}"
pids=()
# The GPU worker's state file (the GPU image's ENV names the same one); the handler waits for it
# to say ready. The CPU worker gets a file of its own.
gpu_ready=/tmp/narrator-ready.json
cpu_ready=/tmp/narrator-cpu-ready.json
handler_waits_for=""

say() { echo "narrator-start-runpod: $*" >&2; }

weights_on_volume() {
  if [[ ! -d "${RUNPOD_VOLUME}" ]]; then
    say "no network volume at ${RUNPOD_VOLUME}: ComfyUI uses the models in the image"
    return 0
  fi
  local scratch status=0
  scratch="$(mktemp -d)"
  # The image runs offline (HF_HUB_OFFLINE=1); this step alone may reach the Hub, and only for
  # what the volume lacks. Nothing is kept in the Hugging Face cache: the loader never reads it.
  HF_HUB_OFFLINE=0 HF_HOME="${scratch}" HF_HUB_DISABLE_TELEMETRY=1 \
    "${COMFY_PYTHON}" "${FETCH_WEIGHTS}" --models "${VIBEVOICE_MODELS:-}" \
      --dest "${RUNPOD_VOLUME}/narrator/models/tts/VibeVoice" \
      --link "$(dirname "${COMFY_MAIN}")/models/tts/VibeVoice" || status=$?
  rm -rf "${scratch}"
  if [[ ${status} -ne 0 ]]; then
    say "the weights on ${RUNPOD_VOLUME} are not ready (above); taking no jobs"
  fi
  return "${status}"
}

stop_all() {
  trap - TERM INT EXIT
  [[ ${#pids[@]} -gt 0 ]] && kill -TERM "${pids[@]}" 2>/dev/null
  wait
}

wants() { [[ ",${workers}," == *",$1,"* ]]; }

serve() {
  rm -f "${gpu_ready}" "${cpu_ready}"  # left by this container's previous life
  trap stop_all TERM INT EXIT
  # What runs is decided first: a mistake in it must not wait behind a download.
  if [[ -z "${NARRATOR_BROKER_URL:-}" ]]; then
    if [[ -n "${RUNPOD_WORKERS:-}" ]]; then
      say "RUNPOD_WORKERS=${RUNPOD_WORKERS} needs NARRATOR_BROKER_URL: without a broker the handler synthesizes itself"
      exit 2
    fi
    workers=comfyui
  else
    workers="${RUNPOD_WORKERS:-cpu,gpu}"
    if [[ ! ",${workers}," =~ ^(,(cpu|gpu))+,$ && "${workers}" != none ]]; then
      say "RUNPOD_WORKERS=${workers}: write cpu, gpu, cpu,gpu or none"
      exit 2
    fi
    wants gpu && workers="${workers},comfyui"
  fi
  weights_on_volume

  if wants comfyui; then
    narrator-start-gpu comfyui &
    pids+=($!)
  fi
  if wants gpu; then
    NARRATOR_READY_FILE="${gpu_ready}" WORKER_NAME=gpu narrator-start-gpu worker &
    pids+=($!)
    handler_waits_for="${gpu_ready}"
  fi
  if wants cpu; then
    NARRATOR_READY_FILE="${cpu_ready}" "${VENV_BIN}/celery" -A narrator.tasks.worker worker --queues narrator.cpu \
      --concurrency "${WORKER_CONCURRENCY:-2}" --hostname "cpu-0@%h" --loglevel "${WORKER_LOG_LEVEL:-INFO}" &
    pids+=($!)
  fi

  # In-process, the handler warms its models up itself (its ComfyUI engine waits for the server,
  # NARRATOR_COMFY_TIMEOUT); with a GPU worker here it waits for that worker's ready file instead
  # (NARRATOR_READY_TIMEOUT). Either way, no job before then, and exit 1 with the reason on failure.
  NARRATOR_READY_FILE="${handler_waits_for}" "${VENV_BIN}/python" -m narrator.runpod_handler &
  pids+=($!)

  set +e
  wait -n "${pids[@]}"
  status=$?
  stop_all
  exit "${status}"
}

case "${1:-all}" in
  all) serve ;;
  weights) weights_on_volume ;;
  *) exec "$@" ;;
esac
