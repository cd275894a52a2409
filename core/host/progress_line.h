#pragma once
// A long command's progress on stderr: `dags delete --force` and `runs clear` over a range tell how
// far they got, a line a second at most, so a person waiting on thousands of runs sees it move.

#include <chrono>
#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <utility>

#include "host/operations.h"

namespace leoflow::host {

/// Writes `line(done, of)` to `err` when a second passed since the last line (or since the start),
/// and the last step when an earlier line was written: a command done within a second prints none.
inline SliceProgress progressEverySecond(std::ostream& err, std::function<std::string(std::size_t, std::size_t)> line) {
  return [&err, line = std::move(line), last = std::chrono::steady_clock::now(), told = false](
             std::size_t done, std::size_t of) mutable {
    const auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1) && !(told && done == of)) return;
    err << line(done, of) << std::flush;
    last = now;
    told = true;
  };
}

}  // namespace leoflow::host
