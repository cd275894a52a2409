// A plain UDP listener on loopback for the metrics-statsd tests: it keeps every datagram, and
// splits them into StatsD lines.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace leoflow::testing {

class UdpListener {
 public:
  UdpListener() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) throw std::runtime_error("bind");
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    timeval tv{0, 50'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread_ = std::thread([this] {
      char buf[70'000];
      while (!stop_) {
        const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
        if (n <= 0) continue;
        std::lock_guard lock(mutex_);
        datagrams_.emplace_back(buf, static_cast<std::size_t>(n));
      }
    });
  }
  ~UdpListener() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> datagrams() const {
    std::lock_guard lock(mutex_);
    return datagrams_;
  }
  std::vector<std::string> lines() const {
    std::vector<std::string> out;
    for (const std::string& d : datagrams()) {
      std::size_t start = 0;
      while (start <= d.size()) {
        const std::size_t nl = d.find('\n', start);
        const std::string line = d.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
        if (!line.empty()) out.push_back(line);
        if (nl == std::string::npos) break;
        start = nl + 1;
      }
    }
    return out;
  }
  /// Waits until at least `n` lines arrived.
  bool waitForLines(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(5)) const {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (lines().size() >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return lines().size() >= n;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> datagrams_;
  std::thread thread_;
};

}  // namespace leoflow::testing
