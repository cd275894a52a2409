// Private to the local_dispatcher*.cpp files (one per concern of LocalDispatcher: see
// local_dispatcher.h): the Attempt record they share, and the constants and helpers more than one
// of them needs. Not part of the plugin's interface.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "local_dispatcher.h"
#include "process.h"
#include "state_file.h"

namespace leoflow::plugins::dispatcher_local {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;
using std::chrono::system_clock;

// The watcher rescans the state dir this often on its own, so an attempt left by a scheduler on
// this machine that died is adopted even if the host never calls reconcile().
constexpr milliseconds kScanInterval{5000};
// After a stop or a timeout's SIGTERM, the group gets one more SIGTERM this much later (see addEscalationLocked).
constexpr milliseconds kRepeatTermAfter{300};
// epoll keys: 0 is the eventfd, this the inotify fd, anything else an attempt's id.
constexpr std::uint64_t kInotifyKey = std::numeric_limits<std::uint64_t>::max();

inline std::string errnoText(int err) { return std::strerror(err); }

inline bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// Shells report a death by signal N as exit code 128+N; the supervisor sees the task through a
// shell too, so such a code is named as the signal it almost certainly was.
inline TaskOutcome describeExit(int code) {
  if (code == 0) return {true, 0, ""};
  if (code > 128 && code <= 128 + 64) {
    return {false, code, fmt::format("killed by signal {} (exit code {})", code - 128, code)};
  }
  return {false, code, fmt::format("exit code {}", code)};
}

// How an attempt ended: the reason we stopped it wins; then the code its supervisor recorded; then
// what waitid() said about the supervisor itself; else it is lost.
inline TaskOutcome outcomeFor(const StateRecord& record, std::optional<int> code,
                              std::optional<WaitStatus> status, bool lost_while_down) {
  std::optional<int> exit_code = code;
  if (!exit_code && status) exit_code = status->signaled ? 128 + status->value : status->value;
  switch (record.kill_reason) {
    case KillReason::kTimeout:
      return {false, exit_code, fmt::format("timed out after {} s", record.execution_timeout_seconds)};
    case KillReason::kShutdown:
      return {false, exit_code, "stopped: the scheduler shut down (stop_tasks_on_shutdown)"};
    case KillReason::kStopped:
      return {false, exit_code, "stopped: the attempt is no longer current"};
    case KillReason::kStale:
    case KillReason::kNone:
      break;
  }
  if (code) return describeExit(*code);
  if (status) {
    if (status->signaled) return {false, 128 + status->value, fmt::format("killed by signal {}", status->value)};
    return describeExit(status->value);
  }
  return {false, std::nullopt,
          lost_while_down ? "process lost while the scheduler was down"
                          : "process lost: it ended without recording an exit code"};
}

struct LocalDispatcher::Attempt {
  enum class Phase : std::uint8_t {
    kStarting,  ///< dispatch() reserved it and is spawning
    kLive,      ///< the process runs (counts against max_parallel)
    kExited,    ///< the process ended; its finished report is pending
    kDone,      ///< reported (or stale) and being removed
  };

  std::uint64_t id = 0;
  std::string base;
  AttemptRef ref;  // set before it is added; never changes
  // stop() came while dispatch() was starting it: stopped as soon as it is live. Guarded by mutex_.
  bool stop_requested = false;
  // The log's footer was written (by this dispatcher). Guarded by mutex_.
  bool footer_written = false;
  // Serialises rewrites of the state file and its closing; taken before mutex_, never inside it.
  std::mutex file_mutex;
  UniqueFd state_fd;  // holds the attempt's lock while this dispatcher watches it

  // Guarded by the dispatcher's mutex_.
  StateRecord record;
  // When this dispatcher started it (not adopted): its timeout counts on the steady clock, which a
  // wall-clock step cannot shorten.
  std::optional<SteadyTime> started_steady;
  UniqueFd pidfd;
  Phase phase = Phase::kStarting;
  bool running_reported = false;
  std::optional<TaskOutcome> outcome;
  std::deque<ReportKind> reports;  // the strand: performed in order, one at a time
  bool queued = false;             // in ready_
  bool busy = false;               // a reporter is performing reports.front()
  bool paused = false;             // waiting for a retry timer
  int failures = 0;
};

}  // namespace leoflow::plugins::dispatcher_local
