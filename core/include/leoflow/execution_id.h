// Execution ids (ARCHITECTURE §8.13): every start of an attempt's code gets one, made by the
// dispatcher that starts it and unique across hosts and restarts, so the store can tell the
// execution that claimed an attempt from any other (a second host, a restarted scheduler).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace leoflow {

/// "<host>/<pid>/<16 random hex digits>", prefixed with `kind/` when given (e.g. "local/"). A pod
/// dispatcher uses the pod's UID instead. Thread-safe.
inline std::string makeExecutionId(std::string_view kind = {}) {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0') {
    host[0] = '?';
    host[1] = '\0';
  }
  thread_local std::mt19937_64 bits{(static_cast<std::uint64_t>(std::random_device{}()) << 32) ^
                                    std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string random(16, '0');
  std::uint64_t v = bits();
  for (char& c : random) {
    c = kHex[v & 0xf];
    v >>= 4;
  }
  std::string id;
  if (!kind.empty()) id.append(kind).push_back('/');
  id.append(host).push_back('/');
  id.append(std::to_string(::getpid())).push_back('/');
  id.append(random);
  return id;
}

}  // namespace leoflow
