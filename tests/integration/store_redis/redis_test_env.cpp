#include "redis_test_env.h"

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <spdlog/logger.h>

#include "support/null_roles.h"

namespace leoflow::testing::redis {
namespace {


// Lives for the whole process: contexts lent to stores only hold references.
struct Plumbing {
  WallClock clock;
  NullTaskEvents events;
  NullRecorder recorder;
  // The plugin's warnings (Redis going away in the restart tests) are part of what a reader of a
  // failing test wants to see.
  std::shared_ptr<spdlog::logger> logger = stderrTestLogger("plugin.store-redis", spdlog::level::warn);
};

Plumbing& plumbing() {
  static Plumbing p;
  return p;
}

int envInt(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? 0 : std::atoi(v);
}

struct Ctx {
  redisContext* c;
  ~Ctx() {
    if (c != nullptr) redisFree(c);
  }
};

}  // namespace

std::optional<std::string> serverUrl() {
  const char* url = std::getenv("LEOFLOW_TEST_REDIS_URL");
  if (url == nullptr || *url == '\0') return std::nullopt;
  return std::string(url);
}

std::string urlForDb(int db) {
  const auto url = serverUrl();
  if (!url) throw std::runtime_error(kNoServer);
  const auto slash = url->find('/', std::string("redis://").size());
  return (slash == std::string::npos ? *url : url->substr(0, slash)) + "/" + std::to_string(db);
}

std::string serverCommand(int db, const std::vector<std::string>& args) {
  const int port = envInt("LEOFLOW_TEST_REDIS_PORT");
  if (port == 0) throw std::runtime_error(kNoServer);
  Ctx ctx{redisConnectWithTimeout("127.0.0.1", port, timeval{5, 0})};
  if (ctx.c == nullptr || ctx.c->err != 0) {
    throw std::runtime_error("cannot reach the test redis: " + std::string(ctx.c ? ctx.c->errstr : "no memory"));
  }
  auto run = [&](const std::vector<std::string>& argv) {
    std::vector<const char*> ptrs;
    std::vector<size_t> lens;
    for (const auto& a : argv) {
      ptrs.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(redisCommandArgv(ctx.c, static_cast<int>(argv.size()), ptrs.data(), lens.data()));
    if (reply == nullptr) throw std::runtime_error("test redis: " + std::string(ctx.c->errstr));
    std::string out = reply->str != nullptr ? std::string(reply->str, reply->len) : std::to_string(reply->integer);
    const bool error = reply->type == REDIS_REPLY_ERROR;
    freeReplyObject(reply);
    if (error) throw std::runtime_error("test redis: " + out);
    return out;
  };
  run({"SELECT", std::to_string(db)});
  return run(args);
}

void flushDb(int db) { serverCommand(db, {"FLUSHDB"}); }

ConfigView storeConfig(const std::string& url, const std::string& key_prefix, std::int64_t lease_ms,
                       std::int64_t command_timeout_ms) {
  return ConfigView("store.config", {{"url", url},
                                     {"connect_timeout_ms", std::int64_t{2000}},
                                     {"command_timeout_ms", command_timeout_ms},
                                     {"key_prefix", key_prefix},
                                     {"lease_ms", lease_ms}});
}

PluginContext makeContext(const std::string& replica_id) {
  Plumbing& p = plumbing();
  return PluginContext("store-redis", p.logger, p.clock, p.events, p.recorder, std::chrono::seconds(15), replica_id);
}

bool shutdownServer() {
  const int port = envInt("LEOFLOW_TEST_REDIS_PORT");
  if (port == 0) return false;
  {
    Ctx ctx{redisConnectWithTimeout("127.0.0.1", port, timeval{5, 0})};
    if (ctx.c == nullptr || ctx.c->err != 0) return false;
    // No reply comes back: the server closes the connection once the AOF is on disk.
    auto* reply = static_cast<redisReply*>(redisCommand(ctx.c, "SHUTDOWN"));
    if (reply != nullptr) freeReplyObject(reply);
  }
  for (int i = 0; i < 200; ++i) {
    Ctx probe{redisConnectWithTimeout("127.0.0.1", port, timeval{0, 200000})};
    if (probe.c == nullptr || probe.c->err != 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

bool restartServer() {
  const char* start = std::getenv("LEOFLOW_TEST_REDIS_START");
  const int port = envInt("LEOFLOW_TEST_REDIS_PORT");
  if (start == nullptr || port == 0) return false;
  const std::string command = std::string("cd / && ") + start;
  if (std::system(command.c_str()) != 0) return false;
  for (int i = 0; i < 200; ++i) {
    try {
      if (serverCommand(0, {"PING"}) == "PONG") return true;
    } catch (const std::exception&) {
      // not up yet, or still loading the AOF
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

}  // namespace leoflow::testing::redis
