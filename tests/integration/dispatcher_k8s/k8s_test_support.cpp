#include "k8s_test_support.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "factory.h"
#include "names.h"

namespace leoflow::testing::k8s {
namespace {

std::string key(const AttemptRef& a) { return a.run.dag_id + "\x1f" + a.run.run_id + "\x1f" + a.task_id; }

int sh(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace

Status TestEvents::record(Kind kind, const ExecutionRef& e, const TaskOutcome& outcome) {
  std::lock_guard lock(mutex_);
  Status answer;
  auto cur = current_try_.find(key(e.attempt));
  if (cur == current_try_.end()) {
    answer = notFound("no such task instance");
  } else if (cur->second != e.attempt.try_number || ended_[e.attempt]) {
    answer = conflict("the attempt is no longer current");
  } else if (kind == Kind::kRunning) {
    auto& claim = claims_[e.attempt];
    if (claim.empty() || claim == e.execution_id) {
      claim = e.execution_id;
    } else {
      answer = conflict("claimed by another execution");
    }
  } else if (claims_[e.attempt] != e.execution_id) {
    answer = conflict("not the claiming execution");
  } else if (kind == Kind::kFinished) {
    ended_[e.attempt] = true;
  }
  reports_.push_back({kind, e.attempt, e.execution_id, outcome, answer});
  cv_.notify_all();
  return answer;
}

Status TestEvents::running(const ExecutionRef& e) { return record(Kind::kRunning, e, {}); }
Status TestEvents::heartbeat(const ExecutionRef& e) { return record(Kind::kHeartbeat, e, {}); }
Status TestEvents::finished(const ExecutionRef& e, const TaskOutcome& o) { return record(Kind::kFinished, e, o); }

void TestEvents::makeCurrent(const AttemptRef& a) {
  std::lock_guard lock(mutex_);
  int& t = current_try_[key(a)];
  if (a.try_number > t) t = a.try_number;
}

std::vector<Report> TestEvents::reports() const {
  std::lock_guard lock(mutex_);
  return reports_;
}

int TestEvents::count(Kind kind, const AttemptRef& a, bool accepted_only) const {
  std::lock_guard lock(mutex_);
  int n = 0;
  for (const Report& r : reports_) n += r.kind == kind && r.attempt == a && (!accepted_only || r.answer.isOk());
  return n;
}

bool TestEvents::waitCount(Kind kind, const AttemptRef& a, int n, int timeout_ms) const {
  return waitUntil([&] { return count(kind, a) >= n; }, timeout_ms);
}

std::optional<Report> TestEvents::waitFinished(const AttemptRef& a, int timeout_ms) const {
  std::optional<Report> out;
  waitUntil(
      [&] {
        std::lock_guard lock(mutex_);
        for (const Report& r : reports_) {
          if (r.kind == Kind::kFinished && r.attempt == a) out = r;
        }
        return out.has_value();
      },
      timeout_ms);
  return out;
}

std::string TestEvents::claimOf(const AttemptRef& a) const {
  std::lock_guard lock(mutex_);
  auto it = claims_.find(a);
  return it == claims_.end() ? std::string() : it->second;
}

std::string readText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string base64(const std::string& data) {
  static const char* kA = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned val = 0;
  int bits = -6;
  for (const unsigned char c : data) {
    val = (val << 8) + c;
    bits += 8;
    while (bits >= 0) {
      out.push_back(kA[(val >> bits) & 0x3F]);
      bits -= 6;
    }
  }
  if (bits > -6) out.push_back(kA[((val << 8) >> (bits + 8)) & 0x3F]);
  while (out.size() % 4) out.push_back('=');
  return out;
}

const Pki& testPki() {
  static const Pki pki = [] {
    Pki p;
    p.dir = std::filesystem::temp_directory_path() / ("leoflow-k8s-pki-" + std::to_string(::getpid()));
    std::filesystem::create_directories(p.dir);
    p.ca_crt = p.dir / "ca.crt";
    p.server_crt = p.dir / "server.crt";
    p.server_key = p.dir / "server.key";
    p.other_ca_crt = p.dir / "other-ca.crt";
    p.client_crt = p.dir / "client.crt";
    p.client_key = p.dir / "client.key";
    p.other_client_crt = p.dir / "other-client.crt";
    p.other_client_key = p.dir / "other-client.key";
    const std::string d = p.dir.string();
    const std::string q = " >/dev/null 2>&1";
    std::ofstream(p.dir / "san.ext") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                                        "extendedKeyUsage=serverAuth\n";
    std::ofstream(p.dir / "client.ext") << "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
                                           "extendedKeyUsage=clientAuth\n";
    const std::vector<std::string> steps = {
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=leoflow-test-ca -keyout " + d + "/ca.key -out " + d + "/ca.crt",
        "openssl req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout " + d + "/server.key -out " + d + "/server.csr",
        "openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.crt -CAkey " + d + "/ca.key -CAcreateserial -days 2 -extfile " + d + "/san.ext -out " + d + "/server.crt",
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=other-ca -keyout " + d + "/other.key -out " + d + "/other-ca.crt",
        // Client certificates as kubeadm makes them: CN the user, O its group, clientAuth.
        "openssl req -newkey rsa:2048 -nodes -subj /O=leoflow/CN=leoflow-scheduler -keyout " + d + "/client.key -out " + d + "/client.csr",
        "openssl x509 -req -in " + d + "/client.csr -CA " + d + "/ca.crt -CAkey " + d + "/ca.key -CAcreateserial -days 2 -extfile " + d + "/client.ext -out " + d + "/client.crt",
        "openssl req -newkey rsa:2048 -nodes -subj /O=leoflow/CN=leoflow-scheduler -keyout " + d + "/other-client.key -out " + d + "/other-client.csr",
        "openssl x509 -req -in " + d + "/other-client.csr -CA " + d + "/other-ca.crt -CAkey " + d + "/other.key -CAcreateserial -days 2 -extfile " + d + "/client.ext -out " + d + "/other-client.crt",
    };
    for (const auto& s : steps) {
      if (sh(s + q) != 0) throw std::runtime_error("openssl failed: " + s);
    }
    static std::filesystem::path made = p.dir;
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(made, ec);
    });
    return p;
  }();
  return pki;
}

void writeKubeconfig(const std::filesystem::path& path, const KubeconfigOptions& o,
                     const std::map<std::string, std::string>& user_fields) {
  std::ofstream out(path);
  out << "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: emulated\n  cluster:\n"
      << "    server: " << o.server << "\n";
  if (!o.ca_file.empty()) out << "    certificate-authority: " << o.ca_file << "\n";
  if (!o.ca_data.empty()) out << "    certificate-authority-data: " << base64(o.ca_data) << "\n";
  out << "contexts:\n- name: other\n  context:\n    cluster: nowhere\n    user: nobody\n"
      << "- name: test\n  context:\n    cluster: emulated\n    user: tester\n";
  if (!o.ns.empty()) out << "    namespace: " << o.ns << "\n";
  out << "users:\n- name: tester\n  user:\n";
  if (!o.token.empty()) out << "    token: \"" << o.token << "\"\n";
  for (const auto& [k, v] : user_fields) out << "    " << k << ": " << v << "\n";
  if (o.token.empty() && user_fields.empty()) out << "    {}\n";
}

AttemptRef attemptOf(const std::string& dag, const std::string& run, const std::string& task, int try_number) {
  AttemptRef a;
  a.run = {dag, run};
  a.task_id = task;
  a.try_number = try_number;
  return a;
}

DispatchRequest requestOf(const AttemptRef& a, std::int64_t run_uid, const std::string& entrypoint,
                          const std::string& type) {
  DispatchRequest r;
  r.attempt = a;
  r.task.task_id = a.task_id;
  r.task.type = type;
  r.task.entrypoint = entrypoint;
  r.run_uid = run_uid;
  r.tenant = "team-a";
  r.logical_date = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::sys_days{} + std::chrono::hours(24 * 20000));
  return r;
}

bool waitUntil(const std::function<bool()>& condition, int timeout_ms) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

void K8sTest::SetUp() {
  static std::mt19937_64 rng{std::random_device{}()};
  scratch_ = std::filesystem::temp_directory_path() / ("leoflow-k8s-" + std::to_string(::getpid()) + "-" + std::to_string(rng()));
  manifests_ = scratch_ / "manifests";
  std::filesystem::create_directories(manifests_);
  const Pki& pki = testPki();
  server_ = std::make_unique<FakeApiServer>(pki.server_crt, pki.server_key, kToken, manifests_);
  kubeconfig_ = scratch_ / "kubeconfig";
  writeKubeconfig(kubeconfig_, {server_->url(), pki.ca_crt.string(), "", kToken, kNs});
  context_ = std::make_unique<PluginContext>("dispatcher-k8s", stderrTestLogger("plugin.dispatcher-k8s", spdlog::level::warn),
                                             clock_, events_, recorder_, std::chrono::milliseconds(200), "test-replica");
}

void K8sTest::useClientCertificates(ClientCerts mode) {
  const Pki& pki = testPki();
  server_.reset();
  server_ = std::make_unique<FakeApiServer>(pki.server_crt, pki.server_key, kToken, manifests_, mode, pki.ca_crt);
}

void K8sTest::TearDown() {
  server_.reset();
  if (!std::filesystem::is_empty(manifests_)) {
    const char* script = std::getenv("LEOFLOW_K8S_CHECK_MANIFESTS");
    ASSERT_NE(script, nullptr) << "LEOFLOW_K8S_CHECK_MANIFESTS is not set";
    const std::string cmd = std::string("/usr/bin/python3 ") + script + " " + manifests_.string();
    EXPECT_EQ(sh(cmd), 0) << "a pod manifest the plugin sent does not round-trip through V1Pod: " << cmd;
  }
  std::error_code ec;
  std::filesystem::remove_all(scratch_, ec);
}

std::map<std::string, ConfigValue> K8sTest::baseConfig() const {
  return {{"kubeconfig", kubeconfig_.string()},
          {"image", std::string("busybox:1.36")},
          {"installation", std::string("test")},
          {"log_dir", (scratch_ / "logs").string()},
          {"qps", 1000.0},
          {"burst", std::int64_t{1000}},
          {"termination_grace_s", std::int64_t{7}}};
}

std::unique_ptr<Dispatcher> K8sTest::make(std::map<std::string, ConfigValue> overrides) {
  auto config = baseConfig();
  for (auto& [k, v] : overrides) config[k] = v;
  plugins::dispatcher_k8s::K8sDispatcherFactory factory;
  return factory.create(ConfigView("dispatcher.config", config), *context_);
}

std::unique_ptr<LogReader> K8sTest::makeReader(std::map<std::string, ConfigValue> overrides) {
  auto config = baseConfig();
  for (auto& [k, v] : overrides) config[k] = v;
  plugins::dispatcher_k8s::K8sDispatcherFactory factory;
  return factory.createLogReader(ConfigView("dispatcher.config", config), *context_);
}

std::string K8sTest::podOf(const DispatchRequest& r) {
  return plugins::dispatcher_k8s::podName(r.attempt, r.run_uid);
}

DispatchOutcome K8sTest::dispatch(Dispatcher& d, const DispatchRequest& r) {
  events_.makeCurrent(r.attempt);
  auto out = d.dispatch(r);
  EXPECT_TRUE(out.isOk()) << out.status().toString();
  return out.isOk() ? *out : DispatchOutcome::kAtCapacity;
}

}  // namespace leoflow::testing::k8s
