// What the Redis integration tests share: the test server's address, a database per test binary,
// and the plumbing a PluginContext needs (a logger, a clock, a TaskEvents sink, a Recorder).
//
// The server comes from scripts/servers/redis.sh (./dev test): LEOFLOW_TEST_REDIS_URL and friends.
// Without it every Redis test skips, so `meson test` alone still works, except when CI=true: there a
// missing server fails the tests (ARCHITECTURE §8.10: in CI nothing may be skipped).
#pragma once

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include <leoflow/config.h>
#include <leoflow/context.h>

namespace leoflow::testing::redis {

/// $LEOFLOW_TEST_REDIS_URL, or nullopt when no test server runs.
std::optional<std::string> serverUrl();
/// The message tests skip with when there is no server.
inline constexpr const char* kNoServer =
    "LEOFLOW_TEST_REDIS_URL is unset: no test Redis (./dev test starts one, see scripts/servers/redis.sh)";

/// CI=true: a missing server is a failure, not a skip.
inline bool inCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

/// Why there is no server: kNoServer, with the script's reason ($LEOFLOW_TEST_REDIS_ERROR) when it
/// gave one.
inline std::string noServerMessage() {
  std::string m = kNoServer;
  if (const char* why = std::getenv("LEOFLOW_TEST_REDIS_ERROR")) m += "; the script said: " + std::string(why);
  if (inCi()) m += "; CI=true, where a missing server is a failure, not a skip";
  return m;
}

/// Skips the test (or, in CI, fails it) when there is no test server. For TEST bodies and SetUp().
#define LEOFLOW_REQUIRE_TEST_REDIS()                                                 \
  do {                                                                               \
    if (!::leoflow::testing::redis::serverUrl()) {                                   \
      if (::leoflow::testing::redis::inCi()) FAIL() << ::leoflow::testing::redis::noServerMessage(); \
      GTEST_SKIP() << ::leoflow::testing::redis::noServerMessage();                  \
    }                                                                                \
  } while (false)

/// The test server's URL with another database number. Each test binary owns databases of its own
/// (the server has 64), so binaries that meson runs in parallel never flush each other's data.
std::string urlForDb(int db);
/// FLUSHDB on that database of the test server; throws std::runtime_error when it cannot.
void flushDb(int db);
/// Runs one command on the test server (e.g. {"DEBUG", "SLEEP", "0.5"}), for tests that poke at it.
std::string serverCommand(int db, const std::vector<std::string>& args);

/// A config table as the host would hand it over, defaults filled in.
ConfigView storeConfig(const std::string& url, const std::string& key_prefix = "leoflow",
                       std::int64_t lease_ms = 3000, std::int64_t command_timeout_ms = 2000);

/// A context lent to one plugin object; `replica_id` names the replica for leases.
PluginContext makeContext(const std::string& replica_id = "replica-test");

/// Starts `LEOFLOW_TEST_REDIS_START` again (after a SHUTDOWN) and waits until it answers PING.
/// false when there is no such command or the server does not come back within 10 s.
bool restartServer();
/// SHUTDOWN of the test server (AOF is flushed first); waits until the port is closed.
bool shutdownServer();

}  // namespace leoflow::testing::redis
