// Status and Result<T>: how expected runtime failures travel through leoflow.
//
// Start-up errors (bad config, a plugin that cannot load) throw; everything that can fail while the
// scheduler runs returns a Status or a Result<T> instead, so one failing call never unwinds the loop.
#pragma once

#include <cassert>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace leoflow {

/// What kind of failure a Status reports. Callers branch on the code, people read the message.
enum class StatusCode {
  kOk = 0,
  kInvalidArgument,    ///< the input is malformed or violates a rule; retrying will not help
  kNotFound,           ///< the thing named does not exist
  kAlreadyExists,      ///< a create found the thing already there (e.g. a run id in use)
  kConflict,           ///< a compare-and-set lost: the state or try number moved on
  kFenced,             ///< a decision carried a term lower than the store's current term
  kUnavailable,        ///< a backend could not be reached; retrying later may help
  kAtCapacity,         ///< no free slot right now; try again later
  kDeadlineExceeded,   ///< the call did not finish in time
  kCancelled,          ///< the caller gave up (shutdown, leadership lost)
  kInternal,           ///< a bug or an unexpected failure (including a plugin's exception)
};

/// A short, stable name for a code: "ok", "invalid_argument", ...
constexpr std::string_view toString(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk: return "ok";
    case StatusCode::kInvalidArgument: return "invalid_argument";
    case StatusCode::kNotFound: return "not_found";
    case StatusCode::kAlreadyExists: return "already_exists";
    case StatusCode::kConflict: return "conflict";
    case StatusCode::kFenced: return "fenced";
    case StatusCode::kUnavailable: return "unavailable";
    case StatusCode::kAtCapacity: return "at_capacity";
    case StatusCode::kDeadlineExceeded: return "deadline_exceeded";
    case StatusCode::kCancelled: return "cancelled";
    case StatusCode::kInternal: return "internal";
  }
  return "unknown";
}

/// The outcome of an operation that returns nothing: ok, or a code with a message.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }

  bool isOk() const noexcept { return code_ == StatusCode::kOk; }
  explicit operator bool() const noexcept { return isOk(); }
  StatusCode code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }

  /// "code: message", for logs.
  std::string toString() const {
    if (isOk()) return "ok";
    return std::string(leoflow::toString(code_)) + ": " + message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status notFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status alreadyExists(std::string m) { return {StatusCode::kAlreadyExists, std::move(m)}; }
inline Status conflict(std::string m) { return {StatusCode::kConflict, std::move(m)}; }
inline Status fenced(std::string m) { return {StatusCode::kFenced, std::move(m)}; }
inline Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status atCapacity(std::string m) { return {StatusCode::kAtCapacity, std::move(m)}; }
inline Status deadlineExceeded(std::string m) { return {StatusCode::kDeadlineExceeded, std::move(m)}; }
inline Status cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }
inline Status internalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

/// Thrown by a factory's create() when its backend cannot be reached right now, as opposed to a
/// configuration it can never accept (any other exception). The scheduler retries with back-off;
/// a one-shot command exits 3 (ARCHITECTURE §8.6).
class UnavailableError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A value or the Status saying why there is none. Constructing from an ok Status is a bug.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : data_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(data_).isOk() && "a Result needs a value or a failure");
  }

  bool isOk() const noexcept { return std::holds_alternative<T>(data_); }
  explicit operator bool() const noexcept { return isOk(); }

  /// The failure; an ok Status when there is a value.
  Status status() const { return isOk() ? Status{} : std::get<Status>(data_); }

  T& value() & { return std::get<T>(data_); }
  const T& value() const& { return std::get<T>(data_); }
  T&& value() && { return std::get<T>(std::move(data_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> data_;
};

}  // namespace leoflow
