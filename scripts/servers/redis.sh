# A throwaway Redis for the integration tests. Sourced by scripts/lib.sh `start_test_servers`
# (./dev test, .ci/run), never executed. Expects ROOT, log, free_port and TEST_SERVER_STOPS.
#
# The server listens on a free loopback port, keeps its files in a fresh temporary folder and runs
# with AOF on (`appendonly yes`, `appendfsync everysec`: ARCHITECTURE §8.9) so a test can SHUTDOWN
# it and start it again on the same port and folder without losing data. It exports:
#   LEOFLOW_TEST_REDIS_URL    redis://127.0.0.1:PORT/0   (tests pick their own db number on it)
#   LEOFLOW_TEST_REDIS_PORT   PORT
#   LEOFLOW_TEST_REDIS_DIR    its data folder (AOF, pidfile, log)
#   LEOFLOW_TEST_REDIS_START  the exact command that (re)starts it, daemonized, with the same options
# Tests that need Redis skip when LEOFLOW_TEST_REDIS_URL is unset, so `meson test` alone still works.
# Works as root (redis-server only warns). Written for `set -euo pipefail` callers: every failure
# is handled here and reported, nothing exits the calling shell.

start_test_redis() {
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    log "redis-server or redis-cli not found (./dev setup installs them); Redis tests will skip"
    return 0
  fi
  local port dir
  port="$(free_port)" || { log "no free port for redis; Redis tests will skip"; return 0; }
  dir="$(mktemp -d "${TMPDIR:-/tmp}/leoflow-test-redis.XXXXXX")" || {
    log "cannot create a folder for redis; Redis tests will skip"
    return 0
  }
  # 64 databases: each test binary flushes only its own.
  local start="redis-server --bind 127.0.0.1 --port $port --dir $dir --databases 64"
  start+=" --appendonly yes --appendfsync everysec --save ''"
  start+=" --daemonize yes --pidfile $dir/redis.pid --logfile $dir/redis.log"
  if ! (cd "$dir" && eval "$start"); then
    log "redis-server did not start (see $dir/redis.log); Redis tests will skip"
    return 0
  fi
  local i
  for ((i = 0; i < 100; i++)); do
    if [[ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)" == "PONG" ]]; then
      break
    fi
    sleep 0.05
  done
  if [[ $i -ge 100 ]]; then
    log "redis on port $port did not answer PING within 5 s (see $dir/redis.log); Redis tests will skip"
    stop_test_redis "$port" "$dir"
    return 0
  fi
  export LEOFLOW_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  export LEOFLOW_TEST_REDIS_PORT="$port"
  export LEOFLOW_TEST_REDIS_DIR="$dir"
  export LEOFLOW_TEST_REDIS_START="$start"
  TEST_SERVER_STOPS+=("stop_test_redis $port $dir")
  log "redis ready on 127.0.0.1:$port (data in $dir)"
}

# stop_test_redis PORT DIR: stops the server (a restart test may have replaced its process, so the
# pid is read now, not at start) and removes its folder.
stop_test_redis() {
  local port="$1" dir="$2"
  redis-cli -h 127.0.0.1 -p "$port" shutdown nosave >/dev/null 2>&1 || true
  local pid=""
  [[ -f "$dir/redis.pid" ]] && pid="$(cat "$dir/redis.pid" 2>/dev/null || true)"
  if [[ -n "$pid" ]]; then
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
  rm -rf "$dir"
  unset LEOFLOW_TEST_REDIS_URL LEOFLOW_TEST_REDIS_PORT LEOFLOW_TEST_REDIS_DIR LEOFLOW_TEST_REDIS_START
}

start_test_redis
