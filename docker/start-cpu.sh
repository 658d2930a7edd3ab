#!/usr/bin/env bash
# Entry point of the CPU image.
#   narrator-start worker   Celery worker for WORKER_QUEUES (default narrator.cpu), node name
#                           ${WORKER_NAME:-cpu}-${WORKER_INDEX:-0}@<host>: unique among live workers (one
#                           that finds its name answered refuses to start), and kept across restarts, so
#                           a restarted worker requeues what its previous life held (give the container a
#                           fixed hostname)
#   narrator-start flower   Flower with basic auth from NARRATOR_FLOWER_BASIC_AUTH (user:password)
#   narrator-start <cmd>    anything else runs as is (e.g. narrator submit ... --wait)
set -euo pipefail

case "${1:-worker}" in
  worker)
    shift || true
    exec celery -A narrator.tasks.worker worker \
      --queues "${WORKER_QUEUES:-narrator.cpu}" \
      --concurrency "${WORKER_CONCURRENCY:-2}" \
      --hostname "${WORKER_NAME:-cpu}-${WORKER_INDEX:-0}@%h" \
      --loglevel "${WORKER_LOG_LEVEL:-INFO}" "$@"
    ;;
  flower)
    shift || true
    if [[ -z "${NARRATOR_FLOWER_BASIC_AUTH:-}" ]]; then
      echo "narrator-start flower: set NARRATOR_FLOWER_BASIC_AUTH=user:password (Flower is never run open)" >&2
      exit 64
    fi
    # Flower reads FLOWER_<OPTION> variables: the password stays off the command line.
    export FLOWER_BASIC_AUTH="${NARRATOR_FLOWER_BASIC_AUTH}"
    exec celery -A narrator.tasks.worker flower --address=0.0.0.0 --port="${FLOWER_PORT:-5555}" "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
