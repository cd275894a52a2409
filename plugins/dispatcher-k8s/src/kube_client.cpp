#include "kube_client.h"

#include <curl/curl.h>
#include <stdio.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace leoflow::plugins::dispatcher_k8s {
namespace {

std::once_flag g_curl_once;

struct Transfer {
  std::string body;
  std::string pending;  // a streamed partial line
  const std::function<bool(std::string_view)>* on_line = nullptr;
  const std::function<bool()>* stopped = nullptr;
  const std::atomic<bool>* cancelled = nullptr;
  bool stop_requested = false;
};

size_t onWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  if (t->on_line == nullptr) {
    t->body.append(data, len);
    return len;
  }
  t->pending.append(data, len);
  std::size_t start = 0;
  for (std::size_t nl = t->pending.find('\n'); nl != std::string::npos; nl = t->pending.find('\n', start)) {
    const std::string_view line(t->pending.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && !(*t->on_line)(line)) {
      t->stop_requested = true;
      return 0;  // aborts the transfer
    }
  }
  t->pending.erase(0, start);
  return len;
}

int onProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (t->cancelled->load() || (t->stopped != nullptr && (*t->stopped)())) {
    t->stop_requested = true;
    return 1;
  }
  return 0;
}

std::string shellQuote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string readToken(const std::string& file) {
  std::ifstream in(file);
  std::ostringstream s;
  s << in.rdbuf();
  std::string t = s.str();
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
  return t;
}

bool hasClientCertificate(const Connection& c) { return !c.cert_file.empty() || !c.cert_data.empty(); }

std::string clientCertificateName(const Connection& c) {
  return !c.cert_file.empty() ? c.cert_file : std::string("client-certificate-data");
}

/// A TLS alert the server sent about the client's certificate (OpenSSL's words in curl's error).
bool clientCertificateAlert(const std::string& error) {
  for (const char* alert : {"alert certificate required", "alert unknown ca", "alert bad certificate",
                            "alert certificate unknown", "alert certificate expired", "alert certificate revoked",
                            "alert unsupported certificate", "alert access denied"}) {
    if (error.find(alert) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

/// RFC 3339 (`2026-01-02T03:04:05Z`, fractional seconds and `+hh:mm`/`-hh:mm` offsets allowed) as
/// a UTC time point; nullopt when it does not parse.
std::optional<std::chrono::system_clock::time_point> parseRfc3339(const std::string& text) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, used = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
      used <= 0) {
    return std::nullopt;
  }
  std::size_t i = static_cast<std::size_t>(used);
  std::chrono::nanoseconds frac{0};
  if (i < text.size() && text[i] == '.') {
    ++i;
    long long ns = 0;
    int digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      if (digits < 9) ns = ns * 10 + (text[i] - '0'), ++digits;
      ++i;
    }
    if (digits == 0) return std::nullopt;
    while (digits++ < 9) ns *= 10;
    frac = std::chrono::nanoseconds(ns);
  }
  std::chrono::minutes offset{0};
  if (i < text.size() && (text[i] == 'Z' || text[i] == 'z')) {
    ++i;
  } else if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    int oh = 0, om = 0;
    if (text.size() - i != 6 || std::sscanf(text.c_str() + i + 1, "%2d:%2d", &oh, &om) != 2) return std::nullopt;
    offset = std::chrono::minutes((text[i] == '-' ? -1 : 1) * (oh * 60 + om));
    i = text.size();
  } else {
    return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  const std::chrono::year_month_day ymd{std::chrono::year(y), std::chrono::month(static_cast<unsigned>(mo)),
                                        std::chrono::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  const auto tp = std::chrono::sys_days(ymd) + std::chrono::hours(h) + std::chrono::minutes(mi) +
                  std::chrono::seconds(sec) + frac - offset;
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(tp);
}

std::string unauthorizedCause(const Connection& c) {
  const bool token = !c.token.empty() || !c.token_file.empty() || c.has_exec;
  if (hasClientCertificate(c) && !token) {
    return "the API server refused the client certificate " + clientCertificateName(c) +
           " (not signed by a CA in its --client-ca-file, or expired?)";
  }
  if (!hasClientCertificate(c) && !token) {
    return "no credentials were sent (the user has no token, tokenFile, exec plugin or client certificate)";
  }
  if (hasClientCertificate(c)) {
    return "the API server refused the credentials (the client certificate " + clientCertificateName(c) +
           " and the token: not trusted, wrong or expired?)";
  }
  return "the API server refused the credentials (a wrong or expired token?)";
}

std::string HttpResult::message() const {
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  return body.substr(0, 200);
}

std::string podsPath(const std::string& ns, const std::string& name) {
  std::string p = "/api/v1/namespaces/" + ns + "/pods";
  if (!name.empty()) p += "/" + name;
  return p;
}

std::string urlEncode(std::string_view value) {
  std::string out;
  for (const char c : value) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~';
    out += plain ? std::string(1, c) : fmt::format("%{:02X}", static_cast<unsigned char>(c));
  }
  return out;
}

KubeClient::KubeClient(Connection connection, double qps, int burst, int timeout_s,
                       std::shared_ptr<spdlog::logger> logger, WallClock now)
    : connection_(std::move(connection)),
      qps_(qps),
      burst_(burst),
      timeout_s_(timeout_s),
      logger_(std::move(logger)),
      now_(now ? std::move(now) : WallClock([] { return std::chrono::system_clock::now(); })),
      tokens_(burst),
      refilled_(std::chrono::steady_clock::now()) {
  std::call_once(g_curl_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

KubeClient::~KubeClient() = default;

void KubeClient::throttle() {
  std::chrono::duration<double> wait{0};
  {
    std::lock_guard lock(bucket_mutex_);
    const auto now = std::chrono::steady_clock::now();
    tokens_ = std::min<double>(burst_, tokens_ + std::chrono::duration<double>(now - refilled_).count() * qps_);
    refilled_ = now;
    tokens_ -= 1;  // reserved; a negative balance is the wait
    if (tokens_ < 0) wait = std::chrono::duration<double>(-tokens_ / qps_);
  }
  if (wait.count() > 0) std::this_thread::sleep_for(wait);
}

std::string KubeClient::bearer(bool refresh) {
  const Connection& c = connection_;
  if (!c.token.empty() && !c.has_exec && c.token_file.empty()) return c.token;
  std::lock_guard lock(token_mutex_);
  const auto now = now_();
  if (!refresh && !token_.empty() && now < token_until_) return token_;
  token_until_ = now + kTokenReuse;
  if (!c.token_file.empty()) {
    token_ = readToken(c.token_file);
  } else if (c.has_exec) {
    std::string cmd = "env";
    for (const auto& [k, v] : c.exec.env) cmd += " " + shellQuote(k + "=" + v);
    cmd += " " + shellQuote(c.exec.command);
    for (const auto& a : c.exec.args) cmd += " " + shellQuote(a);
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
      char buf[4096];
      size_t n;
      while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
      const int rc = ::pclose(p);
      if (rc != 0) logger_->warn("the exec credential plugin {} exited with status {}", c.exec.command, rc);
    }
    const auto j = nlohmann::json::parse(out, nullptr, false);
    const nlohmann::json* status = j.is_object() && j.contains("status") && j["status"].is_object() ? &j["status"] : nullptr;
    if (status != nullptr && status->contains("token") && (*status)["token"].is_string()) {
      token_ = (*status)["token"].get<std::string>();
      // client-go's ExecCredential: status.expirationTimestamp (RFC 3339) says how long the token
      // may be cached; absent, it is fetched again after kTokenReuse (and after any 401).
      if (status->contains("expirationTimestamp") && !(*status)["expirationTimestamp"].is_null()) {
        const auto& e = (*status)["expirationTimestamp"];
        const auto expires = e.is_string() ? parseRfc3339(e.get<std::string>()) : std::nullopt;
        if (!expires) {
          logger_->warn("the exec credential plugin {} printed an expirationTimestamp that is not RFC 3339: {}",
                        c.exec.command, e.dump());
        } else if (*expires <= now) {
          logger_->warn("the exec credential plugin {} printed a token that expired at {}", c.exec.command,
                        e.get<std::string>());
          token_until_ = now;  // this request only
        } else {
          const auto lifetime = *expires - now;
          token_until_ = *expires - std::min<std::chrono::system_clock::duration>(kExpiryMargin, lifetime / 2);
        }
      }
    } else {
      logger_->warn("the exec credential plugin {} printed no ExecCredential with status.token", c.exec.command);
      token_.clear();
    }
  } else {
    token_ = c.token;
  }
  return token_;
}

Result<HttpResult> KubeClient::once(const std::string& method, const std::string& path, const std::string& body,
                                    const std::function<bool(std::string_view)>* on_line,
                                    const std::function<bool()>* stopped, int timeout_s) {
  if (cancelled_) return Status(cancelled("dispatcher-k8s: the client was shut down"));
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return Status(internalError("curl_easy_init failed"));
  Transfer t;
  t.on_line = on_line;
  t.stopped = stopped;
  t.cancelled = &cancelled_;
  const std::string url = connection_.server + path;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!body.empty()) headers = curl_slist_append(headers, "Content-Type: application/json");
  const std::string token = bearer(false);
  if (!token.empty()) headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!body.empty()) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, onWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, onProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, static_cast<long>(timeout_s));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);  // always: there is no key to turn it off
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_blob ca{}, cert{}, key{};
  if (!connection_.ca_data.empty()) {
    ca = {const_cast<char*>(connection_.ca_data.data()), connection_.ca_data.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
  } else if (!connection_.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, connection_.ca_file.c_str());
  }
  if (!connection_.cert_data.empty()) {
    cert = {const_cast<char*>(connection_.cert_data.data()), connection_.cert_data.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (!connection_.cert_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, connection_.cert_file.c_str());
  }
  if (!connection_.key_data.empty()) {
    key = {const_cast<char*>(connection_.key_data.data()), connection_.key_data.size(), CURL_BLOB_NOCOPY};
    curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &key);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (!connection_.key_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_SSLKEY, connection_.key_file.c_str());
  }
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK && !(t.stop_requested && status != 0)) {
    if (t.stop_requested) return Status(cancelled("stopped"));
    const std::string what = fmt::format("{} {}{}: {}", method, connection_.server, path, error[0] ? error : curl_easy_strerror(rc));
    if (rc == CURLE_SSL_CERTPROBLEM) {
      return Status(invalidArgument("dispatcher-k8s: the client certificate or key could not be used (" +
                                    clientCertificateName(connection_) + ", " + connection_.origin + "): " + what));
    }
    if (clientCertificateAlert(what)) {
      return Status(invalidArgument(
          hasClientCertificate(connection_)
              ? "dispatcher-k8s: the API server refused the client certificate " + clientCertificateName(connection_) +
                    " in the TLS handshake (not signed by a CA it trusts for clients, or expired?) (" +
                    connection_.origin + "): " + what
              : "dispatcher-k8s: the API server requires a client certificate and none was sent (set the user's "
                "client-certificate and client-key) (" + connection_.origin + "): " + what));
    }
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_ISSUER_ERROR) {
      return Status(invalidArgument("dispatcher-k8s: TLS verification refused the API server's certificate (" +
                                    connection_.origin + "): " + what));
    }
    if (on_line != nullptr && rc == CURLE_OPERATION_TIMEDOUT && status == 200) return HttpResult{status, {}};
    return Status(unavailable("dispatcher-k8s: " + what));
  }
  return HttpResult{status, std::move(t.body)};
}

Result<HttpResult> KubeClient::call(const std::string& method, const std::string& path, const std::string& body,
                                    int max_tries) {
  std::chrono::milliseconds backoff{100};
  bool refreshed = false;
  for (int attempt = 1;; ++attempt) {
    throttle();
    auto r = once(method, path, body, nullptr, nullptr, timeout_s_);
    if (r.isOk() && r->status == 401 && !refreshed && (connection_.has_exec || !connection_.token_file.empty())) {
      refreshed = true;
      bearer(true);  // a rotated token: read it again, once
      continue;
    }
    const bool retry = !r.isOk() ? r.status().code() == StatusCode::kUnavailable
                                 : (r->status == 429 || r->status >= 500);
    if (!retry || attempt >= max_tries || cancelled_) {
      if (r.isOk() && (r->status == 429 || r->status >= 500)) {
        return Status(unavailable(fmt::format("dispatcher-k8s: {} {} answered {} after {} tries: {}", method, path,
                                              r->status, attempt, r->message())));
      }
      return r;
    }
    logger_->debug("{} {}: {}; retrying in {} ms", method, path,
                   r.isOk() ? std::to_string(r->status) : r.status().message(), backoff.count());
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::milliseconds(3000));
  }
}

Result<long> KubeClient::stream(const std::string& path, const std::function<bool(std::string_view)>& on_line,
                                const std::function<bool()>& stopped, int timeout_s) {
  throttle();
  auto r = once("GET", path, {}, &on_line, &stopped, timeout_s);
  if (!r.isOk()) return r.status();
  if (r->status == 401) {
    std::lock_guard lock(token_mutex_);
    token_until_ = {};  // a token from a file or an exec plugin is fetched again for the next request
  }
  return r->status;
}

}  // namespace leoflow::plugins::dispatcher_k8s
