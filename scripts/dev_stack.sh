#!/usr/bin/env bash
# The dev stack behind `./dev up` and `./dev down` (ARCHITECTURE §8.10): a Redis server on a free
# loopback port with its data (AOF) in .dev/redis, a scheduler with config/dev-redis.toml and
# dispatcher-local, the example DAGs synced and one of them run to the end.
#
# `up --store postgres` runs the same stack on a private PostgreSQL 15 cluster instead (config/
# postgres.toml). PostgreSQL refuses to run as root, so the cluster belongs to the `postgres` user and
# its data lives under /tmp (a clone under /root is not traversable by that user), linked from
# .dev/postgres. The chosen store is remembered in .dev/store for `down`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEV_DIR="$ROOT/.dev"
BIN="$ROOT/build/core/host/leoflow"
# shellcheck source=lib.sh
source "$ROOT/scripts/lib.sh"

pid_alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

PG_BIN=/usr/lib/postgresql/15/bin

# write_env STORE PORT
write_env() {
  local config store_line
  if [[ "$1" == postgres ]]; then
    config="$ROOT/config/postgres.toml"
    store_line="export LEOFLOW_PG_DSN=\"postgresql://postgres@127.0.0.1:$2/leoflow\""
  else
    config="$ROOT/config/dev-redis.toml"
    store_line="export LEOFLOW_REDIS_URL=\"redis://127.0.0.1:$2/0\""
  fi
  cat >"$DEV_DIR/env" <<EOF
# source this file to use the dev stack's leoflow by hand
export LEOFLOW_CONFIG="$config"
$store_line
export LEOFLOW_DEV_DIR="$DEV_DIR"
export LEOFLOW_PROJECT_DIR="$ROOT"
export PATH="$ROOT/build/core/host:\$PATH"
EOF
}

# The cluster's folder under /tmp, one per clone (named after the clone's path).
pg_dir() {
  echo "/tmp/leoflow-dev-postgres-$(printf '%s' "$ROOT" | md5sum | cut -c1-12)"
}

pg_ctl_as_postgres() { (cd / && runuser -u postgres -- "$PG_BIN/pg_ctl" "$@"); }

start_postgres() {
  local dir port
  dir="$(pg_dir)"
  if [[ ! -x "$PG_BIN/initdb" ]]; then
    log "PostgreSQL 15 is not installed ($PG_BIN/initdb missing; ./dev setup installs it)"
    exit 1
  fi
  if [[ ! -f "$dir/data/PG_VERSION" ]]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    chown postgres: "$dir"
    (cd / && runuser -u postgres -- "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust >/dev/null) || {
      log "initdb failed in $dir/data"
      exit 1
    }
  fi
  ln -sfn "$dir" "$DEV_DIR/postgres"
  if pg_ctl_as_postgres -D "$dir/data" status >/dev/null 2>&1; then
    log "postgres already running (port $(cat "$DEV_DIR/postgres.port"))"
    return
  fi
  port="$(cat "$DEV_DIR/postgres.port" 2>/dev/null || free_port)"
  pg_ctl_as_postgres -D "$dir/data" -w -l "$dir/postgres.log" \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null || {
    log "postgres did not start; see $dir/postgres.log"
    exit 1
  }
  echo "$port" >"$DEV_DIR/postgres.port"
  if ! psql -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'leoflow'" |
    grep -q 1; then
    psql -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE leoflow" >/dev/null
  fi
  log "postgres on 127.0.0.1:$port (data in $dir, linked from .dev/postgres)"
}

stop_postgres() {
  local dir
  dir="$(pg_dir)"
  if [[ -f "$dir/data/PG_VERSION" ]] && pg_ctl_as_postgres -D "$dir/data" status >/dev/null 2>&1; then
    pg_ctl_as_postgres -D "$dir/data" -w -m fast stop >/dev/null && log "postgres stopped"
  fi
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
  # The dev configs serve HTTP on 8790 (example_http_check calls it): say so if it is taken.
  if (exec 3<>/dev/tcp/127.0.0.1/8790) 2>/dev/null; then
    log "port 8790 is taken (the dev configs' [http] listen); stop what holds it, or edit the config"
    exit 1
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
  local store=redis
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --store) store="${2:-}"; shift; [[ $# -gt 0 ]] && shift ;;
      --store=*) store="${1#--store=}"; shift ;;
      *) log "unknown option '$1' (usage: ./dev up [--store redis|postgres])"; exit 2 ;;
    esac
  done
  if [[ "$store" != redis && "$store" != postgres ]]; then
    log "--store must be redis or postgres, got '$store'"
    exit 2
  fi
  mkdir -p "$DEV_DIR"
  local previous
  previous="$(cat "$DEV_DIR/store" 2>/dev/null || echo redis)"
  if [[ "$previous" != "$store" ]] && pid_alive "$DEV_DIR/scheduler.pid"; then
    log "the dev stack runs on $previous; ./dev down first"
    exit 2
  fi
  # Only what the stack runs (leoflow and the plugins): the test suites are ./dev test's business.
  LEOFLOW_BUILD_DIR="$ROOT/build" "$ROOT/dev" build --stack >/dev/null
  echo "$store" >"$DEV_DIR/store"
  if [[ "$store" == postgres ]]; then
    start_postgres
    write_env postgres "$(cat "$DEV_DIR/postgres.port")"
  else
    start_redis
    write_env redis "$(cat "$DEV_DIR/redis.port")"
  fi
  # shellcheck disable=SC1091
  source "$DEV_DIR/env"
  start_scheduler
  log "syncing examples/dags"
  "$BIN" dags sync "$ROOT/examples/dags"
  log "triggering example_diamond and following it to the end"
  local code=0
  "$BIN" runs trigger example_diamond --wait --timeout 120 || code=$?
  log "triggering example_http_check (an http_api task run by inline-http against the scheduler's /healthz)"
  "$BIN" runs trigger example_http_check --wait --timeout 120 || code=$?
  cat <<EOF

The dev stack is up.
  source .dev/env                      # then use leoflow directly:
  leoflow dags list
  leoflow runs trigger example_flaky_retry --wait
  leoflow runs list
  leoflow status
  curl -s 127.0.0.1:8790/api/v1/dags   # the JSON API (read-only without a token)
  tail -f .dev/scheduler.log           # the scheduler; task logs are in .dev/logs/
  ./dev down                           # stop the scheduler and the store (data stays in .dev/)
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
  stop_postgres
}

case "${1:-}" in
  up) shift; up "$@" ;;
  down) down ;;
  *) echo "usage: $0 up [--store redis|postgres] | down" >&2; exit 2 ;;
esac
