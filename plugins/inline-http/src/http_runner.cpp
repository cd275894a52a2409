#include "http_runner.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/logger.h>

#include <leoflow/execution_id.h>

#include "log_file.h"
#include "request.h"

namespace leoflow::plugins::inline_http {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxHeadBytes = 256 * 1024;
constexpr milliseconds kAbortWait{2000};
constexpr milliseconds kFinalReportWait{3000};
constexpr milliseconds kMaxBackoff{5000};

void writeAll(int fd, std::string_view text) {
  while (fd >= 0 && !text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::string joinCodes(const std::vector<int>& codes) {
  std::string out;
  for (int c : codes) {
    if (!out.empty()) out += ", ";
    out += std::to_string(c);
  }
  return out;
}

std::string ms(curl_off_t us) { return fmt::format("{:.1f} ms", static_cast<double>(us) / 1000.0); }

Status callEvents(const std::function<Status()>& call) {
  try {
    return call();
  } catch (const std::exception& e) {
    return internalError(std::string("the TaskEvents sink threw: ") + e.what());
  } catch (...) {
    return internalError("the TaskEvents sink threw");
  }
}

}  // namespace

struct HttpRunner::Transfer {
  ExecutionRef execution;
  PreparedRequest request;
  std::int64_t run_uid = 0;
  std::size_t max_bytes = 0;
  CURL* easy = nullptr;
  curl_slist* header_list = nullptr;
  int log_fd = -1;
  std::string head;  ///< the response's status lines and headers, as received
  std::string body;
  bool too_large = false;
  char errbuf[CURL_ERROR_SIZE] = {};
  steady_clock::time_point last_beat{};

  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    if (header_list != nullptr) curl_slist_free_all(header_list);
    if (log_fd >= 0) ::close(log_fd);
  }
};

namespace {

std::size_t onBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<HttpRunner::Transfer*>(user);
  const std::size_t len = size * count;
  if (t->body.size() + len > t->max_bytes) {
    t->body.append(data, t->max_bytes - t->body.size());
    t->too_large = true;
    return len == 0 ? 1 : 0;  // anything but len aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->body.append(data, len);
  return len;
}

std::size_t onHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<HttpRunner::Transfer*>(user);
  const std::size_t len = size * count;
  if (t->head.size() < kMaxHeadBytes) t->head.append(data, std::min(len, kMaxHeadBytes - t->head.size()));
  return len;
}

// Sets up the easy handle; nothing is sent until the transfer thread adds it to the multi handle.
Status configure(HttpRunner::Transfer& t, const Settings& settings) {
  t.easy = curl_easy_init();
  if (t.easy == nullptr) return internalError("curl_easy_init failed");
  CURL* e = t.easy;
  const PreparedRequest& r = t.request;
  curl_easy_setopt(e, CURLOPT_URL, r.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(r.timeout_s) * 1000L);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.errbuf);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &onHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!settings.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, settings.ca_file.c_str());
  curl_easy_setopt(e, CURLOPT_USERAGENT, settings.user_agent.c_str());
  if (r.method == "GET" && r.body.empty()) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (r.method == "HEAD") {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else {
    if (r.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    if (!r.body.empty() || r.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(r.body.size()));
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.c_str());
    }
  }
  for (const Header& h : r.headers) {
    const std::string line = h.value.empty() ? h.name + ";" : h.name + ": " + h.value;
    curl_slist* next = curl_slist_append(t.header_list, line.c_str());
    if (next == nullptr) return internalError("curl_slist_append failed");
    t.header_list = next;
  }
  // No "Expect: 100-continue" round trip before a large body.
  if (curl_slist* next = curl_slist_append(t.header_list, "Expect:"); next != nullptr) t.header_list = next;
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.header_list);
  return {};
}

std::string requestLog(const PreparedRequest& r) {
  std::string out = fmt::format("> {} {}\n", r.method, printable(r.url));
  for (const Header& h : r.headers) out += fmt::format("> {}: {}\n", h.name, printable(loggedValue(h)));
  out += r.body.empty() ? std::string(">\n") : fmt::format("> ({} bytes of body)\n", r.body.size());
  return out;
}

// The response's header lines, "< " before each, sensitive values as ***.
std::string responseLog(const std::string& head) {
  std::string out;
  std::size_t at = 0;
  while (at < head.size()) {
    std::size_t end = head.find('\n', at);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (const std::size_t colon = line.find(':'); colon != std::string::npos && sensitiveHeader(line.substr(0, colon))) {
      line = line.substr(0, colon) + ": ***";
    }
    out += "< " + printable(line) + "\n";
    at = end + 1;
  }
  return out;
}

}  // namespace

HttpRunner::HttpRunner(Settings settings, const PluginContext& context)
    : settings_(std::move(settings)), context_(context), secrets_(readSecrets(settings_)) {
  static std::once_flag global_init;
  std::call_once(global_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  multi_ = curl_multi_init();
  if (multi_ == nullptr) throw std::runtime_error("inline-http: curl_multi_init failed");
  transfer_thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "lf-http-xfer");
    transferLoop();
  });
  reporter_thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "lf-http-report");
    reporterLoop();
  });
}

HttpRunner::~HttpRunner() {
  shutdown();
  if (multi_ != nullptr) curl_multi_cleanup(static_cast<CURLM*>(multi_));
}

void HttpRunner::wake() {
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  changed_.notify_all();
}

Result<bool> HttpRunner::start(const DispatchRequest& request) {
  const AttemptRef& attempt = request.attempt;
  Result<PreparedRequest> prepared = prepareRequest(request, settings_, secrets_);
  if (!prepared) return prepared.status();
  std::string execution_id;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    if (live_.count(attempt) != 0 || claiming_.count(attempt) != 0) return true;  // handed over before
    if (reserved_ >= settings_.max_parallel) return false;
    ++reserved_;
    claiming_.insert(attempt);
    const auto it = unclaimed_ids_.find(attempt);
    execution_id = it != unclaimed_ids_.end() ? it->second : makeExecutionId("inline-http");
  }
  auto t = std::make_shared<Transfer>();
  t->execution = ExecutionRef{attempt, execution_id};
  t->request = std::move(prepared).value();
  t->run_uid = request.run_uid;
  t->max_bytes = settings_.max_response_bytes;
  auto giveUp = [&](const Status& status, bool keep_id) -> Result<bool> {
    std::lock_guard lock(mutex_);
    --reserved_;
    claiming_.erase(attempt);
    if (keep_id) {
      unclaimed_ids_[attempt] = execution_id;
    } else {
      unclaimed_ids_.erase(attempt);
    }
    changed_.notify_all();
    if (status.isOk()) return true;
    return status;
  };
  if (Status s = configure(*t, settings_); !s) return giveUp(s, false);

  // The claim (ARCHITECTURE §8.13): nothing is sent before the store accepted it.
  const Status claim = callEvents([&] { return context_.events().running(t->execution); });
  if (claim.code() == StatusCode::kConflict) {
    context_.logger()->info("{}: the store refused the claim ({}); nothing sent", describeAttempt(attempt),
                            claim.message());
    return giveUp({}, false);
  }
  if (!claim) {
    context_.logger()->warn("{}: the claim got no answer ({}); the host hands it over again",
                            describeAttempt(attempt), claim.toString());
    return giveUp(claim, true);
  }
  t->last_beat = steady_clock::now();

  const auto started = std::chrono::system_clock::now();
  const std::filesystem::path path = attemptLogPath(settings_.log_dir, attempt, request.run_uid);
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  t->log_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (t->log_fd < 0) {
    const std::string why = "cannot open the log file " + path.string() + ": " + std::strerror(errno);
    context_.logger()->error("{}: {}", describeAttempt(attempt), why);
    {
      std::lock_guard lock(mutex_);
      reports_.push_back(PendingReport{t->execution, TaskOutcome{false, std::nullopt, why}, steady_clock::now()});
    }
    return giveUp({}, false);
  }
  const std::string command =
      fmt::format("{} {} (timeout {} s)", t->request.method, t->request.url, t->request.timeout_s);
  writeAll(t->log_fd, formatLogHeader(attempt, request.run_uid, request.tenant, execution_id, command, started) +
                          requestLog(t->request));

  bool late = false;
  {
    std::lock_guard lock(mutex_);
    claiming_.erase(attempt);
    unclaimed_ids_.erase(attempt);
    if (quit_) {
      late = true;  // the transfer thread is gone (shutdown finished during the claim)
      --reserved_;
    } else {
      live_[attempt] = t;
      incoming_.push_back(t);
    }
  }
  if (late) {
    const TaskOutcome outcome{false, std::nullopt, "not sent: the scheduler shut down"};
    writeAll(t->log_fd, formatLogFooter(execution_id, outcome, std::chrono::system_clock::now()));
    (void)callEvents([&] { return context_.events().finished(t->execution, outcome); });
    return true;
  }
  wake();
  return true;
}

void HttpRunner::endTransfer(const std::shared_ptr<Transfer>& t, int curl_code, const std::string& stop_reason,
                             bool report) {
  const AttemptRef& attempt = t->execution.attempt;
  TaskOutcome outcome;
  std::string tail;
  long status = 0;
  if (t->easy != nullptr) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  if (!t->head.empty()) tail += responseLog(t->head);
  if (!t->body.empty()) {
    tail += t->body;
    if (t->body.back() != '\n') tail += "\n";
  }
  if (!stop_reason.empty()) {
    outcome = {false, std::nullopt, stop_reason};
  } else if (t->too_large) {
    outcome = {false, std::nullopt,
               fmt::format("the response body exceeds max_response_bytes ({} bytes); the log keeps the first {} "
                           "bytes, the rest was not read",
                           settings_.max_response_bytes, t->body.size())};
  } else if (curl_code == CURLE_OK) {
    const auto& codes = t->request.success_codes;
    if (std::find(codes.begin(), codes.end(), static_cast<int>(status)) != codes.end()) {
      outcome = {true, std::nullopt, ""};
    } else {
      outcome = {false, std::nullopt,
                 fmt::format("HTTP {} from {} {} (success: {})", status, t->request.method, t->request.url,
                             joinCodes(codes))};
    }
  } else if (curl_code == CURLE_OPERATION_TIMEDOUT) {
    outcome = {false, std::nullopt, fmt::format("timed out after {} s", t->request.timeout_s)};
  } else {
    const std::string detail = t->errbuf[0] != '\0' ? std::string(t->errbuf) : std::string();
    outcome = {false, std::nullopt,
               fmt::format("request failed: {}{}", curl_easy_strerror(static_cast<CURLcode>(curl_code)),
                           detail.empty() ? "" : ": " + detail)};
  }
  if (t->easy != nullptr) {
    curl_off_t total = 0, dns = 0, connect = 0, tls = 0, first = 0;
    long connects = 0;
    curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &total);
    curl_easy_getinfo(t->easy, CURLINFO_NAMELOOKUP_TIME_T, &dns);
    curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connect);
    curl_easy_getinfo(t->easy, CURLINFO_APPCONNECT_TIME_T, &tls);
    curl_easy_getinfo(t->easy, CURLINFO_STARTTRANSFER_TIME_T, &first);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    tail += fmt::format("leoflow: timing total {} (dns {}, connect {}, tls {}, first byte {}), {}, {} body bytes\n",
                        ms(total), ms(dns), ms(connect), ms(tls), ms(first),
                        connects == 0 && status != 0 ? "connection reused" : "new connection", t->body.size());
  }
  if (!outcome.success) tail += "leoflow: " + printable(outcome.message) + "\n";
  tail += formatLogFooter(t->execution.execution_id, outcome, std::chrono::system_clock::now());
  writeAll(t->log_fd, tail);
  if (t->log_fd >= 0) {
    ::close(t->log_fd);
    t->log_fd = -1;
  }
  context_.logger()->debug("{}: {}", describeAttempt(attempt), outcome.success ? "success" : outcome.message);
  {
    std::lock_guard lock(mutex_);
    live_.erase(attempt);
    --reserved_;
    if (report) reports_.push_back(PendingReport{t->execution, outcome, steady_clock::now()});
  }
  changed_.notify_all();
}

void HttpRunner::transferLoop() {
  auto* multi = static_cast<CURLM*>(multi_);
  std::map<CURL*, std::shared_ptr<Transfer>> running;
  while (true) {
    std::vector<std::shared_ptr<Transfer>> add;
    std::vector<StopRequest> stops;
    bool abort_all = false;
    bool quit = false;
    {
      std::lock_guard lock(mutex_);
      add.swap(incoming_);
      stops.swap(stops_);
      abort_all = abort_all_;
      quit = quit_;
    }
    for (const auto& t : add) {
      if (const CURLMcode rc = curl_multi_add_handle(multi, t->easy); rc != CURLM_OK) {
        endTransfer(t, CURLE_FAILED_INIT, std::string("request failed: ") + curl_multi_strerror(rc), true);
        continue;
      }
      running[t->easy] = t;
    }
    auto remove = [&](std::map<CURL*, std::shared_ptr<Transfer>>::iterator it, const std::string& why, bool report) {
      const std::shared_ptr<Transfer> t = it->second;
      curl_multi_remove_handle(multi, it->first);
      running.erase(it);
      endTransfer(t, -1, why, report);
    };
    for (const StopRequest& s : stops) {
      for (auto it = running.begin(); it != running.end(); ++it) {
        if (it->second->execution.attempt == s.attempt) {
          remove(it, s.why, s.report);
          break;
        }
      }
    }
    if (abort_all) {
      while (!running.empty()) {
        remove(running.begin(),
               fmt::format("the scheduler shut down while the request was in flight (after a {} ms grace)",
                           settings_.shutdown_grace_ms),
               true);
      }
    }
    if (quit && running.empty()) break;
    int still = 0;
    curl_multi_perform(multi, &still);
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode code = msg->data.result;
      const auto it = running.find(easy);
      if (it == running.end()) continue;
      const std::shared_ptr<Transfer> t = it->second;
      curl_multi_remove_handle(multi, easy);
      running.erase(it);
      endTransfer(t, code, "", true);
    }
    curl_multi_poll(multi, nullptr, 0, 200, nullptr);
  }
}

void HttpRunner::reporterLoop() {
  const milliseconds interval = std::max(context_.heartbeatInterval(), milliseconds(100));
  std::unique_lock lock(mutex_);
  while (true) {
    const auto now = steady_clock::now();
    std::vector<ExecutionRef> beats;
    for (auto& [attempt, t] : live_) {
      if (now - t->last_beat >= interval) {
        beats.push_back(t->execution);
        t->last_beat = now;
      }
    }
    std::vector<PendingReport> due;
    for (auto it = reports_.begin(); it != reports_.end();) {
      if (it->not_before <= now) {
        due.push_back(std::move(*it));
        it = reports_.erase(it);
      } else {
        ++it;
      }
    }
    if (beats.empty() && due.empty()) {
      if (reporter_quit_ && (reports_.empty() || now >= reporter_deadline_)) {
        for (const PendingReport& r : reports_) {
          context_.logger()->error("{}: the outcome ({}) could not be reported before shutdown",
                                   describeAttempt(r.execution.attempt),
                                   r.outcome.success ? "success" : r.outcome.message);
        }
        reports_.clear();
        break;
      }
      changed_.wait_for(lock, milliseconds(100));
      continue;
    }
    lock.unlock();
    for (const ExecutionRef& b : beats) {
      const Status s = callEvents([&] { return context_.events().heartbeat(b); });
      if (s.code() == StatusCode::kConflict) {
        context_.logger()->warn("{}: the store refused a heartbeat ({}); aborting the request",
                                describeAttempt(b.attempt), s.message());
        {
          std::lock_guard relock(mutex_);
          stops_.push_back({b.attempt, "the store refused a heartbeat: the attempt is no longer this execution's",
                            false});
        }
        curl_multi_wakeup(static_cast<CURLM*>(multi_));
      } else if (!s) {
        context_.logger()->warn("{}: heartbeat failed: {}", describeAttempt(b.attempt), s.toString());
      }
    }
    std::vector<PendingReport> again;
    for (PendingReport& r : due) {
      const Status s = callEvents([&] { return context_.events().finished(r.execution, r.outcome); });
      if (s || s.code() == StatusCode::kConflict) {
        if (!s) context_.logger()->info("{}: outcome refused: {}", describeAttempt(r.execution.attempt), s.message());
        continue;
      }
      context_.logger()->warn("{}: reporting the outcome failed ({}); retrying", describeAttempt(r.execution.attempt),
                              s.toString());
      r.not_before = steady_clock::now() + r.backoff;
      r.backoff = std::min(r.backoff * 2, kMaxBackoff);
      again.push_back(std::move(r));
    }
    lock.lock();
    for (PendingReport& r : again) reports_.push_back(std::move(r));
  }
}

void HttpRunner::shutdown() {
  std::lock_guard once(shutdown_mutex_);
  if (shut_down_) return;
  shut_down_ = true;
  {
    std::unique_lock lock(mutex_);
    stopping_ = true;
    changed_.wait_for(lock, milliseconds(settings_.shutdown_grace_ms),
                      [&] { return live_.empty() && claiming_.empty(); });
    abort_all_ = true;
  }
  wake();
  {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, kAbortWait, [&] { return live_.empty() && claiming_.empty(); });
    quit_ = true;
  }
  wake();
  if (transfer_thread_.joinable()) transfer_thread_.join();
  {
    std::lock_guard lock(mutex_);
    reporter_quit_ = true;
    reporter_deadline_ = steady_clock::now() + kFinalReportWait;
  }
  changed_.notify_all();
  if (reporter_thread_.joinable()) reporter_thread_.join();
}

std::size_t HttpRunner::freeCapacity() const {
  std::lock_guard lock(mutex_);
  if (stopping_ || reserved_ >= settings_.max_parallel) return 0;
  return settings_.max_parallel - reserved_;
}

std::vector<AttemptRef> HttpRunner::heldAttempts() const {
  std::lock_guard lock(mutex_);
  std::vector<AttemptRef> out(claiming_.begin(), claiming_.end());
  for (const auto& [attempt, t] : live_) out.push_back(attempt);
  return out;
}

Status HttpRunner::stop(const AttemptRef& attempt) {
  {
    std::lock_guard lock(mutex_);
    if (live_.count(attempt) == 0) return {};
    stops_.push_back({attempt, "stopped: the attempt is no longer current", false});
  }
  curl_multi_wakeup(static_cast<CURLM*>(multi_));
  return {};
}

}  // namespace leoflow::plugins::inline_http
