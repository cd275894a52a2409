// Exit codes of every `leoflow` command (ARCHITECTURE §5, §8.6).
#pragma once

#include <stdexcept>
#include <string>

namespace leoflow::host {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;       ///< what was asked about failed (a run ended failed)
inline constexpr int kExitBadInput = 2;     ///< malformed input, unknown DAG or run, usage, config
inline constexpr int kExitUnreachable = 3;  ///< a backend could not be reached by a one-shot command
inline constexpr int kExitTimedOut = 124;   ///< `--wait` timed out

/// Thrown by a command to end with a message on stderr and a given exit code.
class CommandError : public std::runtime_error {
 public:
  CommandError(int exit_code, const std::string& message)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exitCode() const noexcept { return exit_code_; }

 private:
  int exit_code_;
};

/// Bad input or usage: exit 2.
inline CommandError badInput(const std::string& message) { return {kExitBadInput, message}; }

}  // namespace leoflow::host
