# A throwaway Etsy StatsD daemon (statsd@0.9.0 from npm) for the metrics-statsd tests. Sourced by
# scripts/lib.sh `start_test_servers` (./dev test, .ci/run), never executed. Expects ROOT, log,
# free_port and TEST_SERVER_STOPS.
#
# The daemon is installed once into a cache folder (LEOFLOW_STATSD_CACHE, default
# ~/.cache/leoflow/statsd-0.9.0: npm runs only when it is not there yet), listens for UDP on a free
# loopback port with its management console (TCP) on another, keeps no backend and flushes once an
# hour — so nothing it received is reset while a test reads it back. It exports:
#   LEOFLOW_TEST_STATSD_ADDRESS    127.0.0.1:PORT  (UDP, where recorders send)
#   LEOFLOW_TEST_STATSD_MGMT_PORT  the management port (`counters`, `gauges`, `timers`, `delcounters` ...)
# Tests that need it (meson suite needs-statsd) skip when LEOFLOW_TEST_STATSD_ADDRESS is unset,
# except when CI=true: there they fail, and this script exports LEOFLOW_TEST_STATSD_ERROR saying why.

LEOFLOW_STATSD_VERSION=0.9.0

statsd_test_unavailable() {
  export LEOFLOW_TEST_STATSD_ERROR="$1"
  if [[ "${CI:-}" == "true" ]]; then
    log "ERROR: $1; CI=true, so every StatsD test will FAIL (nothing may be skipped in CI)"
  else
    log "$1; StatsD tests will skip"
  fi
  return 0
}

# install_test_statsd: npm install statsd into the cache folder unless it is there.
install_test_statsd() {
  local cache="${LEOFLOW_STATSD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/leoflow/statsd-$LEOFLOW_STATSD_VERSION}"
  LEOFLOW_STATSD_DIR="$cache/node_modules/statsd"
  [[ -f "$LEOFLOW_STATSD_DIR/stats.js" ]] && return 0
  if ! command -v npm >/dev/null 2>&1; then
    return 1
  fi
  mkdir -p "$cache" || return 1
  log "installing statsd@$LEOFLOW_STATSD_VERSION into $cache"
  (cd "$cache" && npm install --no-audit --no-fund --loglevel=error "statsd@$LEOFLOW_STATSD_VERSION" >/dev/null 2>&1) ||
    return 1
  [[ -f "$LEOFLOW_STATSD_DIR/stats.js" ]]
}

start_test_statsd() {
  unset LEOFLOW_TEST_STATSD_ERROR
  if ! command -v node >/dev/null 2>&1; then
    statsd_test_unavailable "node not found (./dev setup installs nodejs)"
    return 0
  fi
  if ! install_test_statsd; then
    statsd_test_unavailable "statsd@$LEOFLOW_STATSD_VERSION could not be installed with npm"
    return 0
  fi
  local port mgmt dir
  port="$(free_port)" || { statsd_test_unavailable "no free port for statsd"; return 0; }
  mgmt="$(free_port)" || { statsd_test_unavailable "no free port for statsd"; return 0; }
  dir="$(mktemp -d "${TMPDIR:-/tmp}/leoflow-test-statsd.XXXXXX")" || {
    statsd_test_unavailable "cannot create a folder for statsd"
    return 0
  }
  cat >"$dir/config.js" <<CONF
{
  address: "127.0.0.1",
  port: $port,
  mgmt_address: "127.0.0.1",
  mgmt_port: $mgmt,
  flushInterval: 3600000,
  backends: [],
  deleteIdleStats: false
}
CONF
  (cd "$LEOFLOW_STATSD_DIR" && nohup node stats.js "$dir/config.js" >"$dir/statsd.log" 2>&1 &
    echo $! >"$dir/statsd.pid")
  local i
  for ((i = 0; i < 100; i++)); do
    if printf 'health\n' | nc -q 1 -w 1 127.0.0.1 "$mgmt" 2>/dev/null | grep -q "health: up"; then
      break
    fi
    sleep 0.1
  done
  if [[ $i -ge 100 ]]; then
    local why
    why="$(tail -n 3 "$dir/statsd.log" 2>/dev/null | tr '\n' ' ' || true)"
    statsd_test_unavailable "statsd on port $port did not answer on its management port within 10 s${why:+ ($why)}"
    stop_test_statsd "$dir"
    return 0
  fi
  export LEOFLOW_TEST_STATSD_ADDRESS="127.0.0.1:$port"
  export LEOFLOW_TEST_STATSD_MGMT_PORT="$mgmt"
  TEST_SERVER_STOPS+=("stop_test_statsd $dir")
  log "statsd ready on 127.0.0.1:$port (management port $mgmt, files in $dir)"
}

# stop_test_statsd DIR: stops the daemon and removes its folder.
stop_test_statsd() {
  local dir="$1" pid=""
  [[ -f "$dir/statsd.pid" ]] && pid="$(cat "$dir/statsd.pid" 2>/dev/null || true)"
  if [[ -n "$pid" ]]; then
    kill "$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 30; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  unset LEOFLOW_TEST_STATSD_ADDRESS LEOFLOW_TEST_STATSD_MGMT_PORT
}

start_test_statsd
