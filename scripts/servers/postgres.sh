# A throwaway PostgreSQL 15 for the integration tests. Sourced by scripts/lib.sh `start_test_servers`
# (./dev test, .ci/run), never executed. Expects ROOT, log, free_port and TEST_SERVER_STOPS.
#
# A private cluster (initdb) on a free loopback port, its data and socket in a fresh folder under /tmp
# owned by `postgres` (root cannot run the server: TOOLCHAIN.md), with fsync off (throwaway data; a
# `pg_ctl restart -m fast` still checkpoints, so a restart loses nothing). pg_hba.conf asks one role,
# leoflow_secure, for a scram-sha-256 password over TCP and trusts everything else. It exports:
#   LEOFLOW_TEST_PG_DSN              postgresql://postgres@127.0.0.1:PORT/postgres (a superuser;
#                                    tests pick a schema of their own on it)
#   LEOFLOW_TEST_PG_PORT             PORT
#   LEOFLOW_TEST_PG_DIR              its folder (data/, postgres.log, the Unix socket)
#   LEOFLOW_TEST_PG_RESTART          the exact command that restarts it (`pg_ctl restart -m fast`, as
#                                    postgres, same options), waiting until it accepts connections
#   LEOFLOW_TEST_PG_STOP, LEOFLOW_TEST_PG_START  the two halves of it (`pg_ctl -m fast stop`, then
#                                    `start`), for a test that needs the server down for a while
#   LEOFLOW_TEST_PG_SECURE_USER      leoflow_secure: the role that needs a password
#   LEOFLOW_TEST_PG_SECURE_PASSWORD  its password
# Tests that need PostgreSQL skip when LEOFLOW_TEST_PG_DSN is unset, so `meson test` alone still
# works, EXCEPT when CI=true: there they fail (ARCHITECTURE §8.10: in CI nothing may be skipped), and
# this script says why loudly and exports LEOFLOW_TEST_PG_ERROR for the tests to repeat.
# Written for `set -euo pipefail` callers: every failure is handled here and reported, nothing exits
# the calling shell (./dev sets its EXIT trap only after the servers started).

LEOFLOW_TEST_PG_BIN="${LEOFLOW_TEST_PG_BIN:-/usr/lib/postgresql/15/bin}"

# pg_test_unavailable REASON: no server. Outside CI the PostgreSQL tests skip; in CI they fail.
pg_test_unavailable() {
  export LEOFLOW_TEST_PG_ERROR="$1"
  if [[ "${CI:-}" == "true" ]]; then
    log "ERROR: $1; CI=true, so every PostgreSQL test will FAIL (nothing may be skipped in CI)"
  else
    log "$1; PostgreSQL tests will skip"
  fi
  return 0
}

start_test_postgres() {
  unset LEOFLOW_TEST_PG_ERROR
  local bin="$LEOFLOW_TEST_PG_BIN"
  if [[ ! -x "$bin/initdb" || ! -x "$bin/pg_ctl" || ! -x "$bin/psql" ]]; then
    pg_test_unavailable "PostgreSQL 15 not found in $bin (./dev setup installs it)"
    return 0
  fi
  # As root the server must run as postgres; as anyone else, as oneself.
  local as_pg=""
  if [[ $(id -u) -eq 0 ]]; then
    if ! id postgres >/dev/null 2>&1; then
      pg_test_unavailable "running as root and there is no postgres user to run the server"
      return 0
    fi
    as_pg="runuser -u postgres --"
  fi
  local port dir
  port="$(free_port)" || { pg_test_unavailable "no free port for postgres"; return 0; }
  # Under /tmp (not $TMPDIR, which postgres may not be able to enter).
  dir="$(mktemp -d /tmp/leoflow-test-pg.XXXXXX)" || {
    pg_test_unavailable "cannot create a folder for postgres under /tmp"
    return 0
  }
  chmod 0755 "$dir"
  if [[ -n "$as_pg" ]] && ! chown postgres: "$dir"; then
    pg_test_unavailable "cannot hand $dir to the postgres user"
    rm -rf "$dir"
    return 0
  fi
  local data="$dir/data"
  # initdb and pg_ctl refuse a working directory postgres cannot enter: run them from /.
  if ! (cd / && $as_pg "$bin/initdb" -D "$data" -U postgres -A trust --no-sync -E UTF8 --locale=C \
      >"$dir/initdb.log" 2>&1); then
    pg_test_unavailable "initdb failed ($(tail -n 3 "$dir/initdb.log" 2>/dev/null | tr '\n' ' '))"
    rm -rf "$dir"
    return 0
  fi
  # The first matching line wins: the secure role needs its password over TCP; the rest is trusted.
  local secure_user="leoflow_secure" secure_password="right-password"
  cat >"$data/pg_hba.conf" <<EOF
# leoflow tests (scripts/servers/postgres.sh)
host    all  $secure_user  127.0.0.1/32  scram-sha-256
local   all  all                         trust
host    all  all           127.0.0.1/32  trust
EOF
  [[ -n "$as_pg" ]] && chown postgres: "$data/pg_hba.conf"
  # fsync off: the data is thrown away. Connections: every parallel test binary opens pools, feeds
  # and leader sessions of its own.
  local opts="-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off"
  opts+=" -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
  local ctl="cd / && $as_pg $bin/pg_ctl -D $data -l $dir/postgres.log -w -t 30 -s -o '$opts'"
  if ! (eval "$ctl start") >/dev/null 2>&1; then
    pg_test_unavailable "postgres did not start on port $port ($(tail -n 3 "$dir/postgres.log" 2>/dev/null | tr '\n' ' '))"
    stop_test_postgres "$port" "$dir"
    return 0
  fi
  local psql=("$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
  if ! "${psql[@]}" -c "CREATE ROLE $secure_user LOGIN PASSWORD '$secure_password'" \
      -c "GRANT CREATE ON DATABASE postgres TO $secure_user" >"$dir/setup.log" 2>&1; then
    pg_test_unavailable "postgres on port $port refused the test role ($(tr '\n' ' ' <"$dir/setup.log"))"
    stop_test_postgres "$port" "$dir"
    return 0
  fi
  export LEOFLOW_TEST_PG_DSN="postgresql://postgres@127.0.0.1:$port/postgres"
  export LEOFLOW_TEST_PG_PORT="$port"
  export LEOFLOW_TEST_PG_DIR="$dir"
  export LEOFLOW_TEST_PG_RESTART="$ctl -m fast restart"
  export LEOFLOW_TEST_PG_STOP="$ctl -m fast stop"
  export LEOFLOW_TEST_PG_START="$ctl start"
  export LEOFLOW_TEST_PG_SECURE_USER="$secure_user"
  export LEOFLOW_TEST_PG_SECURE_PASSWORD="$secure_password"
  TEST_SERVER_STOPS+=("stop_test_postgres $port $dir")
  log "postgres ready on 127.0.0.1:$port (data in $dir)"
}

# stop_test_postgres PORT DIR: stops the server (a restart test may have replaced its process, so the
# pid is read now, from postmaster.pid, not at start) and removes its folder.
stop_test_postgres() {
  local port="$1" dir="$2"
  local bin="$LEOFLOW_TEST_PG_BIN" data="$dir/data"
  local as_pg=""
  [[ $(id -u) -eq 0 ]] && as_pg="runuser -u postgres --"
  if [[ -f "$data/postmaster.pid" ]]; then
    local pid
    pid="$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)"
    (cd / && $as_pg "$bin/pg_ctl" -D "$data" -m immediate -w -t 10 -s stop) >/dev/null 2>&1 || true
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -rf "$dir"
  unset LEOFLOW_TEST_PG_DSN LEOFLOW_TEST_PG_PORT LEOFLOW_TEST_PG_DIR LEOFLOW_TEST_PG_RESTART \
    LEOFLOW_TEST_PG_STOP LEOFLOW_TEST_PG_START LEOFLOW_TEST_PG_SECURE_USER LEOFLOW_TEST_PG_SECURE_PASSWORD
}

start_test_postgres
