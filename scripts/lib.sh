# Shared shell helpers for scripts/*. Sourced, not run.
set -euo pipefail

export PATH="$HOME/.cargo/bin:$PATH"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Downloads and installs that outlive a clone: cached between runs.
CACHE=${PASSERELLE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/passerelle-dev}
# Running services' pids, logs and data: per clone, wiped by `stack down`.
STATE=${PASSERELLE_STACK_DIR:-$ROOT/.stack}
VENV=$CACHE/venv
mkdir -p "$CACHE" "$STATE"

say() { printf '\033[1m==>\033[0m %s\n' "$*" >&2; }

# wait_http URL SECONDS: polls until the URL answers 2xx/3xx, or fails after the deadline.
wait_http() {
  local url=$1 deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    if ((SECONDS >= deadline)); then say "timed out waiting for $url"; return 1; fi
    sleep 0.5
  done
}

# running NAME: true when the service's recorded pid is alive.
running() { [[ -f $STATE/$1.pid ]] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# start NAME CMD...: starts a service in the background, logs to $STATE/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" >"$STATE/$name.log" 2>&1 < /dev/null &
  echo $! >"$STATE/$name.pid"
}

# stop NAME: stops the service's whole process group.
stop() {
  local name=$1
  if running "$name"; then
    local pid; pid=$(cat "$STATE/$name.pid")
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$STATE/$name.pid"
}
