// What the dispatcher-k8s tests share: a test CA and server certificate made with openssl, a
// kubeconfig writer, a TaskEvents that answers reports as the store does (the claim, then
// heartbeats and the outcome from the claiming execution only; a superseded try is refused), and
// the fixture that runs an emulated API server per test and checks every pod manifest the plugin
// sent against the official Kubernetes models afterwards.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <leoflow/config.h>
#include <leoflow/context.h>
#include <leoflow/dispatcher.h>

#include "fake_apiserver.h"
#include "support/null_roles.h"

namespace leoflow::testing::k8s {

enum class Kind { kRunning, kHeartbeat, kFinished };

struct Report {
  Kind kind;
  AttemptRef attempt;
  std::string execution_id;
  TaskOutcome outcome;
  Status answer;
};

class TestEvents final : public TaskEvents {
 public:
  Status running(const ExecutionRef& e) override;
  Status heartbeat(const ExecutionRef& e) override;
  Status finished(const ExecutionRef& e, const TaskOutcome& outcome) override;

  /// Makes `attempt` the current try of its task (earlier tries are refused from then on).
  void makeCurrent(const AttemptRef& attempt);
  std::vector<Report> reports() const;
  int count(Kind kind, const AttemptRef& attempt, bool accepted_only = true) const;
  bool waitCount(Kind kind, const AttemptRef& attempt, int n, int timeout_ms = 10000) const;
  std::optional<Report> waitFinished(const AttemptRef& attempt, int timeout_ms = 10000) const;
  std::string claimOf(const AttemptRef& attempt) const;

 private:
  Status record(Kind kind, const ExecutionRef& e, const TaskOutcome& outcome);
  mutable std::mutex mutex_;
  mutable std::condition_variable cv_;
  std::map<std::string, int> current_try_;   ///< dag/run/task -> try
  std::map<AttemptRef, std::string> claims_;
  std::map<AttemptRef, bool> ended_;
  std::vector<Report> reports_;
};

struct Pki {
  std::filesystem::path dir, ca_crt, server_crt, server_key, other_ca_crt;
  /// Client certificates (extendedKeyUsage clientAuth, CN leoflow-scheduler): one the CA signed,
  /// one the unrelated CA signed.
  std::filesystem::path client_crt, client_key, other_client_crt, other_client_key;
};
/// A CA, a server certificate for 127.0.0.1 and localhost signed by it, an unrelated CA, and a
/// client certificate signed by each.
const Pki& testPki();

std::string readText(const std::filesystem::path& path);
std::string base64(const std::string& data);

struct KubeconfigOptions {
  std::string server;
  std::string ca_file;
  std::string ca_data;  ///< PEM; written base64 as certificate-authority-data
  std::string token;
  std::string ns;
};
/// `user_fields`: more keys of the user, written as they are (client-certificate, client-key,
/// their -data forms); an empty `o.token` writes no token.
void writeKubeconfig(const std::filesystem::path& path, const KubeconfigOptions& o,
                     const std::map<std::string, std::string>& user_fields = {});

AttemptRef attemptOf(const std::string& dag, const std::string& run, const std::string& task, int try_number = 1);
DispatchRequest requestOf(const AttemptRef& a, std::int64_t run_uid, const std::string& entrypoint = "echo hi",
                          const std::string& type = "bash");

bool waitUntil(const std::function<bool()>& condition, int timeout_ms = 10000);

class K8sTest : public ::testing::Test {
 protected:
  static constexpr const char* kNs = "jobs";
  static constexpr const char* kToken = "good-token";
  void SetUp() override;
  void TearDown() override;

  std::map<std::string, ConfigValue> baseConfig() const;
  std::unique_ptr<Dispatcher> make(std::map<std::string, ConfigValue> overrides = {});
  std::unique_ptr<LogReader> makeReader(std::map<std::string, ConfigValue> overrides = {});
  /// Replaces the emulated server by one treating client certificates as `mode`, the test CA its
  /// client CA (and still accepting kToken); the kubeconfig is left for the test to write.
  void useClientCertificates(ClientCerts mode);
  /// The attempt's pod name, as the plugin builds it.
  static std::string podOf(const DispatchRequest& r);
  /// Dispatches (making the attempt current first) and expects `expected`.
  DispatchOutcome dispatch(Dispatcher& d, const DispatchRequest& r);

  std::filesystem::path scratch_, manifests_, kubeconfig_;
  std::unique_ptr<FakeApiServer> server_;
  TestEvents events_;
  WallClock clock_;
  NullRecorder recorder_;
  std::unique_ptr<PluginContext> context_;
};

}  // namespace leoflow::testing::k8s
