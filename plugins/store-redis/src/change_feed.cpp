#include "change_feed.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>

#include "id_codec.h"

namespace leoflow::plugins::store_redis {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kPingEvery{1000};
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

bool isArrayOf(const redisReply* r, std::size_t n) {
  return r != nullptr && r->type == REDIS_REPLY_ARRAY && r->elements == n;
}

}  // namespace

ChangeFeed::ChangeFeed(Settings settings, std::string channel, std::shared_ptr<spdlog::logger> logger)
    : settings_(std::move(settings)), channel_(std::move(channel)), logger_(std::move(logger)) {}

ChangeFeed::~ChangeFeed() { stop(); }

std::unique_ptr<Connection> ChangeFeed::connectAndSubscribe(std::string& error) {
  auto conn = Connection::open(settings_, error);
  if (!conn) return nullptr;
  ReplyPtr reply = conn->call({"SUBSCRIBE", channel_});
  if (!reply) {
    error = conn->error();
    return nullptr;
  }
  if (!isArrayOf(reply.get(), 3) || replyText(reply->element[0]) != "subscribe") {
    error = "unexpected reply to SUBSCRIBE";
    return nullptr;
  }
  return conn;
}

Status ChangeFeed::start(ChangeSink& sink) {
  if (thread_.joinable()) return invalidArgument("the change feed already has a subscriber");
  std::string error;
  auto conn = connectAndSubscribe(error);
  if (!conn) {
    return unavailable("cannot subscribe to the change feed at " + settings_.endpoint.redacted + ": " + error);
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    return internalError(std::string("cannot create the change feed's wake-up pipe: ") + std::strerror(errno));
  }
  wake_read_ = fds[0];
  wake_write_ = fds[1];
  sink_ = &sink;
  stopping_ = false;
  thread_ = std::thread([this, c = std::move(conn)]() mutable {
    ::pthread_setname_np(::pthread_self(), "lf-redis-feed");
    run(std::move(c));
  });
  logger_->info("change feed subscribed channel={}", channel_);
  return Status::ok();
}

void ChangeFeed::stop() {
  if (!thread_.joinable()) return;
  stopping_ = true;
  const char byte = 1;
  [[maybe_unused]] const ssize_t n = ::write(wake_write_, &byte, 1);
  thread_.join();
  ::close(wake_read_);
  ::close(wake_write_);
  wake_read_ = wake_write_ = -1;
  sink_ = nullptr;
  logger_->info("change feed stopped channel={}", channel_);
}

bool ChangeFeed::waitForStop(std::chrono::milliseconds ms) {
  if (stopping_) return true;
  pollfd p{wake_read_, POLLIN, 0};
  ::poll(&p, 1, static_cast<int>(ms.count()));
  return stopping_.load();
}

void ChangeFeed::deliver(const redisReply* reply) {
  // ["message", channel, payload]; the other pushes are subscription confirmations and "pong".
  if (!isArrayOf(reply, 3) || replyText(reply->element[0]) != "message") return;
  const std::string_view payload = replyText(reply->element[2]);
  const auto change = parseChangeMessage(payload);
  if (!change) {
    logger_->warn("ignoring a malformed change message message=\"{}\"", payload);
    return;
  }
  try {
    sink_->onChange(*change);
  } catch (const std::exception& e) {
    logger_->error("change sink threw error=\"{}\"", e.what());
  } catch (...) {
    logger_->error("change sink threw a non-standard exception");
  }
}

void ChangeFeed::run(std::unique_ptr<Connection> conn) {
  auto backoff = kFirstBackoff;
  auto last_rx = Clock::now();
  std::optional<Clock::time_point> ping_sent;
  while (!stopping_) {
    if (!conn) {
      std::string error;
      conn = connectAndSubscribe(error);
      if (!conn) {
        logger_->debug("change feed reconnect failed error=\"{}\" retry_in_ms={}", error, backoff.count());
        if (waitForStop(backoff)) break;
        backoff = std::min(kMaxBackoff, backoff * 2);
        continue;
      }
      backoff = kFirstBackoff;
      last_rx = Clock::now();
      ping_sent.reset();
      logger_->info("change feed resubscribed channel={}", channel_);
      // Whatever was published while we were away is lost: the subscriber reloads everything.
      try {
        sink_->onResync();
      } catch (const std::exception& e) {
        logger_->error("change sink threw on resync error=\"{}\"", e.what());
      } catch (...) {
        logger_->error("change sink threw a non-standard exception on resync");
      }
    }

    // Deliver everything already parsed before waiting for more.
    while (ReplyPtr reply = conn->bufferedReply()) deliver(reply.get());

    const auto now = Clock::now();
    if (ping_sent && now - *ping_sent > settings_.command_timeout) {
      logger_->warn("change feed connection silent, reconnecting channel={}", channel_);
      conn.reset();
      continue;
    }
    if (!ping_sent && now - last_rx >= kPingEvery) {
      if (conn->send({"PING"})) ping_sent = now;
    }
    auto wait = ping_sent ? settings_.command_timeout - (now - *ping_sent) : kPingEvery - (now - last_rx);
    const auto wait_ms = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::milliseconds>(wait).count() + 1);

    pollfd fds[2] = {{wake_read_, POLLIN, 0}, {conn->fd(), POLLIN, 0}};
    const int n = conn->broken() ? 0 : ::poll(fds, 2, static_cast<int>(wait_ms));
    if (stopping_) break;
    if (conn->broken()) {
      logger_->warn("change feed connection lost error=\"{}\"", conn->error());
      conn.reset();
      continue;
    }
    if (n > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
      if (!conn->readSome()) {
        logger_->warn("change feed connection lost error=\"{}\"", conn->error());
        conn.reset();
        continue;
      }
      last_rx = Clock::now();
      ping_sent.reset();
    }
  }
}

}  // namespace leoflow::plugins::store_redis
