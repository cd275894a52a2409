// The UDP side: lines queue in memory (a bounded queue, O(1) for the caller, no syscall on the
// hot path) and one thread sends them in datagrams of at most max_packet_bytes, at least every
// 100 ms. A full queue, an unreachable daemon or a failed send drops samples; drops are counted
// and logged at most once a minute. The address is resolved at start and again after a send fails.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

namespace leoflow::plugins::metrics_statsd {

struct SenderOptions {
  std::string address = "127.0.0.1:8125";  ///< host:port ([v6]:port for an IPv6 literal)
  std::size_t max_packet_bytes = 1432;
  std::chrono::milliseconds flush_interval{100};
  std::size_t max_queued_lines = 100'000;
  std::chrono::milliseconds drop_log_interval{60'000};
};

/// Splits "host:port" (or "[v6]:port"); false when it is not one.
bool splitAddress(const std::string& address, std::string& host, std::string& port);

class Sender {
 public:
  Sender(SenderOptions options, std::shared_ptr<spdlog::logger> logger);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  /// Queues one line; never blocks on the network. Dropped (and counted) when the queue is full.
  void submit(std::string line);
  /// Sends what is queued now and waits until it went (tests).
  void flush();

  std::uint64_t dropped() const noexcept { return dropped_total_.load(); }
  std::uint64_t datagramsSent() const noexcept { return datagrams_sent_.load(); }

 private:
  void run();
  void sendBatch(std::vector<std::string>& lines);
  bool resolve();
  void drop(std::uint64_t n);
  void maybeLogDrops(bool force);

  SenderOptions options_;
  std::shared_ptr<spdlog::logger> logger_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::vector<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  bool stopping_ = false;
  bool flush_requested_ = false;
  std::uint64_t flush_generation_ = 0;
  int fd_ = -1;
  bool need_resolve_ = true;
  std::chrono::steady_clock::time_point last_resolve_{};
  std::atomic<std::uint64_t> dropped_total_{0};
  std::atomic<std::uint64_t> dropped_unlogged_{0};
  std::atomic<std::uint64_t> datagrams_sent_{0};
  std::chrono::steady_clock::time_point last_drop_log_{};
  std::string last_error_;
  std::thread thread_;
};

}  // namespace leoflow::plugins::metrics_statsd
