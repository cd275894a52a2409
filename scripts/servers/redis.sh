# A throwaway Redis for the integration tests. Sourced by scripts/lib.sh `start_test_servers`
# (./dev test, .ci/run), never executed. Expects ROOT, log, free_port and TEST_SERVER_STOPS.
#
# The server listens on a free loopback port, keeps its files in a fresh temporary folder and runs
# with AOF on (`appendonly yes`, `appendfsync everysec`: ARCHITECTURE §8.9) so a test can SHUTDOWN
# it and start it again on the same port and folder without losing data. It exports:
#   LEOFLOW_TEST_REDIS_URL    redis://127.0.0.1:PORT/0   (tests pick their own db number on it)
#   LEOFLOW_TEST_REDIS_SOCKET its unix socket (DIR/redis.sock; under a TMPDIR too long for a
#                             socket's path, in a short folder under /tmp): for unix:// URLs
#   LEOFLOW_TEST_REDIS_PORT   PORT
#   LEOFLOW_TEST_REDIS_DIR    its data folder (AOF, pidfile, log)
#   LEOFLOW_TEST_REDIS_START  the exact command that (re)starts it, daemonized, with the same options
# Tests that need Redis (meson suite needs-redis) skip when LEOFLOW_TEST_REDIS_URL is unset, so
# `meson test` alone still works, EXCEPT when CI=true: there they fail (ARCHITECTURE §8.10: in CI
# nothing may be skipped), and this script says why loudly and exports LEOFLOW_TEST_REDIS_ERROR for
# the tests to repeat.
# Works as root (redis-server only warns). Written for `set -euo pipefail` callers: every failure
# is handled here and reported, nothing exits the calling shell.

# redis_test_unavailable REASON: no server. Outside CI the Redis tests skip; in CI they fail.
redis_test_unavailable() {
  export LEOFLOW_TEST_REDIS_ERROR="$1"
  if [[ "${CI:-}" == "true" ]]; then
    log "ERROR: $1; CI=true, so every Redis test will FAIL (nothing may be skipped in CI)"
  else
    log "$1; Redis tests will skip"
  fi
  return 0
}

start_test_redis() {
  unset LEOFLOW_TEST_REDIS_ERROR
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    redis_test_unavailable "redis-server or redis-cli not found (./dev setup installs them)"
    return 0
  fi
  local port dir
  port="$(free_port)" || { redis_test_unavailable "no free port for redis"; return 0; }
  dir="$(mktemp -d "${TMPDIR:-/tmp}/leoflow-test-redis.XXXXXX")" || {
    redis_test_unavailable "cannot create a folder for redis"
    return 0
  }
  # A unix socket's path holds at most 107 bytes (sun_path), and redis-server does not start with a
  # longer one: under a long TMPDIR the socket goes into a short folder of its own under /tmp.
  local socket_dir="$dir" socket="$dir/redis.sock"
  if ((${#socket} > 100)); then
    socket_dir="$(mktemp -d /tmp/lf-redis.XXXXXX)" || {
      redis_test_unavailable "cannot create a folder for redis's socket"
      rm -rf "$dir"
      return 0
    }
    socket="$socket_dir/redis.sock"
  fi
  # 64 databases: each test binary flushes only its own.
  local start="redis-server --bind 127.0.0.1 --port $port --dir $dir --databases 64"
  start+=" --unixsocket $socket --unixsocketperm 700"
  start+=" --appendonly yes --appendfsync everysec --save ''"
  start+=" --daemonize yes --pidfile $dir/redis.pid --logfile $dir/redis.log"
  local why
  if ! (cd "$dir" && eval "$start"); then
    why="$(tail -n 3 "$dir/redis.log" 2>/dev/null | tr '\n' ' ' || true)"
    redis_test_unavailable "redis-server did not start${why:+ ($why)}"
    rm -rf "$dir" "$socket_dir"
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
    why="$(tail -n 3 "$dir/redis.log" 2>/dev/null | tr '\n' ' ' || true)"
    redis_test_unavailable "redis on port $port did not answer PING within 5 s${why:+ ($why)}"
    stop_test_redis "$port" "$dir" "$socket_dir"
    return 0
  fi
  export LEOFLOW_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
  export LEOFLOW_TEST_REDIS_PORT="$port"
  export LEOFLOW_TEST_REDIS_SOCKET="$socket"
  export LEOFLOW_TEST_REDIS_DIR="$dir"
  export LEOFLOW_TEST_REDIS_START="$start"
  TEST_SERVER_STOPS+=("stop_test_redis $port $dir $socket_dir")
  log "redis ready on 127.0.0.1:$port (data in $dir)"
}

# stop_test_redis PORT DIR [SOCKET_DIR]: stops the server (a restart test may have replaced its
# process, so the pid is read now, not at start) and removes its folders.
stop_test_redis() {
  local port="$1" dir="$2" socket_dir="${3:-$2}"
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
  rm -rf "$dir" "$socket_dir"
  unset LEOFLOW_TEST_REDIS_URL LEOFLOW_TEST_REDIS_PORT LEOFLOW_TEST_REDIS_SOCKET LEOFLOW_TEST_REDIS_DIR \
    LEOFLOW_TEST_REDIS_START
}

start_test_redis
