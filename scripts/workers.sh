#!/usr/bin/env bash
# This host's Celery workers, one per queue it serves, from one setting:
#
#   WORKER_PROCESSES="io=4,cpu=2"  scripts/workers.sh
#
# queue=processes, comma-separated, from the environment or .env (the host kinds and what
# each needs: README, "Production").
# WORKER_VENV picks the environment (default .venv; GPU hosts: .venv-align, .venv-denoise).
# With WORKER_METRICS_PORT set, the workers serve metrics on it and the ports after it, in
# the order given. SIGTERM or Ctrl-C stops them all warmly (each finishes its tasks); when
# one worker exits, the others are stopped too, so a supervisor restarts the whole set.
set -euo pipefail
cd "$(dirname "$0")/.."

from_env_file() { sed -n "s/^$1=//p" .env 2>/dev/null | tail -n 1; }
spec="${WORKER_PROCESSES:-$(from_env_file WORKER_PROCESSES)}"
spec="${spec:-io=2,cpu=2,llm=2}"
venv="${WORKER_VENV:-.venv}"
port="${WORKER_METRICS_PORT:-}"
pids=()

stop_all() {
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap 'stop_all; exit 143' TERM INT

for item in ${spec//,/ }; do
  queue="${item%%=*}"
  processes="${item#*=}"
  if [[ ! "$queue" =~ ^[a-z_]+$ || ! "$processes" =~ ^[1-9][0-9]*$ ]]; then
    echo "WORKER_PROCESSES: '$item' is not queue=processes (for example io=4)" >&2
    stop_all
    exit 2
  fi
  WORKER_QUEUES="$queue" WORKER_METRICS_PORT="$port" \
    "$venv/bin/python" -m celery -A celery_worker worker -Q "$queue" -c "$processes" \
    -n "$queue@%h" --prefetch-multiplier 1 &
  pids+=("$!")
  if [[ -n "$port" ]]; then port=$((port + 1)); fi
done

set +e
wait -n "${pids[@]}"
status=$?
stop_all
exit "$status"
