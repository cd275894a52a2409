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

/// What went wrong, for the two front ends of a command: the CLI's exit code and the HTTP API's
/// status (docs/architecture.md §8.6, §8.15).
enum class ErrorKind { kBadInput, kNotFound, kConflict, kUnreachable, kFailed };

/// Thrown by a command to end with a message on stderr and a given exit code.
class CommandError : public std::runtime_error {
 public:
  CommandError(int exit_code, const std::string& message)
      : std::runtime_error(message),
        exit_code_(exit_code),
        kind_(exit_code == kExitBadInput      ? ErrorKind::kBadInput
              : exit_code == kExitUnreachable ? ErrorKind::kUnreachable
                                              : ErrorKind::kFailed) {}
  CommandError(ErrorKind kind, const std::string& message)
      : std::runtime_error(message), exit_code_(exitCodeOf(kind)), kind_(kind) {}
  int exitCode() const noexcept { return exit_code_; }
  ErrorKind kind() const noexcept { return kind_; }
  /// 400 bad input, 404 not found, 409 conflict, 503 unreachable, 500 anything else.
  int httpStatus() const noexcept {
    switch (kind_) {
      case ErrorKind::kBadInput: return 400;
      case ErrorKind::kNotFound: return 404;
      case ErrorKind::kConflict: return 409;
      case ErrorKind::kUnreachable: return 503;
      case ErrorKind::kFailed: break;
    }
    return 500;
  }

 private:
  static constexpr int exitCodeOf(ErrorKind kind) noexcept {
    switch (kind) {
      case ErrorKind::kBadInput:
      case ErrorKind::kNotFound:
      case ErrorKind::kConflict: return kExitBadInput;
      case ErrorKind::kUnreachable: return kExitUnreachable;
      case ErrorKind::kFailed: break;
    }
    return kExitFailed;
  }
  int exit_code_;
  ErrorKind kind_;
};

/// Bad input or usage: exit 2 (HTTP 400).
inline CommandError badInput(const std::string& message) { return {ErrorKind::kBadInput, message}; }
/// An unknown DAG, run or task: exit 2 (HTTP 404).
inline CommandError notFound(const std::string& message) { return {ErrorKind::kNotFound, message}; }
/// The state forbids it: exit 2 (HTTP 409).
inline CommandError conflict(const std::string& message) { return {ErrorKind::kConflict, message}; }

}  // namespace leoflow::host
