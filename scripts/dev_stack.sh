#!/usr/bin/env bash
# The dev stack behind `./dev up` and `./dev down` (ARCHITECTURE §8.10): a Redis server on a free
# loopback port with its data (AOF) in .dev/redis, a scheduler with config/dev-redis.toml and
# dispatcher-local, the example DAGs synced and one of them run to the end.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV_DIR="$ROOT/.dev"
BIN="$ROOT/build/core/host/leoflow"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_env() {
  cat >"$DEV_DIR/env" <<EOF
# source this file to use the dev stack's leoflow by hand
export LEOFLOW_CONFIG="$ROOT/config/dev-redis.toml"
export LEOFLOW_REDIS_URL="redis://127.0.0.1:$1/0"
export LEOFLOW_DEV_DIR="$DEV_DIR"
export LEOFLOW_PROJECT_DIR="$ROOT"
export PATH="$ROOT/build/core/host:\$PATH"
EOF
}

start_redis() {
  mkdir -p "$DEV_DIR/redis"
  if pid_alive "$DEV_DIR/redis.pid"; then
    log "redis already running (port $(cat "$DEV_DIR/redis.port"))"
    return
  fi
  local port
  port="$(free_port)"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$DEV_DIR/redis" \
    --appendonly yes --appendfsync everysec --save '' \
    --daemonize yes --pidfile "$DEV_DIR/redis.pid" --logfile "$DEV_DIR/redis.log" >/dev/null
  for _ in $(seq 1 200); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  redis-cli -p "$port" ping >/dev/null || { log "redis did not start; see $DEV_DIR/redis.log"; exit 1; }
  echo "$port" >"$DEV_DIR/redis.port"
  log "redis on 127.0.0.1:$port (data in .dev/redis, AOF on)"
}

start_scheduler() {
  if pid_alive "$DEV_DIR/scheduler.pid"; then
    log "scheduler already running (pid $(cat "$DEV_DIR/scheduler.pid"))"
    return
  fi
  # setsid: the scheduler outlives this script and the terminal it ran in.
  setsid "$BIN" scheduler >>"$DEV_DIR/scheduler.log" 2>&1 </dev/null &
  echo $! >"$DEV_DIR/scheduler.pid"
  for _ in $(seq 1 100); do
    if "$BIN" status --json 2>/dev/null | grep -q '"holder": "'; then break; fi
    if ! pid_alive "$DEV_DIR/scheduler.pid"; then
      log "the scheduler exited; its log:"
      tail -n 20 "$DEV_DIR/scheduler.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  log "scheduler running (pid $(cat "$DEV_DIR/scheduler.pid"), log .dev/scheduler.log)"
}

up() {
  mkdir -p "$DEV_DIR"
  "$ROOT/dev" build >/dev/null
  start_redis
  write_env "$(cat "$DEV_DIR/redis.port")"
  # shellcheck disable=SC1091
  source "$DEV_DIR/env"
  start_scheduler
  log "syncing examples/dags"
  "$BIN" dags sync "$ROOT/examples/dags"
  log "triggering example_diamond and following it to the end"
  local code=0
  "$BIN" runs trigger example_diamond --wait --timeout 120 || code=$?
  cat <<EOF

The dev stack is up.
  source .dev/env                      # then use leoflow directly:
  leoflow dags list
  leoflow runs trigger example_flaky_retry --wait
  leoflow runs list
  leoflow status
  tail -f .dev/scheduler.log           # the scheduler; task logs are in .dev/logs/
  ./dev down                           # stop the scheduler and Redis (data stays in .dev/)
EOF
  return "$code"
}

down() {
  if pid_alive "$DEV_DIR/scheduler.pid"; then
    local pid
    pid="$(cat "$DEV_DIR/scheduler.pid")"
    kill -TERM "$pid"
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    log "scheduler stopped"
  fi
  rm -f "$DEV_DIR/scheduler.pid"
  if pid_alive "$DEV_DIR/redis.pid"; then
    redis-cli -p "$(cat "$DEV_DIR/redis.port")" shutdown >/dev/null 2>&1 || kill "$(cat "$DEV_DIR/redis.pid")"
    log "redis stopped"
  fi
  rm -f "$DEV_DIR/redis.pid"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
