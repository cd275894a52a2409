// One blocking hiredis connection, with our own socket writes.
//
// hiredis 0.14 writes with write(2), which raises SIGPIPE when Redis has gone away and would kill
// the host process; a plugin must not change the process's signal handling. So commands are
// formatted by hiredis, sent here with send(MSG_NOSIGNAL), and the replies parsed by hiredis's
// reader. Every socket operation is bounded by command_timeout_ms (SO_RCVTIMEO/SO_SNDTIMEO), so a
// call never blocks longer than that on one read or write. Not thread-safe: one user at a time
// (RedisClient hands connections out one per call).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <hiredis/hiredis.h>

#include "settings.h"

namespace leoflow::plugins::store_redis {

struct ReplyDeleter {
  void operator()(redisReply* reply) const noexcept { freeReplyObject(reply); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

/// The text of a string, status or error reply ("" for other types).
std::string_view replyText(const redisReply* reply) noexcept;

/// True for an error reply that says the server cannot serve right now (LOADING, BUSY, MASTERDOWN,
/// TRYAGAIN, READONLY, OOM, NOREPLICAS, MISCONF): retrying later may succeed.
bool isTransientError(std::string_view error_text) noexcept;

class Connection {
 public:
  /// Connects (connect_timeout_ms), sets the command timeouts and TCP keep-alive, logs in and
  /// selects the database. nullptr with `error` set when any step fails; `refused`, when given, is
  /// set when the server answered and turned the session down (a wrong password, a database out of
  /// range: a configuration it will never accept) rather than being unreachable, slow or busy.
  static std::unique_ptr<Connection> open(const Settings& settings, std::string& error, bool* refused = nullptr);

  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Sends one command and waits for its reply (error replies are replies). nullptr when the
  /// connection failed; it is then broken() and error() says why.
  ReplyPtr call(const std::vector<std::string>& args);
  /// Sends one command without waiting for the reply (pub/sub).
  bool send(const std::vector<std::string>& args);
  /// Sends several commands in one write, without waiting (a pipeline: receive() their replies, in
  /// order). false when the connection failed.
  bool sendAll(const std::vector<std::vector<std::string>>& commands);
  /// Waits for the next reply (error replies are replies); nullptr when the connection failed.
  ReplyPtr receive();
  /// A complete reply already received and buffered, or nullptr. Does no I/O.
  ReplyPtr bufferedReply();
  /// Reads what the socket holds; call when poll() says it is readable. false when broken.
  bool readSome();
  /// An idle connection whose socket is readable was closed by the server (or is out of step):
  /// cheap to ask (one poll with a zero timeout) before reusing a pooled connection.
  bool looksDead() const;

  int fd() const noexcept { return ctx_->fd; }
  bool broken() const noexcept { return broken_; }
  const std::string& error() const noexcept { return error_; }

 private:
  explicit Connection(redisContext* ctx) : ctx_(ctx) {}
  void fail(std::string why);

  redisContext* ctx_;
  bool broken_ = false;
  std::string error_;
};

}  // namespace leoflow::plugins::store_redis
