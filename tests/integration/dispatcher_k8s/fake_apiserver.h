// An emulated Kubernetes API server on loopback for the dispatcher-k8s tests: HTTPS (a certificate
// the test makes with openssl), a bearer token, the real paths and verbs of core/v1 pods —
//   POST   /api/v1/namespaces/{ns}/pods                 201, 409 AlreadyExists (a Status object)
//   GET    /api/v1/namespaces/{ns}/pods?labelSelector=  a PodList with metadata.resourceVersion
//   GET    ...?watch=1&resourceVersion=&labelSelector=  ADDED/MODIFIED/DELETED JSON lines; an ERROR
//                                                       event with a 410 Status for a compacted version
//   GET    /api/v1/namespaces/{ns}/pods/{name}          200, 404
//   DELETE /api/v1/namespaces/{ns}/pods/{name}          200 (gracePeriodSeconds recorded), 404
//   GET    /api/v1/namespaces/{ns}/pods/{name}/log      200 text, 404
// — a global resourceVersion, 401 for a wrong token, and injected 429/5xx answers. Pod phases and
// logs are driven by the test. Client certificates (ClientCerts) as kube-apiserver with
// --client-ca-file treats them, or required in the TLS handshake as a mutual-TLS front does.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class SSLServer;
struct Request;
}
struct x509_store_st;  // OpenSSL's X509_STORE

namespace leoflow::testing::k8s {

struct Deletion {
  std::string name;
  std::optional<int> grace_seconds;
};

/// How the server treats client certificates; `client_ca` (the constructor's) signs the ones it trusts.
enum class ClientCerts {
  kNone,     ///< none asked for: bearer tokens only
  /// As kube-apiserver with --client-ca-file: the handshake asks for a certificate but does not
  /// require one (Go's tls.RequestClientCert); a request is authenticated by a certificate that
  /// verifies against the client CA for client use (its CN is the user), else by the bearer token,
  /// else it is answered 401 Unauthorized (anonymous auth off) — the cause stays in the server's
  /// record (authentications()), as in the API server's log.
  kRequest,
  /// A front doing mutual TLS: the handshake fails without a certificate the client CA signed
  /// (TLS alerts "certificate required" / "unknown ca"); the certificate then authenticates.
  kRequire,
};

class FakeApiServer {
 public:
  /// Serves HTTPS with `cert`/`key` on 127.0.0.1 (a free port), accepting `token` (empty: none).
  /// Every pod manifest POSTed is also written to `manifest_dir` (one JSON file each) when it is
  /// not empty. `client_certs` other than kNone need `client_ca` (a PEM file).
  FakeApiServer(const std::filesystem::path& cert, const std::filesystem::path& key, std::string token,
                std::filesystem::path manifest_dir, ClientCerts client_certs = ClientCerts::kNone,
                const std::filesystem::path& client_ca = {});
  ~FakeApiServer();

  int port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }

  // Driving pods. A pod put Running gets `state.running.startedAt` as a kubelet sets it: the
  // current time (RFC 3339, whole seconds) when it was not Running yet, else the time it had.
  void setPhase(const std::string& ns, const std::string& name, const std::string& phase,
                std::optional<int> exit_code = std::nullopt, const std::string& reason = {});
  /// Running with this `startedAt` (nullopt: the field left out).
  void setRunning(const std::string& ns, const std::string& name,
                  std::optional<std::chrono::system_clock::time_point> started_at);
  static std::string rfc3339(std::chrono::system_clock::time_point t);
  void setLog(const std::string& ns, const std::string& name, const std::string& text);
  bool deleteOutOfBand(const std::string& ns, const std::string& name);
  /// Forgets every event so far: a watch from any resourceVersion before now gets 410 Gone.
  void compact();
  /// Ends every open watch (clients reconnect from their last resourceVersion).
  void dropWatches();
  /// The next requests (not watches) are answered with these statuses, in order.
  void failNext(std::vector<int> statuses);

  /// A fake kubelet: pods whose bash entrypoint is "fake-kubelet <ms> <exit code>" run by
  /// themselves (Running at once, then Succeeded or Failed after <ms>); "fake-kubelet forever" runs
  /// until deleted. Other pods stay where the test puts them.
  void enableKubelet();

  // Looking.
  std::optional<nlohmann::json> pod(const std::string& ns, const std::string& name) const;
  std::vector<std::string> podNames(const std::string& ns) const;
  std::vector<nlohmann::json> manifests() const;  ///< every POST body, in order
  std::vector<Deletion> deletions() const;
  int count(const std::string& method, const std::string& what) const;  ///< what: create, list, watch, get, delete, log
  std::vector<std::string> watchVersions() const;  ///< the resourceVersion of every watch request
  /// How every request was authenticated, in order: "x509:<CN>", "token", or "refused: <why>"
  /// (why: no credentials; the certificate's verification error; a wrong token).
  std::vector<std::string> authentications() const;
  /// Waits until a pod named `name` exists (or `exists` false: no longer exists).
  bool waitPod(const std::string& ns, const std::string& name, bool exists, int timeout_ms) const;

 private:
  struct Event {
    std::int64_t rv;
    std::string type;
    nlohmann::json object;
  };
  void emit(const std::string& type, nlohmann::json& pod);  // mutex_ held
  void putPhase(const std::string& ns, const std::string& name, const std::string& phase,
                std::optional<int> exit_code, const std::string& reason,
                std::optional<std::optional<std::chrono::system_clock::time_point>> started_at);
  void setup();
  /// The request's user ("x509:<CN>", "token"), or nullopt with `why` (recorded either way).
  std::optional<std::string> authenticate(const httplib::Request& req, std::string& why);

  std::unique_ptr<httplib::SSLServer> server_;
  std::thread thread_;
  int port_ = 0;
  const std::string token_;
  const std::filesystem::path manifest_dir_;
  const ClientCerts client_certs_;
  std::shared_ptr<x509_store_st> client_ca_;  ///< the CA client certificates are verified against

  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::map<std::string, nlohmann::json> pods_;  ///< "<ns>/<name>"
  std::map<std::string, std::string> logs_;
  std::int64_t rv_ = 100;
  std::int64_t compacted_ = 0;
  std::int64_t watch_generation_ = 0;
  bool stopping_ = false;
  std::vector<Event> events_;
  std::deque<int> fail_next_;
  std::vector<nlohmann::json> manifests_;
  std::vector<Deletion> deletions_;
  std::map<std::string, int> counts_;
  std::vector<std::string> watch_versions_;
  std::vector<std::string> authentications_;
  int uid_counter_ = 0;
  struct Plan {
    std::string key;
    std::chrono::steady_clock::time_point started;
    int ms = -1;  ///< -1: forever
    int exit_code = 0;
    bool running = false;
  };
  std::vector<Plan> plans_;
  std::thread kubelet_;
};

}  // namespace leoflow::testing::k8s
