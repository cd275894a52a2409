#include "sender.h"

#include <pthread.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "lines.h"

namespace leoflow::plugins::metrics_statsd {

using std::chrono::steady_clock;

bool splitAddress(const std::string& address, std::string& host, std::string& port) {
  if (!address.empty() && address.front() == '[') {
    const auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') return false;
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || address.find(':') != colon) return false;
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  if (host.empty() || port.empty()) return false;
  for (char c : port) {
    if (c < '0' || c > '9') return false;
  }
  return std::stoul(port) > 0 && std::stoul(port) < 65536;
}

Sender::Sender(SenderOptions options, std::shared_ptr<spdlog::logger> logger)
    : options_(std::move(options)), logger_(std::move(logger)) {
  last_drop_log_ = steady_clock::now() - options_.drop_log_interval;
  // Resolved at start; a failure is retried by the thread (samples are dropped until then).
  if (!resolve()) logger_->warn("statsd daemon not reachable yet; samples are dropped until it is error={}", last_error_);
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "lf-statsd");
    run();
  });
}

Sender::~Sender() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) ::close(fd_);
}

void Sender::submit(std::string line) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= options_.max_queued_lines) {
      dropped_total_.fetch_add(1);
      dropped_unlogged_.fetch_add(1);
      return;
    }
    queued_bytes_ += line.size() + 1;
    queue_.push_back(std::move(line));
    // A full datagram's worth goes at once, without waiting for the interval (one wake per packet).
    wake = queued_bytes_ >= options_.max_packet_bytes * 8;
  }
  if (wake) wake_.notify_one();
}

void Sender::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = flush_generation_ + 1;
  flush_requested_ = true;
  wake_.notify_one();
  flushed_.wait_for(lock, std::chrono::seconds(5), [&] { return flush_generation_ >= target || stopping_; });
}

bool Sender::resolve() {
  last_resolve_ = steady_clock::now();
  std::string host, port;
  if (!splitAddress(options_.address, host, port)) {
    last_error_ = "address \"" + options_.address + "\" is not host:port";
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* found = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    last_error_ = "cannot resolve " + options_.address + ": " + ::gai_strerror(rc);
    return false;
  }
  int fd = -1;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    // Connected: the kernel reports an unreachable daemon (ICMP) on a later send, and we resolve again.
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(found);
  if (fd < 0) {
    last_error_ = "cannot open a UDP socket to " + options_.address + ": " + std::strerror(errno);
    return false;
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  need_resolve_ = false;
  return true;
}

void Sender::run() {
  std::vector<std::string> batch;
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, options_.flush_interval, [&] {
      return stopping_ || flush_requested_ || queued_bytes_ >= options_.max_packet_bytes * 8;
    });
    const bool stopping = stopping_;
    const bool flushing = flush_requested_;
    flush_requested_ = false;
    batch.swap(queue_);
    queued_bytes_ = 0;
    lock.unlock();
    if (!batch.empty()) sendBatch(batch);
    batch.clear();
    maybeLogDrops(stopping);
    lock.lock();
    if (flushing) {
      ++flush_generation_;
      flushed_.notify_all();
    }
    if (stopping && queue_.empty()) break;
  }
  flushed_.notify_all();
}

void Sender::sendBatch(std::vector<std::string>& lines) {
  std::size_t oversized = 0;
  std::vector<std::string> datagrams = packDatagrams(lines, options_.max_packet_bytes, oversized);
  if (oversized > 0) {
    drop(oversized);
    last_error_ = "a line longer than max_packet_bytes";
  }
  // Resolve again after a failure, at most once a second (a resolver that hangs delays only this thread).
  if (need_resolve_ && steady_clock::now() - last_resolve_ >= std::chrono::seconds(1)) resolve();
  for (std::size_t i = 0; i < datagrams.size(); ++i) {
    const std::string& d = datagrams[i];
    if (fd_ < 0 || need_resolve_) {
      drop(static_cast<std::uint64_t>(std::count(d.begin(), d.end(), '\n') + 1));
      continue;
    }
    const ssize_t n = ::send(fd_, d.data(), d.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n == static_cast<ssize_t>(d.size())) {
      datagrams_sent_.fetch_add(1);
      continue;
    }
    drop(static_cast<std::uint64_t>(std::count(d.begin(), d.end(), '\n') + 1));
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      last_error_ = "socket buffer full";
      continue;  // a busy socket: drop, do not wait
    }
    last_error_ = std::string("send failed: ") + std::strerror(errno);
    need_resolve_ = true;  // resolved again on the next batch
  }
}

void Sender::drop(std::uint64_t n) {
  dropped_total_.fetch_add(n);
  dropped_unlogged_.fetch_add(n);
}

void Sender::maybeLogDrops(bool force) {
  const auto now = steady_clock::now();
  if (!force && now - last_drop_log_ < options_.drop_log_interval) return;
  const std::uint64_t n = dropped_unlogged_.exchange(0);
  if (n == 0) return;
  last_drop_log_ = now;
  logger_->warn("statsd samples dropped count={} total={} address={} last_error={}", n, dropped_total_.load(),
                options_.address, last_error_.empty() ? "queue full" : last_error_);
}

}  // namespace leoflow::plugins::metrics_statsd
