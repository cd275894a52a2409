#include "change_feed.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>

#include <pqxx/nontransaction>
#include <pqxx/notification>

#include "change_message.h"
#include "pg_errors.h"

namespace leoflow::plugins::store_postgres {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kProbeEvery{1000};
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{1000};

}  // namespace

// libpqxx's receiver: LISTENs on construction and is called from get_notifs() on this thread.
class ChangeFeed::Listener final : public pqxx::notification_receiver {
 public:
  Listener(pqxx::connection_base& c, const std::string& channel, ChangeFeed& feed)
      : pqxx::notification_receiver(c, channel), feed_(feed) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override { feed_.deliver(payload); }

 private:
  ChangeFeed& feed_;
};

struct ChangeFeed::Connected {
  std::unique_ptr<Session> session;
  std::unique_ptr<Listener> listener;
  ~Connected() { listener.reset(); }  // UNLISTEN while the session is still there
};

ChangeFeed::ChangeFeed(const ConnectionPool& pool, std::string channel, std::shared_ptr<spdlog::logger> logger)
    : pool_(pool), logger_(std::move(logger)), channel_(std::move(channel)) {}

ChangeFeed::~ChangeFeed() { stop(); }

std::unique_ptr<ChangeFeed::Connected> ChangeFeed::connectAndListen(std::string& error) {
  try {
    auto c = std::make_unique<Connected>();
    c->session = pool_.openSession(pool_.settings().direct_dsn);
    c->listener = std::make_unique<Listener>(c->session->conn(), channel_, *this);
    // The LISTEN is sent lazily by libpqxx; a round trip makes sure it is in place before start()
    // returns.
    pqxx::nontransaction(c->session->conn()).exec("SELECT 1");
    return c;
  } catch (const std::exception& e) {
    error = primaryMessage(e.what());
    return nullptr;
  }
}

Status ChangeFeed::start(ChangeSink& sink) {
  if (thread_.joinable()) return invalidArgument("the change feed already has a subscriber");
  sink_ = &sink;
  std::string error;
  auto connected = connectAndListen(error);
  if (!connected) {
    sink_ = nullptr;
    return unavailable("cannot listen for changes at " + pool_.settings().direct_redacted + ": " + error);
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    sink_ = nullptr;
    return internalError(std::string("cannot create the change feed's wake-up pipe: ") + std::strerror(errno));
  }
  wake_read_ = fds[0];
  wake_write_ = fds[1];
  stopping_ = false;
  thread_ = std::thread([this, c = std::move(connected)]() mutable {
    ::pthread_setname_np(::pthread_self(), "lf-pg-feed");
    run(std::move(c));
  });
  logger_->info("change feed listening channel={}", channel_);
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

void ChangeFeed::deliver(const std::string& payload) {
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

void ChangeFeed::run(std::unique_ptr<Connected> connected) {
  auto backoff = kFirstBackoff;
  auto last_rx = Clock::now();
  while (!stopping_) {
    if (!connected) {
      std::string error;
      connected = connectAndListen(error);
      if (!connected) {
        logger_->debug("change feed reconnect failed error=\"{}\" retry_in_ms={}", error, backoff.count());
        if (waitForStop(backoff)) break;
        backoff = std::min(kMaxBackoff, backoff * 2);
        continue;
      }
      backoff = kFirstBackoff;
      last_rx = Clock::now();
      logger_->info("change feed listening again channel={}", channel_);
      // Whatever was committed while we were away is not heard: the subscriber reloads everything.
      try {
        sink_->onResync();
      } catch (const std::exception& e) {
        logger_->error("change sink threw on resync error=\"{}\"", e.what());
      } catch (...) {
        logger_->error("change sink threw a non-standard exception on resync");
      }
    }

    pqxx::connection& conn = connected->session->conn();
    try {
      const int backend = conn.backendpid();
      const auto now = Clock::now();
      if (now - last_rx >= kProbeEvery) {
        // A round trip on a quiet session: a dead server or a cut network shows up as an exception
        // (bounded by statement_timeout and the keepalives), not as silence.
        pqxx::nontransaction(conn).exec("SELECT 1");
        last_rx = Clock::now();
      }
      conn.get_notifs();
      if (conn.backendpid() != backend) {
        // libpqxx re-opened the session by itself: notifications may have been lost in between.
        throw pqxx::broken_connection("the session was re-opened");
      }
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kProbeEvery - (Clock::now() - last_rx));
      pollfd fds[2] = {{wake_read_, POLLIN, 0}, {conn.sock(), POLLIN, 0}};
      const int n = ::poll(fds, 2, static_cast<int>(std::max<std::int64_t>(1, wait.count() + 1)));
      if (stopping_) break;
      if (n > 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
        if (conn.get_notifs() >= 0) last_rx = Clock::now();
      }
    } catch (const std::exception& e) {
      logger_->warn("change feed session lost channel={} error=\"{}\"", channel_, primaryMessage(e.what()));
      connected.reset();
    }
  }
}

}  // namespace leoflow::plugins::store_postgres
