#include "fake_apiserver.h"

// Every open watch holds a server thread: room for many (only this file includes httplib.h here).
#define CPPHTTPLIB_THREAD_POOL_COUNT 64
#include <httplib.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <chrono>
#include <ctime>
#include <fstream>
#include <sstream>

namespace leoflow::testing::k8s {
namespace {

using nlohmann::json;

json statusObject(int code, const std::string& reason, const std::string& message,
                  const json& details = json::object()) {
  json s = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", json::object()}, {"status", "Failure"},
            {"message", message}, {"reason", reason}, {"code", code}};
  if (!details.empty()) s["details"] = details;
  return s;
}

void reply(httplib::Response& res, int code, const json& body) {
  res.status = code;
  res.set_content(body.dump(), "application/json");
}

bool matches(const json& pod, const std::string& selector) {
  if (selector.empty()) return true;
  const json labels = pod["metadata"].value("labels", json::object());
  std::stringstream ss(selector);
  std::string term;
  while (std::getline(ss, term, ',')) {
    const auto eq = term.find('=');
    if (eq == std::string::npos) return false;
    const std::string k = term.substr(0, eq), v = term.substr(eq + 1);
    if (!labels.contains(k) || labels[k] != v) return false;
  }
  return true;
}

/// After the server's fatal alert in a refused handshake: stop writing and read what the client sent
/// until it closes (at most a second), so that the socket's close is a FIN behind the alert. Under
/// TLS 1.3 the client has finished its side and sent its request before the server verifies its
/// certificate; OpenSSL reads the handshake record by record and leaves that request in the kernel,
/// and a close with unread data is a reset, which can overtake the alert and lose it (the client then
/// sees "getpeername() failed ... not connected", a retryable connection failure, instead of the
/// refusal). A Go server such as kube-apiserver has usually read the request into its own buffer by
/// then, and its close is a FIN: the client reads the alert.
void drainAfterAFatalAlert(const SSL* ssl, int where, int alert) {
  if ((where & SSL_CB_WRITE_ALERT) != SSL_CB_WRITE_ALERT || (alert >> 8) != SSL3_AL_FATAL) return;
  const int fd = SSL_get_fd(ssl);  // the fatal alert is flushed to it before this callback
  if (fd < 0) return;
  ::shutdown(fd, SHUT_WR);
  char sink[4096];
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) < 0) return;
    if (p.revents == 0) continue;
    const ssize_t n = ::recv(fd, sink, sizeof sink, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return;  // the client closed
  }
}

bool useServerCertificate(SSL_CTX& ctx, const std::string& cert, const std::string& key) {
  return SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) == 1 &&
         SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) == 1;
}

std::unique_ptr<httplib::SSLServer> makeServer(const std::filesystem::path& cert, const std::filesystem::path& key,
                                               ClientCerts mode, const std::filesystem::path& client_ca) {
  const std::string c = cert.string(), k = key.string(), ca = client_ca.string();
  switch (mode) {
    case ClientCerts::kNone: return std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    case ClientCerts::kRequire:
      // A mutual-TLS front: the handshake fails without a certificate the client CA signed.
      return std::make_unique<httplib::SSLServer>([c, k, ca](SSL_CTX& ctx) {
        if (!useServerCertificate(ctx, c, k) || SSL_CTX_load_verify_locations(&ctx, ca.c_str(), nullptr) != 1) {
          return false;
        }
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
        if (names == nullptr) return false;
        SSL_CTX_set_client_CA_list(&ctx, names);
        SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        SSL_CTX_set_info_callback(&ctx, drainAfterAFatalAlert);
        return true;
      });
    case ClientCerts::kRequest: break;
  }
  return std::make_unique<httplib::SSLServer>([c, k, ca](SSL_CTX& ctx) {
    if (!useServerCertificate(ctx, c, k)) return false;
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (names == nullptr) return false;
    SSL_CTX_set_client_CA_list(&ctx, names);
    // Ask, accept whatever comes: the authenticator verifies (kube-apiserver's secure serving).
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER, [](int, X509_STORE_CTX*) { return 1; });
    return true;
  });
}

}  // namespace

FakeApiServer::FakeApiServer(const std::filesystem::path& cert, const std::filesystem::path& key, std::string token,
                             std::filesystem::path manifest_dir, ClientCerts client_certs,
                             const std::filesystem::path& client_ca)
    : server_(makeServer(cert, key, client_certs, client_ca)),
      token_(std::move(token)),
      manifest_dir_(std::move(manifest_dir)),
      client_certs_(client_certs) {
  if (!server_->is_valid()) throw std::runtime_error("FakeApiServer: bad certificate or key");
  if (client_certs_ != ClientCerts::kNone) {
    client_ca_.reset(X509_STORE_new(), X509_STORE_free);
    if (X509_STORE_load_file(client_ca_.get(), client_ca.c_str()) != 1) {
      throw std::runtime_error("FakeApiServer: cannot load the client CA " + client_ca.string());
    }
  }
  setup();
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(2));
}

FakeApiServer::~FakeApiServer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  server_->stop();
  if (thread_.joinable()) thread_.join();
  if (kubelet_.joinable()) kubelet_.join();
}

void FakeApiServer::enableKubelet() {
  kubelet_ = std::thread([this] {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      cv_.wait_for(lock, std::chrono::milliseconds(20));
      const auto now = std::chrono::steady_clock::now();
      for (auto it = plans_.begin(); it != plans_.end();) {
        auto pod = pods_.find(it->key);
        if (pod == pods_.end()) {
          it = plans_.erase(it);
          continue;
        }
        const auto slash = it->key.find('/');
        const std::string ns = it->key.substr(0, slash), name = it->key.substr(slash + 1);
        if (!it->running) {
          it->running = true;
          it->started = now;
          lock.unlock();
          setPhase(ns, name, "Running");
          lock.lock();
          break;  // the maps may have changed
        }
        if (it->ms >= 0 && now - it->started >= std::chrono::milliseconds(it->ms)) {
          const int code = it->exit_code;
          plans_.erase(it);
          lock.unlock();
          setPhase(ns, name, code == 0 ? "Succeeded" : "Failed", code);
          lock.lock();
          break;
        }
        ++it;
      }
    }
  });
}

void FakeApiServer::emit(const std::string& type, json& pod) {
  pod["metadata"]["resourceVersion"] = std::to_string(++rv_);
  events_.push_back({rv_, type, pod});
  cv_.notify_all();
}

std::optional<std::string> FakeApiServer::authenticate(const httplib::Request& req, std::string& why) {
  std::optional<std::string> user;
  if (client_certs_ != ClientCerts::kNone && req.ssl != nullptr) {
    // The x509 authenticator: the peer's certificate verified against the client CA for client
    // use (extendedKeyUsage clientAuth); its CN names the user.
    std::unique_ptr<X509, decltype(&X509_free)> peer(SSL_get1_peer_certificate(req.ssl), X509_free);
    if (!peer) {
      why = "no client certificate";
    } else {
      std::unique_ptr<X509_STORE_CTX, decltype(&X509_STORE_CTX_free)> ctx(X509_STORE_CTX_new(), X509_STORE_CTX_free);
      X509_STORE_CTX_init(ctx.get(), client_ca_.get(), peer.get(), SSL_get_peer_cert_chain(req.ssl));
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
      if (X509_verify_cert(ctx.get()) == 1) {
        char cn[256] = {};
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer.get()), NID_commonName, cn, sizeof cn);
        user = std::string("x509:") + cn;
      } else {
        why = std::string("client certificate: ") + X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
      }
    }
  }
  const std::string auth = req.get_header_value("Authorization");
  if (!user && !auth.empty()) {
    if (!token_.empty() && auth == "Bearer " + token_) {
      user = "token";
    } else {
      why += (why.empty() ? "" : "; ") + std::string("a wrong token");
    }
  }
  if (!user && why.empty()) why = "no credentials";
  std::lock_guard lock(mutex_);
  authentications_.push_back(user ? *user : "refused: " + why);
  return user;
}

void FakeApiServer::setup() {
  auto authorized = [this](const httplib::Request& req, httplib::Response& res) {
    std::string why;
    if (!authenticate(req, why)) {
      reply(res, 401, statusObject(401, "Unauthorized", "Unauthorized"));
      return false;
    }
    return true;
  };
  auto injected = [this](httplib::Response& res) {
    std::lock_guard lock(mutex_);
    if (fail_next_.empty()) return false;
    const int code = fail_next_.front();
    fail_next_.pop_front();
    if (code == 429) res.set_header("Retry-After", "0");
    reply(res, code, statusObject(code, code == 429 ? "TooManyRequests" : "InternalError", "injected failure"));
    return true;
  };

  server_->Post(R"(/api/v1/namespaces/([^/]+)/pods)", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res) || injected(res)) return;
    const std::string ns = req.matches[1];
    json pod = json::parse(req.body, nullptr, false);
    if (!pod.is_object() || !pod.contains("metadata") || !pod["metadata"].contains("name")) {
      reply(res, 422, statusObject(422, "Invalid", "pod has no metadata.name"));
      return;
    }
    std::lock_guard lock(mutex_);
    ++counts_["POST create"];
    manifests_.push_back(pod);
    if (!manifest_dir_.empty()) {
      std::ofstream(manifest_dir_ / ("pod-" + std::to_string(manifests_.size()) + ".json")) << req.body;
    }
    const std::string name = pod["metadata"]["name"];
    const std::string key = ns + "/" + name;
    if (pods_.count(key)) {
      reply(res, 409, statusObject(409, "AlreadyExists", "pods \"" + name + "\" already exists",
                                   {{"name", name}, {"kind", "pods"}}));
      return;
    }
    pod["metadata"]["namespace"] = ns;
    pod["metadata"]["uid"] = "0000" + std::to_string(++uid_counter_) + "-uid-" + name.substr(0, 8);
    pod["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z";
    pod["status"] = {{"phase", "Pending"}};
    emit("ADDED", pod);
    pods_[key] = pod;
    try {
      const std::string script = pod["spec"]["containers"][0]["command"][2];
      std::istringstream words(script);
      std::string tag, a, b;
      words >> tag >> a >> b;
      if (tag == "fake-kubelet") {
        Plan plan{key, {}, -1, 0, false};
        if (a != "forever") {
          plan.ms = std::stoi(a);
          plan.exit_code = std::stoi(b);
        }
        plans_.push_back(plan);
      }
    } catch (const std::exception&) {
    }
    reply(res, 201, pod);
  });

  server_->Get(R"(/api/v1/namespaces/([^/]+)/pods)", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res)) return;
    const std::string ns = req.matches[1];
    const std::string selector = req.get_param_value("labelSelector");
    if (req.get_param_value("watch") == "1" || req.get_param_value("watch") == "true") {
      std::int64_t from = 0;
      try {
        from = std::stoll(req.get_param_value("resourceVersion"));
      } catch (...) {
      }
      int timeout_s = 60;
      if (req.has_param("timeoutSeconds")) timeout_s = std::stoi(req.get_param_value("timeoutSeconds"));
      std::int64_t generation;
      {
        std::lock_guard lock(mutex_);
        ++counts_["GET watch"];
        watch_versions_.push_back(req.get_param_value("resourceVersion"));
        generation = watch_generation_;
      }
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
      auto next = std::make_shared<std::int64_t>(from);
      res.set_chunked_content_provider("application/json", [=, this](size_t, httplib::DataSink& sink) {
        std::unique_lock lock(mutex_);
        if (*next < compacted_) {
          const std::string line =
              json{{"type", "ERROR"}, {"object", statusObject(410, "Expired", "too old resource version")}}.dump() + "\n";
          lock.unlock();
          sink.write(line.data(), line.size());
          sink.done();
          return true;
        }
        cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200)),
                       [&] { return stopping_ || watch_generation_ != generation || (!events_.empty() && events_.back().rv > *next); });
        if (stopping_ || watch_generation_ != generation || std::chrono::steady_clock::now() >= deadline) {
          lock.unlock();
          sink.done();
          return true;
        }
        std::string out = "\n";  // an idle keep-alive line (clients skip blank lines): finds a gone client
        for (const Event& e : events_) {
          if (e.rv <= *next) continue;
          *next = e.rv;
          if (e.object["metadata"].value("namespace", "") != ns || !matches(e.object, selector)) continue;
          out += json{{"type", e.type}, {"object", e.object}}.dump() + "\n";
        }
        lock.unlock();
        if (!sink.is_writable() || !sink.write(out.data(), out.size())) return false;
        return true;
      });
      return;
    }
    if (injected(res)) return;
    std::lock_guard lock(mutex_);
    ++counts_["GET list"];
    json items = json::array();
    for (const auto& [key, pod] : pods_) {
      if (key.rfind(ns + "/", 0) == 0 && matches(pod, selector)) items.push_back(pod);
    }
    reply(res, 200, {{"kind", "PodList"}, {"apiVersion", "v1"},
                     {"metadata", {{"resourceVersion", std::to_string(rv_)}}}, {"items", items}});
  });

  server_->Get(R"(/api/v1/namespaces/([^/]+)/pods/([^/]+))", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res) || injected(res)) return;
    std::lock_guard lock(mutex_);
    ++counts_["GET get"];
    auto it = pods_.find(std::string(req.matches[1]) + "/" + std::string(req.matches[2]));
    if (it == pods_.end()) {
      reply(res, 404, statusObject(404, "NotFound", "pods \"" + std::string(req.matches[2]) + "\" not found"));
      return;
    }
    reply(res, 200, it->second);
  });

  server_->Get(R"(/api/v1/namespaces/([^/]+)/pods/([^/]+)/log)", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res) || injected(res)) return;
    std::lock_guard lock(mutex_);
    ++counts_["GET log"];
    const std::string key = std::string(req.matches[1]) + "/" + std::string(req.matches[2]);
    if (!pods_.count(key)) {
      reply(res, 404, statusObject(404, "NotFound", "pods \"" + std::string(req.matches[2]) + "\" not found"));
      return;
    }
    res.status = 200;
    res.set_content(logs_[key], "text/plain");
  });

  server_->Delete(R"(/api/v1/namespaces/([^/]+)/pods/([^/]+))", [=, this](const httplib::Request& req, httplib::Response& res) {
    if (!authorized(req, res) || injected(res)) return;
    std::lock_guard lock(mutex_);
    ++counts_["DELETE delete"];
    const std::string name = req.matches[2];
    auto it = pods_.find(std::string(req.matches[1]) + "/" + name);
    if (it == pods_.end()) {
      reply(res, 404, statusObject(404, "NotFound", "pods \"" + name + "\" not found"));
      return;
    }
    std::optional<int> grace;
    if (req.has_param("gracePeriodSeconds")) grace = std::stoi(req.get_param_value("gracePeriodSeconds"));
    deletions_.push_back({name, grace});
    json pod = it->second;
    pods_.erase(it);
    emit("DELETED", pod);
    reply(res, 200, pod);
  });
}

std::string FakeApiServer::rfc3339(std::chrono::system_clock::time_point t) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void FakeApiServer::setPhase(const std::string& ns, const std::string& name, const std::string& phase,
                             std::optional<int> exit_code, const std::string& reason) {
  putPhase(ns, name, phase, exit_code, reason, std::nullopt);
}

void FakeApiServer::setRunning(const std::string& ns, const std::string& name,
                               std::optional<std::chrono::system_clock::time_point> started_at) {
  putPhase(ns, name, "Running", std::nullopt, {}, started_at);
}

void FakeApiServer::putPhase(const std::string& ns, const std::string& name, const std::string& phase,
                             std::optional<int> exit_code, const std::string& reason,
                             std::optional<std::optional<std::chrono::system_clock::time_point>> started_at) {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(ns + "/" + name);
  if (it == pods_.end()) throw std::runtime_error("setPhase: no pod " + name);
  json& pod = it->second;
  json state;
  if (phase == "Running") {
    json running = json::object();
    if (started_at) {
      if (*started_at) running["startedAt"] = rfc3339(**started_at);
    } else {
      // A kubelet keeps the container's start; a container starting now gets the current time.
      const json* old = nullptr;
      if (pod.contains("status") && pod["status"].value("phase", "") == "Running" &&
          pod["status"].contains("containerStatuses")) {
        const json& prev = pod["status"]["containerStatuses"][0]["state"];
        if (prev.contains("running") && prev["running"].contains("startedAt")) old = &prev["running"]["startedAt"];
      }
      running["startedAt"] = old ? *old : json(rfc3339(std::chrono::system_clock::now()));
    }
    state = {{"running", running}};
  } else if (phase == "Succeeded" || phase == "Failed") {
    state = {{"terminated", {{"exitCode", exit_code.value_or(phase == "Succeeded" ? 0 : 1)},
                             {"reason", reason.empty() ? (phase == "Succeeded" ? "Completed" : "Error") : reason}}}};
  } else {
    state = {{"waiting", {{"reason", reason.empty() ? "ContainerCreating" : reason}}}};
  }
  pod["status"] = {{"phase", phase},
                   {"containerStatuses", json::array({{{"name", "task"}, {"ready", phase == "Running"},
                                                       {"restartCount", 0}, {"image", pod["spec"]["containers"][0]["image"]},
                                                       {"imageID", ""}, {"state", state}}})}};
  emit("MODIFIED", pod);
}

void FakeApiServer::setLog(const std::string& ns, const std::string& name, const std::string& text) {
  std::lock_guard lock(mutex_);
  logs_[ns + "/" + name] = text;
}

bool FakeApiServer::deleteOutOfBand(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(ns + "/" + name);
  if (it == pods_.end()) return false;
  json pod = it->second;
  pods_.erase(it);
  emit("DELETED", pod);
  return true;
}

void FakeApiServer::compact() {
  std::lock_guard lock(mutex_);
  ++rv_;  // a write elsewhere; every version before it is compacted away
  compacted_ = rv_;
  events_.clear();
}

void FakeApiServer::dropWatches() {
  std::lock_guard lock(mutex_);
  ++watch_generation_;
  cv_.notify_all();
}

void FakeApiServer::failNext(std::vector<int> statuses) {
  std::lock_guard lock(mutex_);
  fail_next_.insert(fail_next_.end(), statuses.begin(), statuses.end());
}

std::optional<nlohmann::json> FakeApiServer::pod(const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = pods_.find(ns + "/" + name);
  if (it == pods_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> FakeApiServer::podNames(const std::string& ns) const {
  std::lock_guard lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [key, pod] : pods_) {
    if (key.rfind(ns + "/", 0) == 0) out.push_back(key.substr(ns.size() + 1));
  }
  return out;
}

std::vector<nlohmann::json> FakeApiServer::manifests() const {
  std::lock_guard lock(mutex_);
  return manifests_;
}

std::vector<Deletion> FakeApiServer::deletions() const {
  std::lock_guard lock(mutex_);
  return deletions_;
}

int FakeApiServer::count(const std::string& method, const std::string& what) const {
  std::lock_guard lock(mutex_);
  auto it = counts_.find(method + " " + what);
  return it == counts_.end() ? 0 : it->second;
}

std::vector<std::string> FakeApiServer::authentications() const {
  std::lock_guard lock(mutex_);
  return authentications_;
}

std::vector<std::string> FakeApiServer::watchVersions() const {
  std::lock_guard lock(mutex_);
  return watch_versions_;
}

bool FakeApiServer::waitPod(const std::string& ns, const std::string& name, bool exists, int timeout_ms) const {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (pod(ns, name).has_value() == exists) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace leoflow::testing::k8s
