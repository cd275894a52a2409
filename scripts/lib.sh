# Shared by ./dev and .ci/run: package installation and the servers the tests need.
# Sourced, not executed. Expects ROOT to be set.

# Every Debian package the project needs (docs/toolchain.md).
LEOFLOW_PACKAGES=(
  meson ninja-build pkg-config cmake g++
  libboost-dev libboost-filesystem-dev libpqxx-dev libhiredis-dev libspdlog-dev libfmt-dev
  libtomlplusplus-dev libcurl4-openssl-dev nlohmann-json3-dev libcli11-dev libcpp-httplib-dev
  libhowardhinnant-date-dev tzdata libgtest-dev libgmock-dev libbenchmark-dev libyaml-dev
  postgresql redis-server redis-tools netcat-openbsd python3-kubernetes gcovr nodejs
  chromium chromium-driver fonts-dejavu-core bash-static
)
# bash-static: dispatcher-local's `bash` setting can name it (the same bash linked statically, a cheaper
# start); its tests run tasks in it beside bash.
# chromium, chromium-driver: tests/browser drives the web page in headless chromium over WebDriver;
# fonts-dejavu-core: the state glyphs (✓ ✗ ↻ ...) render in it (apt's --no-install-recommends
# would otherwise leave chromium without such a font).
# npm (part of NodeSource's nodejs; Debian's own package is `npm`): scripts/servers/statsd.sh npm-installs the StatsD daemon (statsd@0.9.0) for the
# metrics-statsd tests once, into ~/.cache/leoflow (LEOFLOW_STATSD_CACHE), and skips npm when it is there.

log() { printf '%s\n' "dev: $*" >&2; }

# Installs whatever is missing; a no-op (and no network) when everything is there.
install_packages() {
  local missing=()
  local pkg
  for pkg in "${LEOFLOW_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
      missing+=("$pkg")
    fi
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  log "installing ${missing[*]}"
  local sudo=()
  [[ $(id -u) -ne 0 ]] && sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# Every build on this machine takes one lock (several people and CI share its cores): ninja, and the
# meson setup/configure that rewrites a build directory, run under it. Held only for the command.
LEOFLOW_BUILD_LOCK="${LEOFLOW_BUILD_LOCK:-/tmp/leoflow-build.lock}"

# locked COMMAND...: runs COMMAND holding the build lock, waiting for it (and saying so) if taken.
locked() {
  if ! flock -n "$LEOFLOW_BUILD_LOCK" true 2>/dev/null; then
    log "waiting for the build lock $LEOFLOW_BUILD_LOCK (another build is running)"
  fi
  flock "$LEOFLOW_BUILD_LOCK" "$@"
}

# A free TCP port on loopback (the kernel picks it).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Test servers are started here as the suites come to need them; each exports the address its
# tests read and registers its own stop step.
TEST_SERVER_STOPS=()

start_test_servers() {
  local f
  for f in "$ROOT"/scripts/servers/*.sh; do
    [[ -e "$f" ]] || continue
    # shellcheck disable=SC1090
    source "$f"
  done
}

stop_test_servers() {
  local i
  for ((i = ${#TEST_SERVER_STOPS[@]} - 1; i >= 0; i--)); do
    eval "${TEST_SERVER_STOPS[$i]}" || true
  done
  TEST_SERVER_STOPS=()
}
