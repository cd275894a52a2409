#include "connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <cstring>

namespace leoflow::plugins::store_redis {
namespace {

timeval toTimeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

}  // namespace

std::string_view replyText(const redisReply* reply) noexcept {
  if (reply == nullptr) return {};
  if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
      reply->type == REDIS_REPLY_ERROR) {
    return {reply->str, reply->len};
  }
  return {};
}

bool isTransientError(std::string_view error_text) noexcept {
  const std::string_view word = error_text.substr(0, error_text.find(' '));
  return word == "LOADING" || word == "BUSY" || word == "MASTERDOWN" || word == "TRYAGAIN" || word == "READONLY" ||
         word == "OOM" || word == "NOREPLICAS" || word == "MISCONF";
}

std::unique_ptr<Connection> Connection::open(const Settings& settings, std::string& error, bool* refused) {
  const Endpoint& ep = settings.endpoint;
  if (refused != nullptr) *refused = false;
  const bool unix_socket = !ep.socket_path.empty();
  const timeval connect_timeout = toTimeval(settings.connect_timeout);
  redisContext* ctx = unix_socket ? redisConnectUnixWithTimeout(ep.socket_path.c_str(), connect_timeout)
                                  : redisConnectWithTimeout(ep.host.c_str(), ep.port, connect_timeout);
  if (ctx == nullptr) {
    error = "cannot allocate a redis context";
    return nullptr;
  }
  if (ctx->err != 0) {
    error = ctx->errstr;
    redisFree(ctx);
    return nullptr;
  }
  std::unique_ptr<Connection> conn(new Connection(ctx));
  // Keep-alive probes are TCP's (a unix socket's peer going away is seen at once).
  if (redisSetTimeout(ctx, toTimeval(settings.command_timeout)) != REDIS_OK ||
      (!unix_socket && redisEnableKeepAlive(ctx) != REDIS_OK)) {
    error = ctx->errstr;
    return nullptr;
  }
  auto expectOk = [&](const std::vector<std::string>& args, const char* what) {
    ReplyPtr reply = conn->call(args);
    if (!reply) {
      error = conn->error();
      return false;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
      const std::string_view text = replyText(reply.get());
      error = std::string(what) + " failed: " + std::string(text);
      // A server still loading its data set answers LOADING: that passes, a wrong password does not.
      if (refused != nullptr) *refused = !isTransientError(text);
      return false;
    }
    return true;
  };
  if (!ep.password.empty()) {
    std::vector<std::string> auth{"AUTH"};
    if (!ep.username.empty()) auth.push_back(ep.username);
    auth.push_back(ep.password);
    if (!expectOk(auth, "AUTH")) return nullptr;
  }
  if (ep.db != 0 && !expectOk({"SELECT", std::to_string(ep.db)}, "SELECT")) return nullptr;
  return conn;
}

Connection::~Connection() { redisFree(ctx_); }

void Connection::fail(std::string why) {
  broken_ = true;
  error_ = std::move(why);
}

bool Connection::send(const std::vector<std::string>& args) { return sendAll({args}); }

bool Connection::sendAll(const std::vector<std::vector<std::string>>& commands) {
  if (broken_) return false;
  // RESP formatted here rather than by redisFormatCommandArgv, which prints every length with
  // sprintf: a new leader's loadRuns sends ~20 arguments per run it reads.
  std::size_t size = 0;
  for (const auto& args : commands) {
    size += 16;
    for (const auto& a : args) size += a.size() + 16;
  }
  std::string out;
  out.reserve(size);
  char digits[24];
  auto number = [&](char kind, std::size_t n) {
    out += kind;
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, end);
    out += "\r\n";
  };
  for (const auto& args : commands) {
    number('*', args.size());
    for (const auto& a : args) {
      number('$', a.size());
      out += a;
      out += "\r\n";
    }
  }
  std::size_t off = 0;
  while (off < out.size()) {
    const ssize_t n = ::send(ctx_->fd, out.data() + off, out.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    const int err = errno;
    fail(err == EAGAIN || err == EWOULDBLOCK ? std::string("timed out writing to redis")
                                             : std::string("write failed: ") + std::strerror(err));
    return false;
  }
  return true;
}

ReplyPtr Connection::bufferedReply() {
  if (broken_) return nullptr;
  void* reply = nullptr;
  if (redisGetReplyFromReader(ctx_, &reply) != REDIS_OK) {
    fail(ctx_->errstr);
    return nullptr;
  }
  return ReplyPtr(static_cast<redisReply*>(reply));
}

bool Connection::readSome() {
  if (broken_) return false;
  if (redisBufferRead(ctx_) != REDIS_OK) {
    // A blocking read that hit SO_RCVTIMEO surfaces as EAGAIN.
    const bool timeout = ctx_->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK);
    fail(timeout ? std::string("timed out waiting for redis") : std::string(ctx_->errstr));
    return false;
  }
  return true;
}

ReplyPtr Connection::call(const std::vector<std::string>& args) {
  if (!send(args)) return nullptr;
  return receive();
}

ReplyPtr Connection::receive() {
  for (;;) {
    ReplyPtr reply = bufferedReply();
    if (reply) return reply;
    if (broken_ || !readSome()) return nullptr;
  }
}

bool Connection::looksDead() const {
  if (broken_) return true;
  pollfd p{ctx_->fd, POLLIN, 0};
  const int n = ::poll(&p, 1, 0);
  return n != 0;  // readable (EOF, RST or stray data) or poll failed
}

}  // namespace leoflow::plugins::store_redis
