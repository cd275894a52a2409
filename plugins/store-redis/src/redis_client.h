// A small pool of Redis connections shared by the threads that call the Store (or the Leader).
//
// Thread-safe. Each call borrows one connection, runs one command or script and gives it back, so
// concurrent callers (the engine, dispatch workers, executor report threads) never wait on each
// other's round trip. Failures are contained:
// - a broken connection is dropped with every idle one opened before it (they died with the same
//   server), and the call returns kUnavailable at once; the next call connects afresh;
// - while Redis cannot be reached, connection attempts back off (25 ms doubling to 1 s) and calls
//   in between fail fast with kUnavailable, so the engine keeps ticking and recovers by itself;
// - no socket operation waits longer than command_timeout_ms.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <leoflow/status.h>

#include "connection.h"
#include "lua_scripts.h"
#include "settings.h"

namespace leoflow::plugins::store_redis {

class RedisClient {
 public:
  RedisClient(Settings settings, std::shared_ptr<spdlog::logger> logger);

  /// Connects once and loads every script (SCRIPT LOAD). Start-up errors are loud (ARCHITECTURE
  /// §3) and name the URL and the config key: UnavailableError when Redis cannot be reached, does
  /// not answer within the timeouts or is not ready yet (the host retries or exits 3, §8.6);
  /// std::runtime_error when it answers and refuses (a wrong password, a database out of range).
  void start();

  /// Runs one command. A Redis error reply becomes a Status (see statusFromError).
  Result<ReplyPtr> command(const std::vector<std::string>& args);
  /// Runs a script by EVALSHA, falling back to EVAL when the server lost its script cache (a
  /// restart): the script is then cached again. `args` are the script's own arguments; the key
  /// prefix and the channel are put in front (lua/common.lua's calling convention).
  Result<ReplyPtr> eval(const lua::ScriptSource& script, const std::vector<std::string>& args);
  /// Runs `script` once per argument list, pipelined: the calls go in one write and their replies
  /// are read in order — one round trip for all, each call still a script of its own (other clients'
  /// commands may run between two). One result per call, as eval() would answer it; a call answered
  /// NOSCRIPT is sent again by eval(). When the connection breaks, every call not yet answered is
  /// kUnavailable (it may or may not have run).
  std::vector<Result<ReplyPtr>> evalMany(const lua::ScriptSource& script,
                                         const std::vector<std::vector<std::string>>& calls);
  /// Runs `commands` as one MULTI/EXEC transaction, sent in one write: Redis executes them together,
  /// nothing in between, which makes a consistent snapshot without a script. Returns EXEC's array
  /// (one reply per command; a command's error reply stays in it) or the Status of a transaction
  /// Redis refused (EXECABORT: a command it could not queue).
  Result<ReplyPtr> transaction(std::vector<std::vector<std::string>> commands);

  const Settings& settings() const noexcept { return settings_; }
  const std::string& channel() const noexcept { return channel_; }
  const std::shared_ptr<spdlog::logger>& logger() const noexcept { return logger_; }

 private:
  struct Pooled {
    std::unique_ptr<Connection> conn;
    std::uint64_t generation = 0;
  };

  Result<Pooled> acquire();
  void release(Pooled pooled);
  void connectionFailed(const Pooled& pooled);
  Result<ReplyPtr> roundTrip(const std::vector<std::string>& args);
  /// EVALSHA (EVAL before start() cached the script), the prefix, the channel, then `args`.
  std::vector<std::string> scriptCall(const lua::ScriptSource& script, const std::vector<std::string>& args) const;
  /// A script's reply as eval() answers it: an error reply becomes its Status (a script bug logged).
  Result<ReplyPtr> scriptAnswer(const lua::ScriptSource& script, ReplyPtr reply) const;

  const Settings settings_;
  const std::string channel_;
  const std::shared_ptr<spdlog::logger> logger_;
  std::map<std::string_view, std::string> shas_;  // filled by start(), read-only afterwards

  std::mutex mu_;
  std::vector<Pooled> idle_;
  std::uint64_t generation_ = 0;  // raised when a connection breaks: older ones are not reused
  int connect_failures_ = 0;
  std::chrono::steady_clock::time_point retry_after_{};
  bool down_ = false;  // logged as unavailable; cleared (and logged) by the next success
  std::string last_error_;
};

/// Maps a Redis error reply to a Status. The scripts answer with a first word that names the code:
/// FENCED, NOTFOUND, CONFLICT, EXISTS, INVALID; a server that is loading, busy or read-only is
/// kUnavailable; anything else (a script bug) is kInternal.
Status statusFromError(std::string_view text);

}  // namespace leoflow::plugins::store_redis
